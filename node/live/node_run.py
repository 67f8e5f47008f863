"""How a TradingNode runs: its event loop, its task group, start-up, then serving until a stop.

Part of :class:`node.live.node.TradingNode`, as a mixin: these methods share its attributes (the
queues and their bridge, the timers, the inbox, the stream port, the start-up sequences) and are
kept apart so that the node's tasks, which tasks run when, and how start-up leads to RUNNING,
read in one place. ``run`` owns a loop; ``run_async`` runs in the host's (asyncio or trio).

``run_async`` starts the workers (a drain task per engine queue, timers, liveness, the command
inbox, the external stream), the signal watcher and the duration timer if asked, then runs the
start-up steps (``node.live.sequences``); once RUNNING it starts each client's streaming task and
waits for a stop request. Whatever ends it, the stop (``node.live.node_stop``) runs shielded
before the task group is cancelled.
"""

from __future__ import annotations

import signal
import threading
from functools import partial

import anyio

from node.live.errors import NodeFatalError, StartupError
from node.live.loop_backend import current_backend, open_task_group, thread_waker
from node.live.states import NodeState, NodeTrigger


class NodeRunning:
    """The TradingNode's loop, tasks and start-up (module docstring)."""

    def run(self, backend: str | None = None, duration: float | None = None) -> None:
        """Run until stopped, on an event loop the node owns (``backend``: asyncio or trio).

        SIGINT/SIGTERM stop the node (when called on the main thread); after a signal the node is
        also disposed before this returns. ``duration`` stops it after that many seconds.
        Start-up and fatal errors are raised.
        """
        backend = backend or self.config.backend
        on_main = threading.current_thread() is threading.main_thread()
        self._owns_loop = True
        try:
            anyio.run(partial(self.run_async, handle_signals=on_main, duration=duration), backend=backend)
        finally:
            self._loop_finished = True
        if self.signal_received is not None and self.state is NodeState.STOPPED:
            self.dispose()

    async def run_async(self, *, handle_signals: bool = False, duration: float | None = None) -> None:
        """Run inside the caller's anyio loop (asyncio or trio) until the node has stopped.

        ``handle_signals``: SIGINT/SIGTERM stop the node (main thread only). ``duration``: stop
        after that many seconds.
        """
        if duration is not None and not duration > 0:
            raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
        if not handle_signals:
            await self._run(None, duration)
            return
        # Caught from before the node says STARTING: a supervisor that signals as soon as it reads
        # that line stops the node cleanly, instead of meeting the default action (SIGTERM killed
        # the process, SIGINT raised KeyboardInterrupt through the start-up).
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await self._run(signals, duration)

    async def _run(self, signals, duration: float | None) -> None:
        self.backend = current_backend()
        self._loop_thread = threading.get_ident()
        self._stop_requested = anyio.Event()
        self._stopped_async = anyio.Event()
        # Open before STARTING: a stop() from another thread from then on is queued, not lost
        # (the inbox task picks it up as soon as it runs).
        self.inbox.open(self._loop_thread)
        if self.stream.enabled:  # before the first transition, so the stream sees STARTING
            self.stream.attach(self.kernel.msgbus)
            self.bridge.wait_room = self.stream.wait_room
        if self.recorder is not None:
            self.stream.hold_commits()  # one commit after the start, not one per step (see there)
        self._move(NodeTrigger.START, f"event loop: {self.backend}")
        if self._stop_pending:  # a fatal error was reported before the loop ran
            self._stop_requested.set()
        try:
            self.inbox.wake_from_thread = thread_waker()
            async with open_task_group() as tg:
                self._start_workers(tg)
                if signals is not None:
                    tg.start_soon(self._watch_signals, signals, name=f"{self.node_id}:signals")
                if duration is not None:
                    tg.start_soon(self._stop_after, duration, name=f"{self.node_id}:duration")
                try:
                    await self._start_and_serve(tg)
                except anyio.get_cancelled_exc_class():
                    self.sequences.workers_gone = True  # the host cancelled us (or a worker crashed)
                    raise
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._shutdown()
                    tg.cancel_scope.cancel()
        finally:
            self.inbox.close()
            self.inbox.wake_from_thread = None
            self.kernel.msgbus.set_tap(None)
            self._stopped_async.set()
            self._stopped_thread.set()
        if self.failure is not None:
            raise self.failure

    def _start_workers(self, tg) -> None:
        for queue in self.queues:
            tg.start_soon(self.bridge.drain, queue, name=f"{self.node_id}:{queue.name}")
        tg.start_soon(self.timers.run, name=f"{self.node_id}:timers")
        tg.start_soon(self.liveness.run, name=f"{self.node_id}:liveness")
        tg.start_soon(self.inbox.run, self._commands.execute, name=f"{self.node_id}:commands")
        if self.stream.enabled:
            tg.start_soon(self._run_stream, name=f"{self.node_id}:stream")

    async def _run_stream(self) -> None:
        with anyio.CancelScope() as scope:
            self._stream_scope = scope
            try:
                await self.stream.run()
            finally:
                self._stream_scope = None

    async def _stop_after(self, duration: float) -> None:
        await anyio.sleep(duration)
        self._request_stop(f"duration of {duration:g} s reached")

    async def _watch_signals(self, signals) -> None:
        async for signum in signals:
            if self.signal_received is None:
                self.signal_received = signum
            self._request_stop(f"signal {signal.Signals(signum).name}")

    async def _start_and_serve(self, tg) -> None:
        with anyio.CancelScope() as scope:
            self._startup_scope = scope
            if self._stop_requested.is_set():
                scope.cancel()
            try:
                await self.sequences.startup()
            except StartupError as exc:
                self.failure = exc
                self._log.error(f"start-up failed at step '{exc.step}': {exc}")
                self._request_stop(f"start-up failed at step '{exc.step}'")
                return
        self._startup_scope = None
        if scope.cancelled_caught or self._stop_requested.is_set():
            return
        self._move(NodeTrigger.START_COMPLETED)
        self.stream.release_commits()  # after RUNNING is announced
        tg.start_soon(self._run_client_streams, name=f"{self.node_id}:client-streams")
        await self._stop_requested.wait()

    async def _run_client_streams(self) -> None:
        with anyio.CancelScope() as scope:
            self._streams_scope = scope
            async with open_task_group() as group:
                for client in [*self.data_clients, *self.exec_clients]:
                    group.start_soon(self._guard_stream, client, name=f"{self.node_id}:{client.id}")

    async def _guard_stream(self, client) -> None:
        try:
            await client.stream_async()
        except Exception as exc:
            self._log.exception(f"client {client.id} stream failed", exc)
            self._fatal(
                NodeFatalError(f"client {client.id} stopped streaming with {type(exc).__name__}: {exc}")
            )

    async def wait_idle(self) -> None:
        """Return once every engine queue is empty (used by the lock-step replay)."""
        await self.queues.wait_idle()
