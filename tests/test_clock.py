"""Clocks: timer heap semantics, shared by TestClock and LiveClock."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from node.common.clock import (
    NO_EVENT_NS,
    InvalidTimer,
    InvalidTimestamp,
    LiveClock,
    ReentrantAdvance,
    TestClock,
    TimeEvent,
    TimeMovedBackwards,
    TimerNameInUse,
    UnknownTimer,
)


class Log:
    """Callback that records (name, ts_event, ts_init, clock time seen inside the callback)."""

    def __init__(self, clock):
        self.clock = clock
        self.fired: list[tuple[str, int, int, int]] = []

    def __call__(self, event: TimeEvent) -> None:
        self.fired.append((event.name, event.ts_event, event.ts_init, self.clock.timestamp_ns()))

    def names_and_times(self) -> list[tuple[str, int]]:
        return [(name, ts) for name, ts, _, _ in self.fired]


def test_next_event_sentinel_when_nothing_is_pending():
    clock = TestClock()
    assert clock.next_event_ns == NO_EVENT_NS == 2**63
    clock.set_time_alert("a", 50, lambda e: None)
    assert clock.next_event_ns == 50
    clock.cancel_timer("a")
    assert clock.next_event_ns == NO_EVENT_NS
    assert clock.advance_time(100) == 0


def test_timers_fire_in_time_order_with_event_time_visible_inside_callbacks():
    clock = TestClock()
    log = Log(clock)
    clock.set_timer("a", 10, log)
    clock.set_timer("b", 15, log)
    assert clock.advance_time(30) == 5
    # at 30 both are due: "a" was set first, so it fires first
    assert log.names_and_times() == [("a", 10), ("b", 15), ("a", 20), ("a", 30), ("b", 30)]
    assert all(seen == ts == ts_init for _, ts, ts_init, seen in log.fired)
    assert clock.timestamp_ns() == 30
    assert clock.next_event_ns == 40 and clock.next_time_ns("a") == 40 and clock.next_time_ns("b") == 45


def test_advance_with_nothing_due_only_moves_time():
    clock = TestClock(100)
    clock.set_timer("t", 50, lambda e: pytest.fail("must not fire"))
    assert clock.advance_time(149) == 0
    assert clock.timestamp_ns() == 149 and clock.next_event_ns == 150


def test_fire_immediately_and_start_time():
    clock = TestClock(0)
    log = Log(clock)
    clock.set_timer("t", 10, log, start_time_ns=5, fire_immediately=True)
    clock.advance_time(25)
    assert log.names_and_times() == [("t", 5), ("t", 15), ("t", 25)]


def test_stop_time_ends_the_timer_after_its_last_firing():
    clock = TestClock()
    log = Log(clock)
    clock.set_timer("t", 10, log, stop_time_ns=35)
    clock.advance_time(100)
    assert log.names_and_times() == [("t", 10), ("t", 20), ("t", 30)]
    assert clock.timer_count == 0 and clock.next_event_ns == NO_EVENT_NS


def test_stop_time_exactly_on_a_firing_includes_it():
    clock = TestClock()
    log = Log(clock)
    clock.set_timer("t", 10, log, stop_time_ns=30)
    clock.advance_time(100)
    assert [ts for _, ts in log.names_and_times()] == [10, 20, 30]


def test_timer_that_would_never_fire_is_refused():
    clock = TestClock()
    with pytest.raises(InvalidTimer, match="would never fire"):
        clock.set_timer("t", 10, lambda e: None, stop_time_ns=5)


def test_time_alert_fires_once_and_is_removed():
    clock = TestClock()
    log = Log(clock)
    clock.set_time_alert("alert", 40, log)
    assert clock.timer_names == ["alert"]
    clock.advance_time(39)
    assert log.fired == []
    clock.advance_time(100)
    assert log.names_and_times() == [("alert", 40)]
    assert clock.timer_names == []
    clock.advance_time(200)
    assert len(log.fired) == 1


def test_alert_in_the_past_fires_at_next_advance_stamped_now():
    clock = TestClock(1_000)
    log = Log(clock)
    clock.set_time_alert("late", 10, log)
    assert clock.next_event_ns == 1_000
    assert clock.advance_time(1_000) == 1
    assert log.names_and_times() == [("late", 1_000)]


def test_timer_started_in_the_past_skips_missed_grid_points():
    clock = TestClock(1_005)
    log = Log(clock)
    clock.set_timer("t", 100, log, start_time_ns=0)
    assert clock.next_event_ns == 1_100
    clock.advance_time(1_200)
    assert [ts for _, ts in log.names_and_times()] == [1_100, 1_200]


def test_callback_can_cancel_another_timer_due_at_the_same_advance():
    clock = TestClock()
    log = Log(clock)

    def killer(event):
        log(event)
        clock.cancel_timer("victim")

    clock.set_time_alert("killer", 10, killer)
    clock.set_timer("victim", 20, log)
    clock.advance_time(100)
    assert log.names_and_times() == [("killer", 10)]
    assert clock.timer_count == 0


def test_periodic_timer_can_cancel_itself_from_its_callback():
    clock = TestClock()
    fired = []

    def once(event):
        fired.append(event.ts_event)
        assert clock.cancel_timer("self") is True

    clock.set_timer("self", 10, once)
    clock.advance_time(100)
    assert fired == [10] and clock.timer_count == 0


def test_callback_can_set_a_timer_that_fires_within_the_same_advance():
    clock = TestClock()
    log = Log(clock)

    def chain(event):
        log(event)
        clock.set_time_alert("second", event.ts_event + 5, log)

    clock.set_time_alert("first", 10, chain)
    assert clock.advance_time(100) == 2
    assert log.names_and_times() == [("first", 10), ("second", 15)]


def test_callback_exception_propagates_and_leaves_later_firings_pending():
    clock = TestClock()
    log = Log(clock)

    def bad(event):
        raise RuntimeError("callback failed")

    clock.set_time_alert("bad", 10, bad)
    clock.set_time_alert("good", 20, log)
    with pytest.raises(RuntimeError):
        clock.advance_time(100)
    assert clock.timestamp_ns() == 10 and clock.next_event_ns == 20
    clock.advance_time(100)
    assert log.names_and_times() == [("good", 20)]


def test_duplicate_name_and_bad_arguments_raise_specific_errors():
    clock = TestClock()
    clock.set_timer("t", 10, lambda e: None)
    with pytest.raises(TimerNameInUse, match="cancel_timer"):
        clock.set_time_alert("t", 10, lambda e: None)
    with pytest.raises(InvalidTimer, match="interval_ns"):
        clock.set_timer("u", 0, lambda e: None)
    with pytest.raises(InvalidTimer, match="interval_ns"):
        clock.set_timer("u", -5, lambda e: None)
    with pytest.raises(InvalidTimer, match="callable"):
        clock.set_timer("u", 5, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTimer, match="non-empty"):
        clock.set_timer("", 5, lambda e: None)
    with pytest.raises(UnknownTimer, match="nope"):
        clock.next_time_ns("nope")
    assert clock.cancel_timer("nope") is False


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "10", True])
def test_timestamps_must_be_ints_in_u64_range(bad):
    with pytest.raises(InvalidTimestamp):
        TestClock(bad)
    with pytest.raises(InvalidTimestamp):
        TestClock().set_time_alert("a", bad, lambda e: None)
    with pytest.raises(InvalidTimestamp):
        TestClock().advance_time(bad)


def test_test_clock_refuses_to_go_backwards():
    clock = TestClock(100)
    with pytest.raises(TimeMovedBackwards, match="100"):
        clock.set_time(99)
    with pytest.raises(TimeMovedBackwards):
        clock.advance_time(50)
    clock.set_time(100)  # standing still is fine
    assert clock.timestamp_ns() == 100


def test_set_time_does_not_fire_and_skipped_firings_run_at_next_advance():
    clock = TestClock()
    log = Log(clock)
    clock.set_time_alert("a", 10, log)
    clock.set_time(50)
    assert log.fired == []
    clock.advance_time(60)
    assert log.fired == [("a", 10, 10, 10)]
    assert clock.timestamp_ns() == 60


def test_advance_from_inside_a_callback_is_refused():
    clock = TestClock()
    errors = []

    def nested(event):
        try:
            clock.advance_time(50)
        except ReentrantAdvance as exc:
            errors.append(exc)

    clock.set_time_alert("a", 10, nested)
    clock.advance_time(20)
    assert len(errors) == 1 and clock.timestamp_ns() == 20


def test_cancel_timers_clears_everything():
    clock = TestClock()
    clock.set_timer("a", 10, lambda e: pytest.fail("cancelled"))
    clock.set_time_alert("b", 5, lambda e: pytest.fail("cancelled"))
    clock.cancel_timers()
    assert clock.timer_count == 0 and clock.next_event_ns == NO_EVENT_NS
    assert clock.advance_time(100) == 0


def test_repeated_set_and_cancel_does_not_grow_the_heap():
    clock = TestClock()
    clock.set_timer("keep", 1_000, lambda e: None)
    for i in range(10_000):
        clock.set_time_alert(f"tmp{i}", 500, lambda e: None)
        clock.cancel_timer(f"tmp{i}")
    assert len(clock._heap) < 200  # stale entries are compacted away
    assert clock.next_event_ns == 1_000


def test_wakeup_is_called_when_an_earlier_firing_is_scheduled():
    clock = TestClock()
    wakeups = []
    clock.set_wakeup(lambda: wakeups.append(clock.next_event_ns))
    clock.set_time_alert("late", 100, lambda e: None)
    clock.set_time_alert("later", 200, lambda e: None)  # not earlier: no wakeup
    clock.set_time_alert("early", 50, lambda e: None)
    assert wakeups == [100, 50]


def test_time_conversions():
    clock = TestClock(1_704_067_200_123_456_789)  # 2024-01-01T00:00:00.123456789Z
    assert clock.utc_now() == datetime(2024, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    assert clock.timestamp() == pytest.approx(1_704_067_200.123456789)


def test_two_clocks_share_nothing():
    a, b = TestClock(), TestClock()
    a.set_timer("t", 10, lambda e: None)
    assert b.timer_count == 0 and b.next_event_ns == NO_EVENT_NS
    b.set_timer("t", 10, lambda e: None)  # same name on another clock is fine


def test_live_clock_reads_wall_time_and_fires_what_is_due():
    clock = LiveClock()
    before = time.time_ns()
    now = clock.timestamp_ns()
    assert before <= now <= time.time_ns()
    log = Log(clock)
    clock.set_time_alert("due", now, log)
    clock.set_time_alert("future", now + 3_600 * 10**9, log)
    assert clock.advance_time(clock.timestamp_ns()) == 1
    (name, ts_event, ts_init, seen) = log.fired[0]
    assert name == "due" and seen == ts_event and ts_init >= ts_event
    assert clock.timer_names == ["future"]
    assert clock.timestamp_ns() >= now  # wall time again after the callback
