"""The orchestrator's own log, ``logs/orchestrator.log``: timestamped, rotated like the nodes'.

It receives the orchestrator's warnings and errors (invalid frames, children that would not
start) and every node state change, whether ``up`` runs in the foreground (where the screen
shows them too) or detached (where it is the only record).

Detached, the process's stdout and stderr are that file as well (the launcher opened it, so a
traceback or an ``error:`` line at start-up lands there): they follow the log when it is rotated
(``carry_stdio``), or it would grow for ever through them, and the rotated file would keep
receiving them. A log removed under the handler (its runtime dir emptied; the state dir is the
runtime dir) is opened again at its path by the next record, stdout and stderr with it.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path


class OwnLogHandler(RotatingFileHandler):
    """Rotating, quiet when it cannot write, reopened when removed; see the module docstring."""

    def __init__(self, path: Path, max_bytes: int, backups: int, carry_stdio: bool) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups)
        self.carry_stdio = carry_stdio
        self.told = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            removed = self.stream is not None and os.fstat(self.stream.fileno()).st_nlink == 0
        except (OSError, ValueError):
            removed = False
        if removed:
            self.stream.close()
            self.stream = None  # opened again at its path by the emit below (its errors handled)
        super().emit(record)
        if removed:
            self._carry_stdio()

    def doRollover(self) -> None:
        super().doRollover()
        self._carry_stdio()

    def _carry_stdio(self) -> None:
        """Point stdout and stderr at the file the log writes to now (detached only)."""
        if not self.carry_stdio or self.stream is None:
            return
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(self.stream.fileno(), 1)
        os.dup2(self.stream.fileno(), 2)

    def handleError(self, record: logging.LogRecord) -> None:
        """A log it cannot write (a full disk) costs one line on stderr, not a traceback per record."""
        if not self.told:
            self.told = True
            print(
                f"orchestrator: cannot write its log {self.baseFilename} ({sys.exc_info()[1]}); "
                "log lines are dropped while that lasts",
                file=sys.stderr,
            )


def open_own_log(path: Path, config, carry_stdio: bool) -> logging.Logger:
    """The ``orchestrator`` logger, writing to ``path`` (rotation from ``config``'s log settings)."""
    handler = OwnLogHandler(path, config.log_max_bytes, config.log_backups, carry_stdio)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("orchestrator")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


__all__ = ["OwnLogHandler", "open_own_log"]
