"""Heartbeat monitor: deadlines, once-only expiry, and the watcher task (on trio's MockClock)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import trio
import trio.testing

from orchestrator.child.heartbeat import HeartbeatPacer
from orchestrator.supervision.heartbeat import (
    HeartbeatMonitor,
    InvalidHeartbeatTimeout,
    WatcherAlreadyRunning,
)

# --- pure bookkeeping (time passed in) --------------------------------------------------------


def test_expires_after_the_timeout():
    mon = HeartbeatMonitor(0.3)
    mon.beat("a", now=10.0)
    assert mon.next_deadline() == pytest.approx(10.3)
    assert mon.expired(10.29) == []
    assert mon.expired(10.3) == ["a"]


def test_a_beat_postpones_the_deadline():
    mon = HeartbeatMonitor(0.3)
    mon.beat("a", now=0.0)
    mon.beat("a", now=0.2)
    assert mon.expired(0.45) == []
    assert mon.expired(0.5) == ["a"]
    assert mon.last_beat("a") == 0.2


def test_each_expiry_is_reported_once_until_the_node_beats_again():
    mon = HeartbeatMonitor(0.3)
    mon.beat("a", now=0.0)
    assert mon.expired(0.3) == ["a"]
    assert mon.expired(0.4) == []
    assert mon.expired(100.0) == []
    assert mon.next_deadline() is None  # a reported node no longer wakes the watcher
    mon.beat("a", now=100.0)
    assert mon.expired(100.3) == ["a"]


def test_forget_stops_watching_and_clears_the_report():
    mon = HeartbeatMonitor(0.3)
    mon.beat("a", now=0.0)
    mon.beat("b", now=0.1)
    assert mon.expired(0.3) == ["a"]
    mon.forget("a")
    mon.forget("never-seen")
    assert "a" not in mon and "b" in mon
    assert mon.last_beat("a") is None
    assert mon.expired(1.0) == ["b"]
    mon.forget("b")
    assert mon.next_deadline() is None


def test_several_expired_nodes_come_earliest_first():
    mon = HeartbeatMonitor(1.0)
    mon.beat("late", now=0.5)
    mon.beat("early", now=0.0)
    mon.beat("alive", now=2.0)
    assert mon.expired(2.0) == ["early", "late"]
    assert mon.next_deadline() == pytest.approx(3.0)


def test_per_beat_timeout_override():
    mon = HeartbeatMonitor(0.3)
    mon.beat("starting", now=0.0, timeout_s=5.0)
    mon.beat("running", now=0.0)
    assert mon.next_deadline() == pytest.approx(0.3)
    assert mon.expired(1.0) == ["running"]
    assert mon.expired(5.0) == ["starting"]


@pytest.mark.parametrize("bad", [0, -0.1, math.nan, math.inf, True, "0.3"])
def test_invalid_timeouts_are_refused(bad):
    with pytest.raises(InvalidHeartbeatTimeout):
        HeartbeatMonitor(bad)
    with pytest.raises(InvalidHeartbeatTimeout):
        HeartbeatMonitor(0.3).beat("a", 0.0, timeout_s=bad)


# --- the watcher task -------------------------------------------------------------------------


class Recorder:
    """on_expired callback that notes (node, time) and lets a test wait for the n-th expiry."""

    def __init__(self) -> None:
        self.seen: list[tuple[object, float]] = []
        self._changed = trio.Event()

    def __call__(self, node_id: object) -> None:
        self.seen.append((node_id, trio.current_time()))
        self._changed.set()

    async def wait_for(self, count: int) -> None:
        while len(self.seen) < count:
            self._changed = trio.Event()
            await self._changed.wait()


@pytest.mark.trio
async def test_watch_reports_at_the_deadline(autojump_clock):
    mon = HeartbeatMonitor(0.3)
    rec = Recorder()
    t0 = trio.current_time()
    mon.beat("a", t0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mon.watch, rec)
        with trio.fail_after(5):
            await rec.wait_for(1)
        nursery.cancel_scope.cancel()
    assert rec.seen == [("a", pytest.approx(t0 + 0.3))]


@pytest.mark.trio
async def test_watch_wakes_for_a_first_node(autojump_clock):
    mon = HeartbeatMonitor(0.3)
    rec = Recorder()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mon.watch, rec)
        await trio.testing.wait_all_tasks_blocked()  # the watcher sleeps with no deadline at all
        t0 = trio.current_time()
        mon.beat("a", t0)
        with trio.fail_after(5):
            await rec.wait_for(1)
        nursery.cancel_scope.cancel()
    assert rec.seen == [("a", pytest.approx(t0 + 0.3))]


@pytest.mark.trio
async def test_watch_wakes_for_a_newly_added_earlier_deadline(autojump_clock):
    mon = HeartbeatMonitor(0.3)
    rec = Recorder()
    t0 = trio.current_time()
    mon.beat("slow", t0, timeout_s=10.0)  # e.g. a node still starting up, with a long grace
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mon.watch, rec)
        await trio.testing.wait_all_tasks_blocked()  # the watcher now sleeps until t0 + 10
        t1 = trio.current_time()
        mon.beat("fast", t1)
        with trio.fail_after(20):
            await rec.wait_for(2)
        nursery.cancel_scope.cancel()
    assert rec.seen == [("fast", pytest.approx(t1 + 0.3)), ("slow", pytest.approx(t0 + 10.0))]


@pytest.mark.trio
async def test_watch_does_not_spin_while_nodes_beat(autojump_clock):
    """Nodes beating every 50 ms with a 300 ms timeout: the watcher wakes about once per timeout.

    The watcher reads its clock twice per wake-up, so counting clock reads counts wake-ups.
    """
    mon = HeartbeatMonitor(0.3)
    rec = Recorder()
    reads = 0

    def counting_clock() -> float:
        nonlocal reads
        reads += 1
        return trio.current_time()

    async def beater(node_id: str, beats: int) -> None:
        for _ in range(beats):
            mon.beat(node_id, trio.current_time())
            await trio.sleep(0.05)  # the node's heartbeat interval (virtual time)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(mon.watch, rec, counting_clock)
        async with trio.open_nursery() as beaters:
            for node_id in ("a", "b", "c"):
                beaters.start_soon(beater, node_id, 100)  # 5 s of beating
        with trio.fail_after(5):
            await rec.wait_for(3)  # then they fall silent and expire
        nursery.cancel_scope.cancel()
    assert sorted(node for node, _ in rec.seen) == ["a", "b", "c"]
    # 5 s / 0.3 s timeout ~ 17 wake-ups per node at most; a busy loop would be thousands.
    assert reads <= 2 * 3 * 20


@pytest.mark.trio
async def test_only_one_watcher_per_monitor(autojump_clock):
    mon = HeartbeatMonitor(0.3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(mon.watch, print)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(WatcherAlreadyRunning):
            await mon.watch(print)
        nursery.cancel_scope.cancel()
    # Once the first watcher is gone, a new one may start.
    with trio.move_on_after(1):
        await mon.watch(print)


@pytest.mark.trio
async def test_an_error_in_on_expired_ends_the_watch(autojump_clock):
    mon = HeartbeatMonitor(0.3)
    mon.beat("a", trio.current_time())

    def explode(node_id: object) -> None:
        raise LookupError(node_id)

    with pytest.raises(LookupError):
        await mon.watch(explode)


# -- the child's watchdog on its parent -------------------------------------------------------------


@pytest.mark.trio
@pytest.mark.parametrize("beat_in_grace", [True, False])
async def test_parent_watchdog_reads_queued_beats_before_judging_after_its_loop_was_blocked(
    mock_clock, beat_in_grace
):
    from orchestrator.child.heartbeat import ParentWatchdog

    dog = ParentWatchdog(1.0)
    dog.beat()
    lost: list[str] = []

    async def watch() -> None:
        lost.append(await dog.watch())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(1.05)  # this loop did 1.05 s of work without yielding: no beat could be read
        await trio.testing.wait_all_tasks_blocked()
        assert lost == []  # past the deadline: it gives the receiver a moment first
        if beat_in_grace:
            dog.beat()  # the parent's heartbeat that waited on the socket
        mock_clock.jump(0.15)
        await trio.testing.wait_all_tasks_blocked()
        assert bool(lost) is not beat_in_grace
        nursery.cancel_scope.cancel()
    if lost:
        assert "the last one came 1.20" in lost[0]


# -- the child's own heartbeat pacing (orchestrator.child.heartbeat.HeartbeatPacer) ---------------


async def _due_now(pacer: HeartbeatPacer) -> int | None:
    """The due heartbeat's timestamp if one is due already, else None."""
    got = []

    async def take() -> None:
        got.append(await pacer.next_due())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()  # it returned, or it waits for a tick
        nursery.cancel_scope.cancel()
    return got[0] if got else None


@pytest.mark.trio
async def test_a_heartbeat_sent_at_a_state_change_paces_the_next_tick_from_it():
    pacer = HeartbeatPacer(0.05, 0.05)  # a tick is sent once 25 ms have passed since the last hb
    pacer.on_tick(1, 0)
    assert await _due_now(pacer) == 0
    pacer.sent(40_000_000)  # the session sent one itself, at a state change
    pacer.on_tick(2, 50_000_000)  # 10 ms after that one: not due (it would be, 50 ms after tick 1)
    assert await _due_now(pacer) is None
    pacer.on_tick(3, 100_000_000)
    assert await _due_now(pacer) == 100_000_000
    pacer.due_now(101_000_000)  # a state change the socket could not take at once: due regardless
    assert await _due_now(pacer) == 101_000_000


@pytest.mark.trio
async def test_a_watcher_that_was_held_up_looks_again_before_judging(autojump_clock):
    """Held up (its process stopped, say) past the deadlines, the watcher does not report nodes
    whose heartbeats it could not read; a node still silent once it has looked again is reported."""
    mon = HeartbeatMonitor(0.3)  # settle_s: 0.05
    rec = Recorder()
    held_up: list[float] = []
    t0 = trio.current_time()
    mon.beat("beats", t0)
    mon.beat("silent", t0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(mon.watch, rec, on_held_up=held_up.append))
        await trio.testing.wait_all_tasks_blocked()  # the watcher sleeps until t0 + 0.3
        autojump_clock.jump(1.0)  # nothing of ours ran for a second: every deadline is long past
        await trio.sleep(0.01)  # the heartbeat that waited in the socket, read after the hold-up
        resumed = trio.current_time()
        mon.beat("beats", resumed)
        with trio.fail_after(5):
            await rec.wait_for(1)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert rec.seen == [("silent", pytest.approx(t0 + 1.0 + mon.settle_s))]
    assert mon.held_up == 1 and held_up == [pytest.approx(0.7)]


@pytest.mark.trio
async def test_the_watcher_lets_the_reader_catch_up_before_it_reports(autojump_clock):
    """``settle`` runs before a report: a beat it reads (one that came just in time) saves its node."""
    mon = HeartbeatMonitor(0.3)
    rec = Recorder()
    settled: list[float] = []

    async def settle() -> None:  # the orchestrator's receive loop reading a waiting heartbeat
        settled.append(trio.current_time())
        mon.beat("a", trio.current_time())

    t0 = trio.current_time()
    mon.beat("a", t0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(mon.watch, rec, settle=settle))
        while len(settled) < 3:  # three deadlines, each saved by a beat read at the last moment
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert rec.seen == [] and mon.held_up == 0
    assert settled[:3] == [pytest.approx(t0 + 0.3), pytest.approx(t0 + 0.6), pytest.approx(t0 + 0.9)]


def test_the_settle_time_is_checked():
    assert HeartbeatMonitor(0.3).settle_s == pytest.approx(0.05)
    assert HeartbeatMonitor(0.3, settle_s=0.1).late_s == pytest.approx(0.025)
    with pytest.raises(InvalidHeartbeatTimeout):
        HeartbeatMonitor(0.3, settle_s=0)


@pytest.mark.trio
async def test_a_busy_loop_puts_a_hang_off_once_not_for_ever(autojump_clock):
    """Every wake-up of the watcher late by a third of its sleep (a loop busy, not stopped): the
    first lateness defers the judgement, the next ones (shorter than ``settle_s``) do not."""
    mon = HeartbeatMonitor(0.3)  # settle_s 0.05, late_s 0.0125
    rec = Recorder()
    start = trio.current_time()

    def busy_clock() -> float:  # runs 1.5x as fast as the watcher's sleeps: each wake-up is late
        return start + 1.5 * (trio.current_time() - start)

    mon.beat("hung", busy_clock())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(mon.watch, rec, busy_clock))
        with trio.fail_after(5):
            await rec.wait_for(1)
        nursery.cancel_scope.cancel()
    assert [node for node, _ in rec.seen] == ["hung"] and mon.held_up == 1
