"""StoreWriter: the one thread that writes a node's state store, so the kernel loop never waits on disk.

Why not ``anyio.to_thread.run_sync``: it is built for any function on any of a pool of threads
(a capacity limiter, a cancel scope, a thread cache that names its worker for every job), and a
node commits tens of times a second while it trades. Measured on the project's 2-core machine
(``bench/loop_backend.py``), a no-op handed from a trio loop to another thread and back: 238-242
us of CPU through anyio, 166-183 us through this one dedicated thread, fed by a queue, that wakes
the loop with its own call-soon (``loop_backend.thread_waker``). The writes are serial anyway
(one SQLite connection), so one thread loses nothing.

Like ``to_thread``, a write once handed over runs to its end: a caller cancelled meanwhile still
waits for it (a commit half-known to the node would be worse than a late cancellation), and the
write's exception is raised in the caller. The thread starts with the first write (a warm spare
forks from the zygote, where no thread may exist) and ends at :meth:`close`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import anyio

from node.live.loop_backend import thread_waker

_STOP = object()


class StoreWriter:
    """Runs the writes handed to :meth:`run` one by one on a thread of its own (module docstring)."""

    def __init__(self, name: str = "state-store-writer") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the writer thread; its result, or its exception raised here."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        wake = thread_waker()
        done = anyio.Event()
        outcome: list = []

        def job() -> None:
            try:
                outcome.append((True, fn(*args)))
            except BaseException as exc:  # handed back to the caller, as to_thread does
                outcome.append((False, exc))
            try:
                wake(done.set)
            except RuntimeError:  # the loop has ended (trio's RunFinishedError is one): nobody waits
                pass

        self._jobs.put(job)
        with anyio.CancelScope(shield=True):  # the write runs to its end: so does this wait
            await done.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            job()

    def close(self) -> None:
        """End the thread once the writes already handed over are done (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join()


__all__ = ["StoreWriter"]
