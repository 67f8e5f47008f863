"""The child side of "no orphans": the kernel kills the child when its parent dies.

A child calls :func:`die_with_parent` first thing after start-up. On Linux it asks the kernel,
with ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, to SIGKILL this process when its parent goes away. This
works even when the parent is killed with SIGKILL (no clean-up code of the parent runs then),
which is exactly the case the child's own parent-heartbeat check is too slow for.

Two traps, and how they are closed:

1. **The race before prctl.** If the parent dies after the fork but before the child calls
   prctl, nobody will ever send the signal: the child was already re-parented (to init or a
   subreaper). So after arming, the child compares ``os.getppid()`` with the pid its parent gave
   it; a mismatch means the parent is already gone, and the child exits with
   ``PARENT_LOST`` at once.
2. **"Parent" means the parent *thread*.** The kernel sends the signal when the *thread* that
   forked the child exits, not when the parent process does. ``trio.lowlevel.open_process``
   forks from a worker thread of trio's thread cache, and those threads exit after 10 s idle:
   a child armed with PDEATHSIG and started that way is SIGKILLed ~10 s after start (measured).
   That is why ``orchestrator.process.spawn`` forks from the trio thread itself.

How the child learns its parent's pid: ``spawn`` puts the parent's pid in the environment
variable ``ORCHESTRATOR_PARENT_PID`` (:data:`PARENT_PID_ENV`) of every child; the child reads it
with :func:`expected_parent_pid` (or calls :func:`die_with_parent_from_env`). A pid taken from the
environment, not ``os.getppid()`` at start-up, is what makes trap 1 detectable.

Elsewhere than Linux, arming is a no-op with a :class:`RuntimeWarning`; the ppid check still runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import warnings
from collections.abc import Mapping

from orchestrator.process.exit_codes import PARENT_LOST

PARENT_PID_ENV = "ORCHESTRATOR_PARENT_PID"
"""Environment variable through which the parent tells the child its pid."""

_PR_SET_PDEATHSIG = 1
_PR_GET_PDEATHSIG = 2


class ParentPidMissing(RuntimeError):
    """The child was not told its parent's pid (the environment variable is absent or invalid)."""


def expected_parent_pid(environ: Mapping[str, str] | None = None) -> int:
    """The parent's pid as the parent passed it in :data:`PARENT_PID_ENV`."""
    env = os.environ if environ is None else environ
    raw = env.get(PARENT_PID_ENV)
    if raw is None:
        raise ParentPidMissing(
            f"{PARENT_PID_ENV} is not set: start the child with orchestrator.process.spawn"
        )
    try:
        pid = int(raw)
    except ValueError:
        raise ParentPidMissing(f"{PARENT_PID_ENV}={raw!r} is not a pid") from None
    if pid <= 0:
        raise ParentPidMissing(f"{PARENT_PID_ENV}={raw!r} is not a pid")
    return pid


def _prctl(option: int, arg2: object) -> int:
    # Loaded per call: no module-level state, and it is called once per process.
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.prctl(ctypes.c_int(option), arg2, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")
    return result


def arm_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread dies.

    Returns True when armed, False (with a :class:`RuntimeWarning`) where the kernel has no such
    facility. The setting survives ``execve`` but is cleared in children of this process.
    """
    if not sys.platform.startswith("linux"):
        warnings.warn(
            f"PR_SET_PDEATHSIG is Linux-only: on {sys.platform} this child will not die with its parent",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    _prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(int(sig)))
    return True


_PR_SET_CHILD_SUBREAPER = 36


def become_child_subreaper() -> bool:
    """Adopt this process's orphaned descendants (``PR_SET_CHILD_SUBREAPER``); False off Linux.

    The orchestrator does so before it starts the zygote: a child the zygote forks (through an
    intermediate that exits) becomes the orchestrator's own, which reaps it and which its
    parent-death signal is armed against (``orchestrator.child.zygote``).
    """
    if not sys.platform.startswith("linux"):
        return False
    _prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1))
    return True


_PR_SET_NAME = 15


def set_process_name(name: str) -> None:
    """Name this process (``ps -o comm``, ``top``; at most 15 bytes kept) where Linux allows it."""
    if sys.platform.startswith("linux"):
        _prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]))


def parent_death_signal() -> int:
    """The signal currently armed by PR_SET_PDEATHSIG (0 if none, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    out = ctypes.c_int(0)
    _prctl(_PR_GET_PDEATHSIG, ctypes.byref(out))
    return out.value


def die_with_parent(expected_ppid: int) -> None:
    """Arm PDEATHSIG=SIGKILL, then exit with ``PARENT_LOST`` at once if the parent is already gone.

    "At once" means ``os._exit``: a process whose parent is gone has nobody to report to, and
    running ``atexit`` hooks or flushing half-built state would only delay its end.
    """
    arm_parent_death_signal(signal.SIGKILL)
    actual = os.getppid()
    if actual != expected_ppid:
        os.write(
            2,
            f"parent lost before start-up completed: parent pid is {actual}, expected {expected_ppid}\n".encode(),
        )
        os._exit(PARENT_LOST)


def die_with_parent_from_env(environ: Mapping[str, str] | None = None) -> None:
    """:func:`die_with_parent` with the pid the parent put in :data:`PARENT_PID_ENV`."""
    die_with_parent(expected_parent_pid(environ))


def die_with_parent_or_exit(program: str) -> None:
    """For a child program's entry point: :func:`die_with_parent_from_env`, or exit 2 saying why."""
    try:
        die_with_parent_from_env()
    except ParentPidMissing as exc:
        sys.stderr.write(f"{program}: {exc}\n")
        sys.exit(2)
