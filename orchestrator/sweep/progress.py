"""Showing a sweep's progress: an in-place bar on a terminal, plain lines otherwise.

Why two forms: a bar redrawn with ``\\r`` is what a person at a terminal wants, but in a CI log
or a file it turns into one enormous line of carriage returns. When the stream is not a
terminal we print an ordinary line at most every ``interval_s`` seconds (and the last one).
With ``--json`` the caller passes no progress at all, so stdout holds only the JSON object.

The ETA extrapolates from the runs finished in *this* invocation (a resumed sweep's earlier
runs say nothing about how fast this machine is going now).
"""

from __future__ import annotations

import time

from orchestrator.sweep.scheduler import Counts

BAR_WIDTH = 24


def format_eta(counts: Counts) -> str:
    remaining = counts.total - counts.done
    if remaining <= 0:
        return "0:00:00"
    if counts.finished_now == 0:
        return "--:--:--"
    seconds = int(round(remaining * counts.elapsed_s / counts.finished_now))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def describe(counts: Counts) -> str:
    crashed = f", crashed {counts.crashed}" if counts.crashed else ""
    return (
        f"{counts.done}/{counts.total} done (ok {counts.ok}, failed {counts.failed}{crashed}), "
        f"running {counts.running}, queued {counts.queued}, ETA {format_eta(counts)}"
    )


class Progress:
    """Call with each Counts update; ``finish`` ends the display (a newline after a bar)."""

    def __init__(
        self, stream, tty: bool | None = None, interval_s: float | None = None, clock=time.monotonic
    ):
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._interval_s = interval_s if interval_s is not None else (0.1 if self._tty else 2.0)
        self._clock = clock
        self._last_time: float | None = None
        self._last_text: str | None = None

    def __call__(self, counts: Counts) -> None:
        now = self._clock()
        text = describe(counts)
        final = counts.done >= counts.total
        if self._last_time is not None and now - self._last_time < self._interval_s and not final:
            return
        if text == self._last_text:
            return
        self._last_time, self._last_text = now, text
        if self._tty:
            filled = BAR_WIDTH * counts.done // counts.total if counts.total else BAR_WIDTH
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self._stream.write(f"\r\x1b[2K[{bar}] {text}")
        else:
            self._stream.write(f"sweep: {text}\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._tty and self._last_text is not None:
            self._stream.write("\n")
            self._stream.flush()


class PlanningNotice:
    """Planning that takes more than ``after_s``: a line every ``interval_s``, so a silence is explained.

    Why: a 10,000-run grid takes seconds to resolve and check before the first run starts, and a
    command that says nothing for that long looks hung. Planning that is quick prints nothing.
    Call with ``(stage, done, total)`` as often as convenient; it is cheap when it prints nothing.
    """

    def __init__(self, stream, after_s: float = 0.5, interval_s: float = 2.0, clock=time.monotonic):
        self._stream = stream
        self._after_s = after_s
        self._interval_s = interval_s
        self._clock = clock
        self._start = clock()
        self._last: float | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self._clock()
        if now - self._start < self._after_s:
            return
        if self._last is not None and now - self._last < self._interval_s and done < total:
            return
        self._last = now
        self._stream.write(f"sweep: planning: {done:,}/{total:,} {stage}\n")
        self._stream.flush()
