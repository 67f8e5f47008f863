"""An exclusive ``flock`` on a file that names its holder: one owner of a directory at a time.

Why ``flock`` rather than a pid file alone: the kernel drops the lock when the holding process
dies, however it dies (``kill -9``), so a stale file never blocks the next owner. The holder
writes a line about itself (its pid, and what else helps) into the file only so that a refused
second owner can name it. The descriptor is close-on-exec: children never keep the lock.
Used by the orchestrator's state dir (``fleet.state_dir``) and a sweep's results dir
(``sweep.lock``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class HeldElsewhere(Exception):
    """Another process holds the lock; ``holder`` is what it wrote about itself."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder}")
        self.path = path
        self.holder = holder


class PidLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process's end)."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, path: Path, about_me: str, mode: int = 0o600) -> PidLock:
        """Lock ``path`` (made if needed) and write ``about_me`` in it; :class:`HeldElsewhere`
        if another process holds it, ``OSError`` if the file cannot be opened."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "pid unknown"
            os.close(fd)
            raise HeldElsewhere(Path(path), holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{about_me}\n".encode(), 0)
        return cls(fd, Path(path))

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


__all__ = ["HeldElsewhere", "PidLock"]
