"""Per-node log files: a child's stdout/stderr move to ``<log dir>/<node>.log`` on assign.

Why the child does it (and not the parent's spawn): a child starts as a warm spare before anyone
knows which node it will run, so its process-level output first goes to its slot's log; once it
is assigned, everything the node writes (its logger writes to ``sys.stderr``, ``print``,
tracebacks, the child's own diagnostics) belongs to that node's file, across restarts and
whichever slot runs it. Redirecting the file descriptors 1 and 2 (``dup2``) catches all of it,
C-level writes included, with no logging configuration.

Rotation is by size with ``backups`` numbered files (``node.log.1`` is the newest backup), done
when the file is opened and then by ``rotate_if_large`` calls from the child's loop. The same
calls open the file again if it was removed (``reopen_if_removed``: its runtime dir emptied by a
logout, then made again by the orchestrator's ``RuntimeDirWatch``): writing on into a removed
file would lose everything the node says from then on.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 3

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def node_log_name(node_id: str) -> str:
    """The file name of a node's log: its id with anything but ``[A-Za-z0-9_.-]`` as ``_``.

    A node id may contain ``/`` or ``..``; it must never name a path outside the log dir.
    """
    safe = _UNSAFE.sub("_", node_id)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    return f"{safe}.log"


def rotate(path: Path, backups: int) -> None:
    """``path`` -> ``path.1`` -> ... -> ``path.<backups>`` (the oldest is dropped)."""
    if backups < 1:
        path.unlink(missing_ok=True)
        return
    for i in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    if path.exists():
        os.replace(path, path.with_name(f"{path.name}.1"))


class NodeLogFile:
    """Owns the redirection of fds 1 and 2 to one node's log file."""

    def __init__(self, log_dir: str | os.PathLike, node_id: str, max_bytes: int, backups: int) -> None:
        self.path = Path(log_dir) / node_log_name(node_id)
        self.max_bytes = max_bytes
        self.backups = backups

    def open(self) -> None:
        """Rotate if the file is already over the size, then point stdout and stderr at it."""
        try:
            if self.path.stat().st_size >= self.max_bytes:
                rotate(self.path, self.backups)
        except FileNotFoundError:
            pass
        self._redirect()

    def rotate_if_large(self) -> bool:
        """Rotate when the current file has reached ``max_bytes``; True if it did."""
        try:
            size = os.fstat(2).st_size
        except OSError:
            return False
        if size < self.max_bytes:
            return False
        rotate(self.path, self.backups)
        self._redirect()
        return True

    def reopen_if_removed(self) -> bool:
        """Point stdout and stderr at a new file if theirs was removed; True if it did.

        False while the dir is missing too: the next call, a second later, tries again.
        """
        try:
            if os.fstat(2).st_nlink > 0:
                return False
            self._redirect()
        except OSError:
            return False
        return True

    def _redirect(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)


__all__ = ["DEFAULT_BACKUPS", "DEFAULT_MAX_BYTES", "NodeLogFile", "node_log_name", "rotate"]
