"""What a node needs of its event loop beyond anyio's portable API, done the cheap way per loop.

A node runs on whatever anyio loop its host runs (asyncio or trio). Two of anyio's portable
tools cost more than the node can afford on a restart's critical path, so this module does
their job directly on the loop underneath:

* **Task groups.** Since anyio 4.14 its task group wraps every task in a ``TaskHandle`` that has
  its own cancel scope and event. On the project's 2-core machine a group with 10 tasks cost
  388-652 us against 139-269 us for a trio nursery (25-38 us more per task; bench/loop_backend.py),
  and a node spawns ~19 tasks as
  it starts (a drain per engine queue, timers, liveness, commands, stream, the clients'
  connects). On trio's loop :func:`open_task_group` is a nursery, opened strict as anyio's group
  is; the node uses only what both have alike (``start_soon(fn, *args, name=...)``,
  ``start(fn, name=...)`` with ``task_status.started()``, ``cancel_scope.cancel()``, errors as
  exception groups). Elsewhere it is anyio's group.
* **Waking the loop from another thread** (a ``stop()`` or a command from the host's thread):
  anyio's way is a ``BlockingPortal``, a task group and a task of its own (28-54 us to open and
  close, warm, and more on a restart's cold caches). :func:`thread_waker` is the loop's own thread-safe "call soon": trio's token,
  or asyncio's ``call_soon_threadsafe``. After the loop has ended it raises, as the portal did.

Measured together, in fresh processes after a rehearsal (a recovery from a bench node's store,
then ``TradingNode.run_async`` to RUNNING; 12 pairs with the code before): -0.46 ms per start,
paired median, of ~5 ms.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from anyio.lowlevel import get_async_backend


def current_backend() -> str:
    """The name of the anyio backend the calling task runs on: ``"trio"`` or ``"asyncio"``."""
    return get_async_backend().__module__.rpartition("_")[2]


def open_task_group():
    """An async context manager: a task group for the calling loop (see the module docstring)."""
    if current_backend() == "trio":
        import trio  # the loop is trio's: imported already

        return trio.open_nursery(strict_exception_groups=True)
    return anyio.create_task_group()


def thread_waker() -> Callable[[Callable[[], object]], object]:
    """For the calling loop: a function that runs ``fn()`` soon on it, callable from any thread."""
    if current_backend() == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    import asyncio

    return asyncio.get_running_loop().call_soon_threadsafe


__all__ = ["current_backend", "open_task_group", "thread_waker"]
