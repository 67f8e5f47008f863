"""Waiting in trio for the ``concurrent.futures.Future`` that ``TradingNode.inject`` returns.

The node resolves a command's future on the kernel loop, which in the child *is* this trio loop,
so the done-callback normally runs on the trio thread and can set a ``trio.Event`` directly. A
future may in principle be resolved from another thread (``TradingNode.dispose`` from a thread
rejects what is left); then the callback hands the wake-up to the loop through the trio token
instead, because a ``trio.Event`` must only be touched from its own thread. No thread is spent
waiting either way.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import trio


async def wait_future(future: Future) -> Any:
    """Return ``future``'s result (or raise its exception) once it is done, without blocking the loop."""
    if not future.done():
        done = trio.Event()
        loop_thread = threading.get_ident()
        token = trio.lowlevel.current_trio_token()

        def wake(_: Future) -> None:
            if threading.get_ident() == loop_thread:
                done.set()
            else:
                try:
                    token.run_sync_soon(done.set)
                except trio.RunFinishedError:  # the loop is gone: nobody is waiting any more
                    pass

        future.add_done_callback(wake)
        await done.wait()
    return future.result()


__all__ = ["wait_future"]
