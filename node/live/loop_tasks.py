"""Two small tasks that live on the kernel loop: the timer driver and the liveness tick.

Timer driver. The clock never fires anything on its own (``node.common.clock``): whoever drives
time calls ``advance_time``. In a live node that is this task. It sleeps until the clock's
``next_event_ns`` and fires what is due; when code on the loop sets a timer that is due earlier,
the clock's wake-up callback cuts the sleep short. Timer callbacks (bar closes, strategy timers)
thus run on the kernel loop like every other handler.

Liveness tick. A counter incremented every ``interval_s`` *by a task on the kernel loop*, not by a
side thread: if a strategy callback blocks the loop, the ticks stop, and a watchdog that sees no
tick for a while knows the node is hung even though its process is alive. The host observes it
through ``count``/``last_tick_ns`` (read from any thread) or a listener called on each tick; the
orchestrator will turn that into its heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from anyio.lowlevel import checkpoint

_MAX_SLEEP_S = 60.0  # re-read the clock at least this often, even with no timer pending


class TimerDriver:
    """Fires the live clock's due timers on the loop (see module docstring)."""

    def __init__(self, clock, on_error: Callable[[BaseException], None]) -> None:
        self._clock = clock
        self._on_error = on_error
        self._wake: anyio.Event | None = None
        self.fired = 0

    def _wake_up(self) -> None:
        event = self._wake
        if event is not None:
            self._wake = None
            event.set()

    async def run(self) -> None:
        clock = self._clock
        clock.set_wakeup(self._wake_up)
        try:
            while True:
                now = time.time_ns()
                due = clock.next_event_ns
                if due <= now:
                    try:
                        self.fired += clock.advance_time(now)
                    except Exception as exc:  # the clock keeps later firings pending; carry on
                        self._on_error(exc)
                    await checkpoint()
                    continue
                self._wake = anyio.Event()
                with anyio.move_on_after(min((due - now) / 1e9, _MAX_SLEEP_S)):
                    await self._wake.wait()
                self._wake = None
        finally:
            clock.set_wakeup(None)


class Liveness:
    """The kernel loop's liveness tick (see module docstring)."""

    def __init__(self, interval_s: float, on_error: Callable[[BaseException], None] | None = None) -> None:
        if not interval_s > 0:
            raise ValueError(f"liveness interval must be > 0 seconds, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self.count = 0
        self.last_tick_ns = 0
        self.listener_errors = 0
        self._on_error = on_error
        self._listeners: list[Callable[[int, int], object]] = []

    def add_listener(self, listener: Callable[[int, int], object]) -> None:
        """``listener(count, ts_ns)`` runs on the kernel loop at every tick; keep it quick."""
        self._listeners.append(listener)

    def seconds_since_last_tick(self) -> float | None:
        if not self.last_tick_ns:
            return None
        return (time.time_ns() - self.last_tick_ns) / 1e9

    def tick(self) -> None:
        self.count += 1
        self.last_tick_ns = ts = time.time_ns()
        for listener in self._listeners:
            try:
                listener(self.count, ts)
            except Exception as exc:  # a host's listener must not stop the tick
                self.listener_errors += 1
                if self._on_error is not None:
                    self._on_error(exc)

    async def run(self) -> None:
        # The grid is kept on anyio's monotonic clock so a slow tick does not shift later ones.
        next_at = anyio.current_time()
        while True:
            self.tick()
            next_at += self.interval_s
            now = anyio.current_time()
            if next_at < now:  # the loop was blocked: resume the grid from now, do not burst
                next_at = now + self.interval_s
            await anyio.sleep_until(next_at)

    def stats(self) -> dict:
        return {"count": self.count, "last_tick_ns": self.last_tick_ns, "interval_s": self.interval_s}


__all__ = ["Liveness", "TimerDriver"]
