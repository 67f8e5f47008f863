"""One-line diagnostics on stderr, prefixed with the slot and pid.

The child's stderr is the parent's log file for that process; a line must say which child wrote
it without the reader correlating pids by hand. Plain writes, no logging configuration: the node
has its own logger (``log_sink``), and this is only for what the child itself has to say
(malformed frames, the reason it exits, a traceback when something unexpected happened).
"""

from __future__ import annotations

import os
import sys
import traceback


class ChildLog:
    """Writes ``child <slot> [pid]: message`` lines to stderr."""

    def __init__(self, slot: str) -> None:
        self._prefix = f"child {slot} [{os.getpid()}]: "

    def write(self, message: str) -> None:
        try:
            sys.stderr.write(self._prefix + message + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed or a broken pipe: nothing better to do
            pass

    def exception(self, message: str, exc: BaseException) -> None:
        details = "".join(traceback.format_exception(exc)).rstrip()
        self.write(f"{message}\n{details}")


__all__ = ["ChildLog"]
