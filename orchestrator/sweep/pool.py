"""Worker processes as the parent sees them: start one, talk to it, stop it, say how it ended.

Why a handle of our own and not ``multiprocessing.Pool``: a pool hides which task a dead
worker held and cannot replace it cleanly, and it cannot retire one worker while the others
keep going. A handle knows the tasks sent to its worker that have no outcome yet
(``outstanding``, in order: the first is the one running, the rest are queued in the pipe),
so a death can be pinned on exactly one run.

Workers start with SIGINT blocked (the signal mask survives spawn's fork+exec): a Ctrl-C that
lands while a worker is still importing must not kill it with a traceback; the worker ignores
SIGINT and unblocks it once its handler is in place.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque

from orchestrator.sweep.messages import Task
from orchestrator.sweep.worker import worker_main


def spawn_context():
    return multiprocessing.get_context("spawn")


class WorkerHandle:
    def __init__(self, process, conn) -> None:
        self.process = process
        self.conn = conn
        self.pid: int = process.pid
        self.spawned_at = time.monotonic()
        self.ready = False
        self.assigned = 0
        self.outstanding: deque[Task] = deque()
        self.stopping = False
        self.conn_open = True
        self._closed_exitcode: int | None = None
        self._closed = False

    @property
    def exitcode(self) -> int | None:
        return self._closed_exitcode if self._closed else self.process.exitcode

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def send(self, task: Task) -> None:
        """Queue ``task`` in the worker's pipe; OSError (and no bookkeeping) if it is gone."""
        self.conn.send(task)
        self.outstanding.append(task)
        self.assigned += 1

    def receive_available(self) -> list:
        """Every message already in the pipe; marks the pipe closed at EOF (the worker is gone)."""
        messages = []
        try:
            while self.conn_open and self.conn.poll(0):
                messages.append(self.conn.recv())
        except (EOFError, OSError):
            self.conn_open = False
        return messages

    def stop(self) -> None:
        """Ask the worker to exit after its outstanding tasks (it reads ``None`` after them)."""
        self.stopping = True
        try:
            self.conn.send(None)
        except OSError:
            pass

    def terminate(self) -> None:
        if self.exitcode is None:
            self.process.terminate()

    def kill(self) -> None:
        if self.exitcode is None:
            self.process.kill()

    def describe_exit(self) -> str:
        code = self.exitcode
        if code is None:
            return f"worker {self.pid} is still running"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"worker {self.pid} died: killed by {name}"
        return f"worker {self.pid} died: exited with status {code}"

    def close(self, timeout: float = 5.0) -> None:
        """Release the pipe, reap the process and free its sentinel (once it has exited).

        The sentinel becomes readable when the dying process closes its files, a moment before
        it can be reaped, so this waits (briefly, in practice) rather than polling once.
        """
        if self._closed:
            return
        self.conn_open = False
        self.conn.close()
        self.process.join(timeout=timeout)
        if self.process.exitcode is not None:
            self._closed_exitcode = self.process.exitcode
            self.process.close()
            self._closed = True


def spawn_worker(ctx) -> WorkerHandle:
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=worker_main, args=(child_conn, os.getpid()), name="sweep-worker", daemon=True
    )
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    child_conn.close()
    return WorkerHandle(process, parent_conn)
