"""Make a worker process die with its parent: no orphaned workers, ever (DESIGN §3).

Why the kernel and not a watchdog thread: a parent killed with SIGKILL runs no cleanup code, so
only the kernel can tell the children. ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks Linux to send
SIGKILL to this process when the thread that started it exits. The parent may already have
died between starting the child and the ``prctl`` call; then the child has been re-parented, so
comparing ``getppid()`` with the pid the parent passed closes that window.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

PR_SET_PDEATHSIG = 1
EXIT_ORPHANED = 3


class ParentDeathSignalError(OSError):
    """``prctl(PR_SET_PDEATHSIG)`` failed (not Linux, or a seccomp policy refused it)."""


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Arrange for ``sig`` on parent death; exit at once if the parent is already gone."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise ParentDeathSignalError(err, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(err)}")
    if os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)
