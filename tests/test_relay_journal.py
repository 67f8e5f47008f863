"""The relay journals every node event before publishing and acking it (issue #5, exactly-once relay)."""

from __future__ import annotations

import msgpack
import pytest
import trio

from orchestrator.control.server import journal_history
from orchestrator.fleet.loader import fleet_from_dict
from orchestrator.fleet.orchestrator import Orchestrator, event_topic
from orchestrator.fleet.slots import Slot
from orchestrator.fleet.state import NodeState
from orchestrator.journal import journal_path, read_journal
from orchestrator.protocol import codec, messages
from tests.fleet_support import Subscriber, fleet, node

pytestmark = pytest.mark.trio

TIMEOUT = 60  # bounds a broken test on a loaded machine; never a speed assertion


def journaled(orch: Orchestrator, node_id: str) -> list[list]:
    """Every journaled event of ``node_id``: each record is one relayed evt frame, keyed by its last seq."""
    events = []
    for record in read_journal(journal_path(orch.runtime_dir, node_id)):
        frame = msgpack.unpackb(record.payload, raw=False)
        assert record.seq == frame["events"][-1][0]
        events.extend(frame["events"])
    return events


def assert_complete(events: list[list]) -> None:
    seqs = [e[0] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "journal seqs are 1..N, no gap, no duplicate"


async def run_until(config, node_id: str, count: int) -> tuple[Orchestrator, list]:
    """Run an orchestrator until ``count`` events of ``node_id`` are published; shut it down."""
    orch = Orchestrator(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(orch.run)
        sub = Subscriber(orch.event_endpoint)
        try:
            await orch.wait_for(node_id, NodeState.RUNNING)
            seen = await sub.events_of(node_id, count)
        finally:
            await sub.aclose()
        orch.shutdown()
    assert orch.clean_shutdown
    return orch, seen


async def test_relayed_events_are_in_the_journal_in_order_with_no_gap(tmp_path):
    with trio.fail_after(TIMEOUT):
        orch, seen = await run_until(fleet(tmp_path, node("a")), "a", 20)
    stored = journaled(orch, "a")
    assert_complete(stored)
    assert stored[-1][0] == orch.node_status("a").last_seq
    by_seq = {e[0]: e for e in stored}
    assert all(by_seq[e[0]] == e for e in seen), "what was published is what was journaled"
    page = journal_history(orch.runtime_dir, ["a"], since=5, limit=3)  # events --since reads it
    assert [e[:2] for e in page["events"]] == [["a", 5], ["a", 6], ["a", 7]] and page["truncated"]


async def test_a_restarted_orchestrator_continues_each_node_after_its_journal(tmp_path):
    config = fleet(tmp_path, node("a"))
    with trio.fail_after(TIMEOUT):
        first, _ = await run_until(config, "a", 10)
        before = first.node_status("a").last_seq
        assert before >= 10

        again = Orchestrator(config)
        async with trio.open_nursery() as nursery:
            await nursery.start(again.run)
            assert again.node_status("a").last_seq >= before  # read from the journal at start
            sub = Subscriber(again.event_endpoint)
            try:
                await again.wait_for("a", NodeState.RUNNING)
                after = await sub.events_of("a", 5)
            finally:
                await sub.aclose()
            again.shutdown()
    assert after[0][0] > before, "the new child resumed after the journal's last seq"
    stored = journaled(again, "a")
    assert_complete(stored)
    assert stored[before - 1][0] == before


class _Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, bytes]] = []

    def publish(self, topic: bytes, frame: bytes) -> None:
        self.published.append((topic, frame))


def _frame(seqs) -> tuple[dict, bytes]:
    msg = messages.evt("a", 1, [[s, s * 10, "t", "E", {"n": s}] for s in seqs])
    frame = codec.encode(msg)
    return codec.decode(frame), frame


@pytest.mark.parametrize("fsync", ["never", "always"])  # "always" appends in a worker thread
async def test_a_resent_frame_is_neither_journaled_nor_published_twice(tmp_path, fsync):
    config = fleet(tmp_path, node("a"), journal_fsync=fsync)
    orch = Orchestrator(config)
    orch._open_journals()
    try:
        pub = orch._publisher = _Recorder()
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        for seqs in ([1, 2, 3], [1, 2, 3], [2, 3], [2, 3, 4, 5], [6]):
            await orch._on_events(slot, *_frame(seqs))
        assert [e[0] for e in journaled(orch, "a")] == [1, 2, 3, 4, 5, 6]
        published = [[e[0] for e in codec.decode(f)["events"]] for _, f in pub.published]
        assert published == [[1, 2, 3], [4, 5], [6]]  # an overlapping resend: only its new part
        assert {t for t, _ in pub.published} == {event_topic("a")}
        assert orch.duplicate_events == 3 + 2 + 2 and orch.relayed_events == 6
        assert orch.node_status("a").last_seq == 6 and orch._ackable(slot) == 6
    finally:
        orch._close_journals()

    restarted = Orchestrator(config)
    restarted._open_journals()
    try:
        assert restarted.node_status("a").last_seq == 6
    finally:
        restarted._close_journals()


async def test_acks_wait_for_durability_under_batch(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a"), journal_fsync="batch:60000"))
    orch._open_journals()
    try:
        orch._publisher = _Recorder()
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        await orch._on_events(slot, *_frame([1, 2]))
        assert orch._ackable(slot) == 0, "not fdatasync'ed yet: not acked"
        await orch._sync_batch()  # what the interval timer runs (fdatasync in a worker thread)
        assert orch._ackable(slot) == 2
        await orch._on_events(slot, *_frame([3]))
        assert orch._ackable(slot) == 2
    finally:
        orch._close_journals()


async def test_journal_fsync_is_read_from_the_fleet_file(tmp_path):
    assert fleet_from_dict({}, tmp_path).journal_fsync == "batch"
    assert fleet_from_dict({"orchestrator": {"journal_fsync": "always"}}, tmp_path).journal_fsync == "always"
    with pytest.raises(ValueError, match="journal_fsync"):
        fleet_from_dict({"orchestrator": {"journal_fsync": "sometimes"}}, tmp_path)
