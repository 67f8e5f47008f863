"""One sweep per results directory: an exclusive ``flock`` on ``OUT/sweep.lock`` for the sweep's life.

Why: two sweeps on the same ``--out`` (a second terminal, a cron job that overlaps the last one)
would each read the store, find the same runs missing and run them twice, each overwriting the
other's rows. ``flock`` rather than a pid file alone: the kernel drops the lock when the
process dies, however it dies (``kill -9``), so a stale lock can never block the next sweep.
The holder writes its pid into the file only so that the refused sweep can name it. The file
descriptor is close-on-exec, so worker processes never hold the lock after the parent is gone.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.process.pid_lock import HeldElsewhere, PidLock

LOCK_NAME = "sweep.lock"


class SweepLockedError(Exception):
    """Another sweep holds the directory's lock; the message names its pid."""


class SweepLock:
    """The results dir's lock (``orchestrator.process.pid_lock``), held for the sweep's life."""

    def __init__(self, lock: PidLock) -> None:
        self._lock = lock
        self.path = lock.path

    @classmethod
    def acquire(cls, out_dir: Path) -> SweepLock:
        try:
            lock = PidLock.acquire(Path(out_dir) / LOCK_NAME, str(os.getpid()), 0o644)
        except HeldElsewhere as exc:
            raise SweepLockedError(
                f"{out_dir}: another sweep (pid {exc.holder}) is using this directory; "
                "wait for it to finish (or stop it), or give this one another --out"
            ) from None
        return cls(lock)

    def release(self) -> None:
        self._lock.release()
