"""Wait for the process this child replaces to be gone before taking its node's state store.

Why: a node found hung is SIGKILLed and handed to a spare at once (``Orchestrator._on_hang``),
and so is a node whose child has begun to die on its own (its lifeline, ``Orchestrator.
_on_lost_lifeline``), while the kernel is still tearing the old process down (~4-7 ms on the
project's machine, more for a bigger process). The old process holds the store's lock until
its files are closed, at the very end of that teardown.
SQLite's own wait for a lock is a sleep with growing steps (1, 2, 5, 10, 15 ms...), so a lock
freed at 5 ms is taken at 8 ms, one freed at 9 ms at 18 ms: up to ~10 ms lost on the restart's
critical path. A *pidfd* of the old process is readable exactly when its last thread has exited,
after its files are closed: waiting on it takes the lock as soon as it is free.

The old process is the orchestrator's child: its pid stays its own until the orchestrator reaps
it. Reaped before we look (``ProcessLookupError``) means it is gone (a pid reused by another
process within those milliseconds would only cost the bound below). The wait is bounded: a
process that cannot die (uninterruptible sleep) leaves the decision to the store's own
``lock_timeout``, which then refuses the store with a clear error and the restart policy retries.
"""

from __future__ import annotations

import os

import trio

PREDECESSOR_WAIT_S = 1.0
"""At most this long for the predecessor's end; then the store's own lock wait takes over."""


async def wait_for_predecessor(pid: int, timeout_s: float = PREDECESSOR_WAIT_S) -> bool:
    """Return once process ``pid`` has ended (True), or after ``timeout_s`` (False); 0 is none."""
    if pid <= 0:
        return True
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # reaped already
    except OSError:  # no pidfd (kernel < 5.3, seccomp): the store's lock wait decides alone
        return False
    try:
        with trio.move_on_after(timeout_s):
            await trio.lowlevel.wait_readable(fd)
            return True
        return False
    finally:
        os.close(fd)


__all__ = ["PREDECESSOR_WAIT_S", "wait_for_predecessor"]
