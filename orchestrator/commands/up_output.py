"""What ``orchestrator up`` shows while it runs: a line per state change, or a live table.

Both write to stdout through :class:`Screen`, which outlives its stdout: a terminal that was
closed (an ssh connection dropped: writes fail with EIO) or a pipe whose reader has gone (EPIPE)
must not take the fleet down with an exception in a print. The first failed write points
stdout at ``/dev/null`` (so no later write, nor the interpreter's flush at exit, fails again),
logs a warning to the orchestrator's own log, and the fleet runs on; a closed terminal also
sends SIGHUP, which stops it gracefully (``up``'s signal handling).
"""

from __future__ import annotations

import collections
import logging
import shutil
import sys
import time

from orchestrator.commands.closed_output import point_at_devnull

log = logging.getLogger("orchestrator")


class Screen:
    """stdout, until a write to it fails (module docstring)."""

    def __init__(self) -> None:
        self.lost: str | None = None  # why writing stopped, once it has

    def write(self, text: str) -> None:
        if self.lost is not None:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError) as exc:  # ValueError: stdout closed
            self.lost = f"{type(exc).__name__}: {exc}"
            point_at_devnull()
            log.warning("the orchestrator's output is gone (%s); it runs on, logging here", self.lost)


def state_line(event: dict) -> str:
    """One node state change as a line: ``n0: running pid=123 incarnation=1``."""
    shown = ("pid", "incarnation", "reason", "cold")
    extra = "".join(f" {k}={event[k]}" for k in shown if event.get(k) not in (None, False))
    return f"{event['node']}: {event['state']}{extra}"


class PlainOutput:
    """Not a terminal (a log file, a pipe, a test): one line per state change, as they happen."""

    def __init__(self, header: str) -> None:
        self.screen = Screen()
        self.say(header)

    def state_change(self, event: dict) -> None:
        self.say(state_line(event))

    def say(self, line: str) -> None:
        self.screen.write(line + "\n")

    def final(self, line: str) -> None:
        self.say(line)

    async def run(self, orch) -> None:
        """Nothing to redraw."""

    def close(self, orch) -> None:
        """Nothing to finish."""


class LoggedOutput:
    """``up --detach``: no screen; the header and the last line go to the orchestrator's own log,
    which records every state change anyway."""

    def __init__(self, logger: logging.Logger, header: str) -> None:
        self._log = logger
        self.say(header)

    def state_change(self, event: dict) -> None:
        """Logged by ``up`` itself, as for every output."""

    def say(self, line: str) -> None:
        self._log.info(line)

    async def run(self, orch) -> None:
        """Nothing to redraw."""

    def close(self, orch) -> None:
        """Nothing to finish."""

    def final(self, line: str) -> None:
        self.say(line)


class LiveView:
    """A terminal: the status table redrawn in place every ``REDRAW_S``, state changes below it.

    The redraw reads ``orch.status()`` directly (same process, same trio loop), so it costs no
    control-socket round trip. State change lines are kept, with their time, in a bounded list
    shown under the table.
    """

    REDRAW_S = 0.5
    RECENT = 12

    def __init__(self, header: str) -> None:
        self.header = header
        self.recent: collections.deque[str] = collections.deque(maxlen=self.RECENT)
        self.screen = Screen()

    def state_change(self, event: dict) -> None:
        ts = event.get("ts")
        when = time.strftime("%H:%M:%S", time.localtime(ts / 1e9 if ts else None))
        self.recent.append(f"{when} {state_line(event)}")

    def say(self, line: str) -> None:
        self.recent.append(f"{time.strftime('%H:%M:%S')} {line}")

    def draw(self, orch) -> None:
        from orchestrator.commands.status import render_live

        if self.screen.lost is not None:
            return  # nobody to draw for
        width = shutil.get_terminal_size().columns
        self.screen.write(render_live(self.header, orch.status(), list(self.recent), width) + "\n")

    async def run(self, orch) -> None:
        import trio

        while True:
            self.draw(orch)
            await trio.sleep(self.REDRAW_S)  # the redraw pace, not a wait for anything

    def close(self, orch) -> None:
        self.draw(orch)  # the final states stay on screen

    def final(self, line: str) -> None:
        self.screen.write(line + "\n")


__all__ = ["LiveView", "LoggedOutput", "PlainOutput", "Screen", "state_line"]
