"""One sweep per results directory: an exclusive ``flock`` on ``OUT/sweep.lock`` for the sweep's life.

Why: two sweeps on the same ``--out`` (a second terminal, a cron job that overlaps the last one)
would each read the store, find the same runs missing and run them twice, each overwriting the
other's rows. ``flock`` rather than a pid file alone: the kernel drops the lock when the
process dies, however it dies (``kill -9``), so a stale lock can never block the next sweep.
The holder writes its pid into the file only so that the refused sweep can name it. The file
descriptor is close-on-exec, so worker processes never hold the lock after the parent is gone.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "sweep.lock"


class SweepLockedError(Exception):
    """Another sweep holds the directory's lock; the message names its pid."""


class SweepLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, out_dir: Path) -> SweepLock:
        path = Path(out_dir) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SweepLockedError(
                f"{out_dir}: another sweep (pid {holder}) is using this directory; "
                "wait for it to finish (or stop it), or give this one another --out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = -1
