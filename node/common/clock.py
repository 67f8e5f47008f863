"""Clocks with one timer design for backtest and live.

The clock owns a heap of pending timer and alert firings but never fires anything on its own: whoever
drives time calls :meth:`Clock.advance_time`. That keeps a single code path for both environments:

* a backtest loop calls ``advance_time(ts)`` only when ``ts >= clock.next_event_ns``, so a tick with
  no due timer costs one integer comparison (``next_event_ns`` is a plain int attribute, set to
  ``NO_EVENT_NS`` when nothing is pending);
* a live loop sleeps until ``next_event_ns`` and then calls ``advance_time(clock.timestamp_ns())``.
  :meth:`Clock.set_wakeup` lets it learn that an earlier firing was scheduled while it slept.

Firing rules (identical for every clock):

* due firings run in time order; equal times run in the order the timers/alerts were set;
* while a callback runs, ``timestamp_ns()`` returns that firing's ``ts_event``;
* a periodic timer is rescheduled before its callback runs (so the callback may cancel it) and
  ends after the last firing at or before its ``stop_time_ns``;
* callbacks may set or cancel timers; a new firing due at or before ``to_ns`` runs in the same call;
* scheduling never puts a firing in the past: an alert set for a time already past is moved to
  "now" and fires on the next ``advance_time``; a timer whose start is in the past skips the
  missed grid points and first fires at the next point of its grid at or after "now". (Only
  ``TestClock.set_time``, which jumps without firing, can leave firings behind "now"; see there.)

Nothing here is module-level mutable state: two kernels in one process own separate clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from heapq import heapify, heappop, heappush

MAX_TIMESTAMP_NS = 2**64 - 1
"""Largest UNIX-nanosecond timestamp accepted (values are unsigned 64-bit, as on the wire)."""

NO_EVENT_NS = 2**63
"""``next_event_ns`` when nothing is pending; far beyond any real timestamp (year 2262)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeEvent:
    """Passed to a timer or alert callback. ``ts_event`` is the scheduled time, ``ts_init`` when it ran."""

    name: str
    ts_event: int
    ts_init: int


TimeEventCallback = Callable[[TimeEvent], object]


class ClockError(Exception):
    """Base class for clock errors."""


class InvalidTimestamp(ClockError, ValueError):
    """A timestamp was not an int in [0, 2**64)."""


class TimeMovedBackwards(ClockError):
    """A test clock was asked to go back in time; backtests must feed time in order."""


class InvalidTimer(ClockError, ValueError):
    """A timer or alert was set with a bad name, interval, callback or stop time."""


class TimerNameInUse(ClockError):
    """A timer or alert with this name is already pending on this clock."""


class ReentrantAdvance(ClockError):
    """advance_time was called from inside a timer callback; only the driver loop may advance."""


class UnknownTimer(ClockError, KeyError):
    """No timer or alert with this name is pending on this clock."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


def _check_ts(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TIMESTAMP_NS:
        raise InvalidTimestamp(
            f"{what} must be an int of UNIX nanoseconds in [0, 2**64), got {value!r}; "
            "convert seconds with int(seconds * 1_000_000_000)"
        )
    return value


class _Timer:
    """One pending timer or alert.

    It has at most one entry in the heap at a time: ``(next_ns, order, timer)``. ``order`` (when it
    was set, counted per clock) breaks ties between equal times and makes entries unique, so the
    heap never compares timers. A cancelled timer's entry stays in the heap marked inactive and is
    skipped when it surfaces (cheaper than removing it from the middle of the heap).
    """

    __slots__ = ("name", "callback", "interval_ns", "stop_ns", "next_ns", "order", "active")

    def __init__(
        self, name: str, callback: TimeEventCallback, interval_ns: int, stop_ns: int | None, order: int
    ):
        self.name = name
        self.callback = callback
        self.interval_ns = interval_ns  # 0 for a one-shot alert
        self.stop_ns = stop_ns
        self.next_ns = 0
        self.order = order
        self.active = True


class Clock:
    """Base clock: the timer heap and firing loop. Subclasses say what "now" is."""

    # Rebuild the heap once cancelled entries outnumber live ones (and are at least this many), so
    # that setting and cancelling timers in a loop cannot grow memory without bound.
    _COMPACT_MIN_STALE = 64

    def __init__(self) -> None:
        self.next_event_ns: int = NO_EVENT_NS
        self._timers: dict[str, _Timer] = {}
        self._heap: list[tuple[int, int, _Timer]] = []
        self._order = 0
        self._stale = 0
        self._firing_ns: int | None = None
        self._advancing = False
        self._wakeup: Callable[[], object] | None = None

    # -- time ----------------------------------------------------------------------------------

    def timestamp_ns(self) -> int:
        """Current UNIX time in nanoseconds."""
        raise NotImplementedError

    def timestamp(self) -> float:
        """Current UNIX time in seconds (float; use timestamp_ns() where precision matters)."""
        return self.timestamp_ns() / 1_000_000_000

    def utc_now(self) -> datetime:
        """Current time as an aware UTC datetime (microsecond precision, as datetime allows)."""
        return _EPOCH + timedelta(microseconds=self.timestamp_ns() // 1000)

    def _real_now_ns(self) -> int:
        """The clock's own notion of now, ignoring the freeze applied while a callback runs."""
        raise NotImplementedError

    def _after_advance(self, to_ns: int) -> None:
        """Hook: where time stands once advance_time has fired everything due."""

    # -- scheduling ----------------------------------------------------------------------------

    def set_wakeup(self, callback: Callable[[], object] | None) -> None:
        """Register ``callback()`` to be called when a new firing becomes the earliest pending.

        A live driver sleeping until ``next_event_ns`` uses this to wake up early. It is not called
        from inside ``advance_time``: the driver re-reads ``next_event_ns`` after each advance anyway.
        """
        self._wakeup = callback

    def set_timer(
        self,
        name: str,
        interval_ns: int,
        callback: TimeEventCallback,
        start_time_ns: int | None = None,
        stop_time_ns: int | None = None,
        fire_immediately: bool = False,
    ) -> None:
        """Fire ``callback`` every ``interval_ns`` from ``start_time_ns`` (default: now).

        The first firing is at ``start_time_ns`` if ``fire_immediately`` else one interval later.
        With ``stop_time_ns`` the timer ends after its last firing at or before that time.
        """
        self._check_new(name, callback)
        if type(interval_ns) is not int or not 0 < interval_ns <= MAX_TIMESTAMP_NS:
            raise InvalidTimer(
                f"timer '{name}': interval_ns must be a positive int of nanoseconds, got {interval_ns!r}"
            )
        now = self._real_now_ns()
        start = now if start_time_ns is None else _check_ts(start_time_ns, f"timer '{name}' start_time_ns")
        first = start if fire_immediately else start + interval_ns
        if first < now:
            # Keep the timer on its grid but do not replay the past (time never runs backwards).
            missed = -(-(now - first) // interval_ns)
            first += missed * interval_ns
        if stop_time_ns is not None:
            _check_ts(stop_time_ns, f"timer '{name}' stop_time_ns")
            if stop_time_ns < first:
                raise InvalidTimer(
                    f"timer '{name}' would never fire: its first firing at {first} ns is after "
                    f"stop_time_ns={stop_time_ns}; move the stop time later or drop it"
                )
        if first > MAX_TIMESTAMP_NS:
            raise InvalidTimer(f"timer '{name}' would first fire beyond 2**64 ns ({first})")
        self._add(_Timer(name, callback, interval_ns, stop_time_ns, self._next_order()), first)

    def set_time_alert(self, name: str, alert_time_ns: int, callback: TimeEventCallback) -> None:
        """Fire ``callback`` once at ``alert_time_ns``.

        An alert time already in the past is moved to now: it fires on the next ``advance_time``
        with ``ts_event`` equal to the time it was set, so the clock never reports a time earlier
        than one it has already reported.
        """
        self._check_new(name, callback)
        when = _check_ts(alert_time_ns, f"alert '{name}' alert_time_ns")
        self._add(_Timer(name, callback, 0, None, self._next_order()), max(when, self._real_now_ns()))

    def cancel_timer(self, name: str) -> bool:
        """Cancel the timer or alert ``name``. Returns False if none was pending (already fired,
        cancelled, or never set), which is harmless: cancelling is idempotent so teardown code and
        a callback cancelling its own alert need no bookkeeping."""
        timer = self._timers.pop(name, None)
        if timer is None:
            return False
        timer.active = False
        self._stale += 1
        self._compact_if_needed()
        if not self._advancing:
            self._refresh_next()
        return True

    def cancel_timers(self) -> None:
        """Cancel every pending timer and alert."""
        for timer in self._timers.values():
            timer.active = False
        self._timers.clear()
        self._heap.clear()
        self._stale = 0
        self.next_event_ns = NO_EVENT_NS

    @property
    def timer_names(self) -> list[str]:
        """Names of pending timers and alerts, sorted."""
        return sorted(self._timers)

    @property
    def timer_count(self) -> int:
        return len(self._timers)

    def next_time_ns(self, name: str) -> int:
        """When the timer or alert ``name`` fires next."""
        timer = self._timers.get(name)
        if timer is None:
            raise UnknownTimer(f"no timer or alert named '{name}' is pending; pending: {self.timer_names}")
        return timer.next_ns

    # -- firing --------------------------------------------------------------------------------

    def advance_time(self, to_ns: int) -> int:
        """Fire every firing due at or before ``to_ns`` in time order; return how many ran.

        If a callback raises, the exception propagates; the clock stays at that firing's time, the
        failed timer is already rescheduled, and later firings remain pending for the next call.
        """
        _check_ts(to_ns, "advance_time(to_ns)")
        if self._advancing:
            raise ReentrantAdvance(
                "advance_time() was called from inside a timer callback; schedule a timer or alert "
                "instead and let the driver loop advance time"
            )
        self._check_advance(to_ns)
        heap = self._heap
        fired = 0
        self._advancing = True
        try:
            while heap and heap[0][0] <= to_ns:
                ts, _, timer = heappop(heap)
                if not timer.active:
                    self._stale -= 1
                    continue
                interval = timer.interval_ns
                last_ns = MAX_TIMESTAMP_NS if timer.stop_ns is None else timer.stop_ns
                if interval and ts + interval <= last_ns:
                    self._schedule(timer, ts + interval)
                else:
                    del self._timers[timer.name]
                    timer.active = False
                self._enter_firing(ts)
                timer.callback(TimeEvent(timer.name, ts, self._ts_init(ts)))
                fired += 1
            self._after_advance(to_ns)
        finally:
            self._firing_ns = None
            self._advancing = False
            self._refresh_next()
        return fired

    def _enter_firing(self, ts: int) -> None:
        self._firing_ns = ts

    def _ts_init(self, ts: int) -> int:
        return ts

    def _check_advance(self, to_ns: int) -> None:
        """Hook: reject an advance the clock cannot honour."""

    # -- internals -----------------------------------------------------------------------------

    def _check_new(self, name: object, callback: object) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidTimer(f"timer name must be a non-empty str, got {name!r}")
        if name in self._timers:
            raise TimerNameInUse(
                f"a timer or alert named '{name}' is already pending; cancel_timer('{name}') first "
                "or pick another name"
            )
        if not callable(callback):
            raise InvalidTimer(f"timer '{name}': callback must be callable, got {callback!r}")

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def _add(self, timer: _Timer, first_ns: int) -> None:
        self._timers[timer.name] = timer
        self._schedule(timer, first_ns)
        if not self._advancing and first_ns < self.next_event_ns:
            self.next_event_ns = first_ns
            if self._wakeup is not None:
                self._wakeup()

    def _schedule(self, timer: _Timer, ts: int) -> None:
        timer.next_ns = ts
        heappush(self._heap, (ts, timer.order, timer))

    def _refresh_next(self) -> None:
        heap = self._heap
        while heap and not heap[0][2].active:
            heappop(heap)
            self._stale -= 1
        self.next_event_ns = heap[0][0] if heap else NO_EVENT_NS

    def _compact_if_needed(self) -> None:
        if self._stale >= self._COMPACT_MIN_STALE and self._stale * 2 > len(self._heap):
            # In place: advance_time holds a reference to this list while callbacks run.
            self._heap[:] = [entry for entry in self._heap if entry[2].active]
            heapify(self._heap)
            self._stale = 0


class TestClock(Clock):
    """Simulated time for backtests and tests: time moves only when told, and only forward."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, start_ns: int = 0) -> None:
        super().__init__()
        self._time_ns = _check_ts(start_ns, "TestClock(start_ns)")

    def timestamp_ns(self) -> int:
        return self._time_ns

    def _real_now_ns(self) -> int:
        return self._time_ns

    def set_time(self, ns: int) -> None:
        """Move time to ``ns`` without firing anything.

        Firings that fall due on the way stay pending and run on the next ``advance_time`` with
        their own (earlier) ``ts_event``; use ``advance_time`` when timers must fire in order.
        """
        _check_ts(ns, "set_time(ns)")
        self._check_advance(ns)
        self._time_ns = ns

    def reset(self, start_ns: int = 0) -> None:
        """Cancel every timer and restart time at ``start_ns`` (a backtest engine's reset)."""
        self.cancel_timers()
        self._time_ns = _check_ts(start_ns, "TestClock.reset(start_ns)")

    def _check_advance(self, to_ns: int) -> None:
        if to_ns < self._time_ns:
            raise TimeMovedBackwards(
                f"test clock is at {self._time_ns} ns and cannot go back to {to_ns} ns; "
                "feed data sorted by timestamp"
            )

    def _enter_firing(self, ts: int) -> None:
        # Simulated time simply is the firing's time; no separate freeze needed. (It is earlier
        # than the previous time only for firings that set_time() skipped over.)
        self._time_ns = ts

    def _after_advance(self, to_ns: int) -> None:
        if to_ns > self._time_ns:
            self._time_ns = to_ns


class LiveClock(Clock):
    """Wall-clock time (``time.time_ns()``); timers fire when the live loop calls advance_time."""

    def timestamp_ns(self) -> int:
        frozen = self._firing_ns
        return time.time_ns() if frozen is None else frozen

    def _real_now_ns(self) -> int:
        return time.time_ns()

    def _ts_init(self, ts: int) -> int:
        return time.time_ns()
