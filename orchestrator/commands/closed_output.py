"""Standard output that may go away: ``sweep ... | head -1`` must not cost the sweep its work.

Why: Python ignores SIGPIPE, so a write to a pipe whose reader has exited raises
BrokenPipeError, and an uncaught one killed a sweep at its first progress line with every run
still to do. Unix tools die of SIGPIPE quietly instead; a sweep does better: it keeps running
and storing results, and only stops writing to stdout (as ``up``'s Screen does). The first
failed write points file descriptor 1 at ``/dev/null``, so neither a later write nor the
interpreter's flush at exit fails again (that flush is what printed "Exception ignored ...
BrokenPipeError"). The exit status stays the job's own (0, 1 or 2): the output was
truncated by the reader's choice, and the results are all in the store.

Used by ``backtest`` and ``sweep`` for everything they write to stdout; :func:`point_at_devnull`
by every command whose reader may go (``up``'s Screen, ``events``, ``logs``, the control CLI).
"""

from __future__ import annotations

import os
import sys


class GuardedStdout:
    """A text stream over ``sys.stdout`` that swallows the loss of its reader (module docstring)."""

    def __init__(self, stream=None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self.lost: str | None = None  # why writing stopped, once it has

    def write(self, text: str) -> None:
        if self.lost is not None:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError) as exc:  # EPIPE, EIO (a closed terminal), ValueError: closed file
            self.lost = f"{type(exc).__name__}: {exc}"
            point_at_devnull(self._stream)

    def print(self, text: str = "") -> None:
        self.write(text + "\n")

    def flush(self) -> None:
        """Every write is flushed already."""

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False


def point_at_devnull(stream=None) -> None:
    """Point ``stream``'s file descriptor (stdout by default) at ``/dev/null``: its reader has
    gone, and neither a later write nor the interpreter's flush at exit may fail on it again."""
    try:
        fd = (stream if stream is not None else sys.stdout).fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
