"""TradingNode: one live (or sandbox) trader, its event loop tasks and its lifecycle.

What the node adds to a kernel (the same Kernel a backtest uses):

* **Lifecycle** (``node.live.states``): CREATED -build-> BUILT -run-> STARTING -> RUNNING -stop->
  STOPPING -> STOPPED -dispose-> DISPOSED. ``state`` is readable from any thread at any time.
* **Clients**: ``build()`` calls the data/execution client factories registered *on this node*
  (the sandbox ones are registered for a sandbox node) for each spec in the config.
* **Tasks** (``run_async``): one drain task per engine queue (``node.live.bridge``), the timer
  driver and the liveness tick (``node.live.loop_tasks``), the host-command inbox
  (``node.live.commands``), the external stream when a sink is set (``node.live.streaming``), the
  signal watcher when asked, and, once RUNNING, each client's streaming task. All in one task
  group: the node lives while they do, and cancellation ends them all.
* **Start-up** (steps in ``node.live.sequences``): connect every client -> start the engines ->
  reconcile -> wait for each venue's account -> start strategies and apply their subscriptions.
  Each step has its own timeout; a step that fails or overruns stops the node (STARTING ->
  STOPPING -> STOPPED) and ``run_async`` raises :class:`StartupTimeout`/:class:`StartupFailed`
  naming the step. The node is RUNNING only once every step has succeeded.
* **Stop**: client streaming stops -> the stop steps (strategies, their last commands, clients
  disconnect, engines, residual events; each bounded, see ``node.live.sequences``) -> queues
  closed (the sentinel ends the drain tasks) -> STOPPED -> what is left of the stream is flushed
  (``post_stop``). A step that overruns is recorded in ``shutdown_problems`` and the stop goes on.
  If the host cancels ``run_async``, the stop still runs (shielded), applying queued work inline.
* **Dispose**: waits for the stop (``shutdown``), disposes the kernel and clients, and logs the
  loop's final state.

Threads: everything here runs on the loop's thread except ``state``, ``stats()``, ``inject()``,
``stop()`` and the synchronous ``dispose()``, which are safe to call from any thread.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

import anyio

from node.common.clock import LiveClock
from node.live.bridge import KernelBridge
from node.live.clients import ClientContext, LiveDataClient, LiveExecutionClient
from node.live.commands import CommandExecutor, CommandInbox, StopNode
from node.live.config import TradingNodeConfig
from node.live.errors import (
    ClientFactoryError,
    DisposeTimeout,
    NodeFatalError,
    NodeStateError,
    StartupError,
    UnknownClientFactory,
)
from node.live.loop_backend import current_backend, open_task_group, thread_waker
from node.live.loop_tasks import Liveness, TimerDriver
from node.live.queues import KernelQueues
from node.live.recorder import StateRecorder
from node.live.recovery import RestoreReport, restore_node_state
from node.live.sequences import NodeSequences
from node.live.states import NodeFSM, NodeState, NodeTrigger
from node.live.streaming import StreamingBus, StreamingPort
from node.system.kernel import Environment, Kernel, KernelConfig

NODE_COMPONENT_ID = "TradingNode"
NODE_TOPIC = f"events.system.{NODE_COMPONENT_ID}"

_ACTIVE = (NodeState.STARTING, NodeState.RUNNING)
_LIVE = (NodeState.STARTING, NodeState.RUNNING, NodeState.STOPPING)


def _discard(record) -> None:
    """The stream sink of a node with a state store but no host listening."""


@dataclass(frozen=True, slots=True)
class NodeStateChanged:
    """Published on ``events.system.TradingNode`` at every node transition (and streamed)."""

    node_id: str
    state: NodeState
    ts_event: int
    reason: str = ""


class TradingNode:
    """One trader on a live event loop; see the module docstring for its life and its tasks."""

    def __init__(self, config: TradingNodeConfig | None = None, *, stream_sink=None, log_sink=None) -> None:
        self.config = config = config or TradingNodeConfig()
        self.clock = LiveClock()
        self.kernel = Kernel(
            config.environment,
            self.clock,
            KernelConfig(trader_id=config.trader_id, log_level=config.log_level, risk=config.risk),
            log_sink=log_sink,
            msgbus_factory=StreamingBus,
        )
        self.node_id = f"{NODE_COMPONENT_ID}-{config.trader_id}"
        self._fsm = NodeFSM(self.node_id)
        self._log = self.kernel.logger.child(NODE_COMPONENT_ID)
        q = config.queues
        self.queues = KernelQueues(q.capacity, q.data_capacity, q.data_overflow)
        self.data_clients: list = []
        self.exec_clients: list = []
        self.bridge = KernelBridge(self.kernel, self.queues, self._fatal, self.data_clients)
        self.stream = StreamingPort(config.stream_patterns, q.stream_capacity, self._log)
        self.stream.sink = stream_sink
        self.liveness = Liveness(config.liveness_interval_s, self._listener_failed)
        self.timers = TimerDriver(self.clock, self._timer_failed)
        self.inbox = CommandInbox()
        self.inbox.on_fatal = self._fatal
        self._commands = CommandExecutor(
            self.kernel, self.queues, self._request_stop, lambda: self.state.value
        )
        self.sequences = NodeSequences(
            self.kernel,
            self.queues,
            self.bridge,
            self.data_clients,
            self.exec_clients,
            config.timeouts,
            self._log,
        )
        self._data_factories: dict = {}
        self._exec_factories: dict = {}
        if config.environment is Environment.SANDBOX:
            from node.live.sandbox import register_sandbox_factories

            register_sandbox_factories(self)
        self.failure: BaseException | None = None
        self.stop_reason = ""
        self.signal_received: int | None = None
        self.backend: str | None = None
        self._owns_loop = False
        self._loop_finished = False
        self._loop_thread: int | None = None
        self._stop_requested: anyio.Event | None = None
        self._stop_pending = False
        self._stopped_async: anyio.Event | None = None
        self._stopped_thread = threading.Event()
        self._components_built = False  # build_components() ran
        self._startup_scope: anyio.CancelScope | None = None
        self._streams_scope: anyio.CancelScope | None = None
        self._stream_scope: anyio.CancelScope | None = None
        self._state_event: anyio.Event | None = None
        # Durable state (config.state): opened and restored by build(); see node.live.recovery.
        self.state_store = None
        self.recorder: StateRecorder | None = None
        self.restore_report: RestoreReport | None = None

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> NodeState:
        return self._fsm.state

    @property
    def is_running(self) -> bool:
        return self._fsm.state is NodeState.RUNNING

    def _move(self, trigger: NodeTrigger, reason: str = "") -> NodeState:
        state = self._fsm.trigger(trigger)
        self._log.info(f"{state.value}{f' ({reason})' if reason else ''}")
        self.kernel.msgbus.publish(
            NODE_TOPIC, NodeStateChanged(self.node_id, state, self.clock.timestamp_ns(), reason)
        )
        event = self._state_event
        if event is not None and threading.get_ident() == self._loop_thread:
            self._state_event = None
            event.set()
        return state

    async def wait_for_state(self, *states: NodeState) -> NodeState:
        """Return (the state) once the node is in one of ``states``; call on the node's loop."""
        while self.state not in states:
            if self.state is NodeState.DISPOSED:
                raise NodeStateError(f"node '{self.node_id}' was disposed while waiting for {states}")
            if self._state_event is None:
                self._state_event = anyio.Event()
            await self._state_event.wait()
        return self.state

    def stats(self) -> dict:
        """Counters for health checks and heartbeats (safe to read from any thread)."""
        return {
            "node_id": self.node_id,
            "state": self.state.value,
            "queues": self.queues.stats(),
            "stream": self.stream.stats(),
            "liveness": self.liveness.stats(),
            "timers_fired": self.timers.fired,
            "commands": {"executed": self.inbox.executed, "failed": self.inbox.failed},
            "durable_state": self._durable_state_stats(),
        }

    def _durable_state_stats(self) -> dict | None:
        if self.recorder is None:
            return None
        report = self.restore_report
        return {
            **self.recorder.stats(),
            "path": str(self.config.state.path),
            "restored": None if report is None else dataclasses.asdict(report),
        }

    # -- registration (before build/run) --------------------------------------------------------

    def register_data_client_factory(self, name: str, factory) -> None:
        self._register_factory(self._data_factories, name, factory)

    def register_exec_client_factory(self, name: str, factory) -> None:
        self._register_factory(self._exec_factories, name, factory)

    def _register_factory(self, table: dict, name: str, factory) -> None:
        if self.state is not NodeState.CREATED:
            raise NodeStateError(f"register client factories before build(); the node is {self.state.value}")
        if not callable(factory):
            raise TypeError(f"client factory '{name}' must be callable, got {factory!r}")
        table[name] = factory

    def add_strategy(self, strategy) -> None:
        if self.state not in (NodeState.CREATED, NodeState.BUILT):
            raise NodeStateError(f"add strategies before run(); the node is {self.state.value}")
        self.kernel.add_strategy(strategy)

    def add_actor(self, actor) -> None:
        if self.state not in (NodeState.CREATED, NodeState.BUILT):
            raise NodeStateError(f"add actors before run(); the node is {self.state.value}")
        self.kernel.add_actor(actor)

    def set_stream_sink(self, sink) -> None:
        """The host's callable (or coroutine function) for streamed messages; set before run."""
        if self.state in _LIVE:
            raise NodeStateError("set the stream sink before run(); the node is already running")
        self.stream.sink = sink

    # -- build ----------------------------------------------------------------------------------

    def build_components(self) -> None:
        """Create the clients and the strategies now, ahead of :meth:`build`: no I/O, no state.

        For a host that knows the configs of the nodes it may be asked to run before it knows
        which one (a warm spare): ``build()`` then only opens the state store, if any, and
        finishes. Once, while CREATED; a failure disposes the node, as in ``build()``.
        """
        if not self._fsm.can(NodeTrigger.BUILD):
            self._fsm.trigger(NodeTrigger.BUILD)  # raises the specific refusal
        if self._components_built:
            raise NodeStateError(f"node '{self.node_id}': its components are built already; call build()")
        try:
            self._build()
        except BaseException:
            self._dispose_now("build failed")
            raise
        self._components_built = True

    def build(self) -> None:
        """Create the clients from the registered factories and the strategies from the config.

        (Unless :meth:`build_components` did already.) With a state store: open it and restore.
        """
        if not self._fsm.can(NodeTrigger.BUILD):
            self._fsm.trigger(NodeTrigger.BUILD)  # raises the specific refusal
        try:
            if not self._components_built:
                self._build()
            if self.config.state is not None:
                self._open_state(self.config.state)
        except BaseException:
            self._dispose_now("build failed")
            raise
        self._move(NodeTrigger.BUILD)

    def _open_state(self, state_config) -> None:
        """Start = recovery: open the store, put its state back, continue its event sequence."""
        from node.persistence.store import SqliteStateStore  # only nodes with a store pay for sqlite3

        store = SqliteStateStore(state_config.path, synchronous=state_config.synchronous.upper())
        self.state_store = store
        loaded = store.load()
        self.recorder = StateRecorder(store, self.kernel, self.queues.exec_events, self.exec_clients)
        self.restore_report = restore_node_state(self, loaded)
        self._log.info(f"{self.restore_report.summary()} ({state_config.path})")
        stream = self.stream
        stream.resume_from(loaded.last_seq)
        stream.recorder = self.recorder
        stream.make_durable = self.recorder.commit_async
        if stream.sink is None:  # commits ride on the stream task: run it even with nobody listening
            stream.sink = _discard

    def _build(self) -> None:
        cache = self.kernel.cache
        for instrument in self.config.instruments:
            cache.add_instrument(instrument)
        context = ClientContext(
            trader_id=self.config.trader_id,
            environment=self.config.environment,
            clock=self.clock,
            cache=cache,
            logger=self.kernel.logger,
            instruments={i.id: i for i in cache.instruments()},
            request_stop=self.stop,
            wait_idle=self.wait_idle,
        )
        for spec in self.config.data_clients:
            self._add_data_client(self._make(self._data_factories, "data", spec, context))
        for spec in self.config.exec_clients:
            self._add_exec_client(self._make(self._exec_factories, "execution", spec, context))
        for i, spec in enumerate(self.config.strategies):
            self.kernel.add_strategy(spec.build(f"strategies[{i}]"))

    def _make(self, factories: dict, what: str, spec, context):
        factory = factories.get(spec.factory)
        if factory is None:
            known = ", ".join(sorted(factories)) or "none"
            raise UnknownClientFactory(
                f"no {what} client factory named '{spec.factory}' is registered on this node (registered: "
                f"{known}); call register_{'exec' if what == 'execution' else 'data'}_client_factory() before build()"
            )
        try:
            return factory(spec.name, spec.config, context)
        except Exception as exc:
            raise ClientFactoryError(
                f"{what} client factory '{spec.factory}' failed for '{spec.name}': {exc}"
            ) from exc

    def _add_data_client(self, client) -> None:
        if not isinstance(client, LiveDataClient):
            raise ClientFactoryError(f"a data client factory returned {client!r}, not a LiveDataClient")
        self.kernel.data_engine.register_client(client)
        client.bind(self.queues.data.put_nowait, self.queues.data_responses.put_nowait)
        client.bind_async(self.queues.data.put)
        self.data_clients.append(client)

    def _add_exec_client(self, client) -> None:
        if not isinstance(client, LiveExecutionClient):
            raise ClientFactoryError(
                f"an execution client factory returned {client!r}, not a LiveExecutionClient"
            )
        self.kernel.exec_engine.register_client(client, oms_type=getattr(client, "oms_type", None))
        # The engine bound the client to its own process(); events go through the queue instead.
        client.bind(self.queues.exec_events.put_nowait)
        client.bind_async(self.queues.exec_events.put)
        hook = client.market_data_hook()
        if hook is not None:
            self.bridge.market_data_hooks.append(hook)
        self.exec_clients.append(client)

    # -- run ------------------------------------------------------------------------------------

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
                if handle_signals:  # installed before start-up goes on: a signal from now on stops us
                    await tg.start(self._watch_signals, name=f"{self.node_id}:signals")
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

    async def _watch_signals(self, *, task_status=anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
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

    # -- stop -----------------------------------------------------------------------------------

    @property
    def shutdown_problems(self) -> list[str]:
        """What overran or failed during the stop (empty after a clean stop)."""
        return self.sequences.problems

    def stop(self, reason: str = "stop()") -> None:
        """Ask the node to stop (from any thread or task). Idempotent once stopping has begun."""
        state = self.state
        if state in (NodeState.STOPPING, NodeState.STOPPED, NodeState.DISPOSED):
            return
        if state not in _ACTIVE:
            raise NodeStateError(
                f"node '{self.node_id}' is {state.value}: there is nothing to stop; call dispose() to release it"
            )
        if threading.get_ident() == self._loop_thread:
            self._request_stop(reason)
        else:
            self.inject(StopNode(f"{reason} from another thread"))

    async def stop_async(self) -> None:
        """Stop and wait until the node is STOPPED (call from a task on the node's loop)."""
        self.stop()
        if self._stopped_async is not None:
            await self._stopped_async.wait()

    async def wait_until_running(self) -> None:
        """Return once the node is RUNNING; raise the start-up failure if it never gets there."""
        state = await self.wait_for_state(NodeState.RUNNING, NodeState.STOPPING, NodeState.STOPPED)
        if state is not NodeState.RUNNING:
            if self.failure is not None:
                raise self.failure
            raise NodeStateError(f"node '{self.node_id}' stopped before it was RUNNING ({self.stop_reason})")

    async def wait_idle(self) -> None:
        """Return once every engine queue is empty (used by the lock-step replay)."""
        await self.queues.wait_idle()

    def _request_stop(self, reason: str) -> None:
        if self._stop_requested is None:
            self._stop_pending = True
            self.stop_reason = reason
            return
        if self._stop_requested.is_set():
            return
        self.stop_reason = reason
        self._log.info(f"stop requested: {reason}")
        self._stop_requested.set()
        if self._startup_scope is not None:
            self._startup_scope.cancel()

    def _fatal(self, exc: BaseException) -> None:
        self._log.error(f"fatal: {exc}")
        if self.failure is None:
            self.failure = exc
        self._request_stop(f"fatal error: {type(exc).__name__}")

    def _timer_failed(self, exc: BaseException) -> None:
        self._log.exception("a timer callback failed", exc)
        if isinstance(exc, NodeFatalError):
            self._fatal(exc)

    def _listener_failed(self, exc: BaseException) -> None:
        self._log.exception("a liveness listener failed", exc)

    async def _shutdown(self) -> None:
        self.stream.release_commits()  # a start that failed or was cancelled: flush what it published
        if self.state in _ACTIVE:
            self._move(NodeTrigger.STOP, self.stop_reason or "event loop ended")
        for scope in (self._startup_scope, self._streams_scope):
            if scope is not None:
                scope.cancel()
        await self.sequences.stop()
        self.queues.close()  # the sentinel: each drain task ends after its queue's last item
        self._move(NodeTrigger.STOP_COMPLETED, self.stop_reason)
        if self.stream.enabled:
            if not self.sequences.workers_gone:
                await self.sequences.bounded(
                    "stream residual messages", self.config.timeouts.post_stop, self.stream.flush
                )
            self.stream.close()
            self.stream.detach(self.kernel.msgbus)

    # -- dispose --------------------------------------------------------------------------------

    def dispose(self) -> None:
        """Release everything for good. A running node is stopped first (waiting ``shutdown``)."""
        state = self.state
        if state is NodeState.DISPOSED:
            return
        if state in _LIVE:
            if threading.get_ident() == self._loop_thread:
                raise NodeStateError(
                    "dispose() would block the node's own event loop; use 'await node.dispose_async()' there"
                )
            self.stop()
            timeout = self.config.timeouts.shutdown
            if not self._stopped_thread.wait(timeout):
                raise DisposeTimeout(
                    f"node '{self.node_id}' did not stop within {timeout:g} s; it was not disposed"
                )
        self._dispose_now()

    async def dispose_async(self) -> None:
        """``dispose()`` for a caller on the node's loop: stops, waits, then releases."""
        if self.state in _LIVE:
            self.stop()
            timeout = self.config.timeouts.shutdown
            with anyio.move_on_after(timeout):
                await self._stopped_async.wait()
            if self.state is not NodeState.STOPPED:
                raise DisposeTimeout(
                    f"node '{self.node_id}' did not stop within {timeout:g} s; it was not disposed"
                )
        self._dispose_now()

    def _dispose_now(self, reason: str = "") -> None:
        if self.state is NodeState.DISPOSED:
            return
        if self._stream_scope is not None:
            self._stream_scope.cancel()
        self.inbox.close()
        for client in [*self.data_clients, *self.exec_clients]:
            try:
                client.dispose()
            except Exception as exc:
                self._log.exception(f"disposing client {client.id} failed", exc)
        self.kernel.dispose()
        if self.recorder is not None:
            self.recorder.close()
        elif self.state_store is not None:  # opened, but the restore failed
            self.state_store.close()
        self._move(NodeTrigger.DISPOSE, reason)
        self._log.info(self.loop_report())

    def loop_report(self) -> str:
        """Where the event loop stands, for the last log line of a node."""
        if self.backend is None:
            return "event loop: never started"
        if self._owns_loop:
            closed = "finished and closed" if self._loop_finished else "still running"
            return (
                f"event loop ({self.backend}, owned by the node): {closed}; its worker threads went with it"
            )
        return f"event loop ({self.backend}, owned by the host): left running for the host"

    # -- host commands --------------------------------------------------------------------------

    def inject(self, command) -> Future:
        """Queue a host command (from any thread or task); it runs on the kernel loop in arrival order."""
        return self.inbox.put(command)

    def __repr__(self) -> str:
        return f"TradingNode(id={self.node_id!r}, state={self.state.value})"


__all__ = ["NODE_TOPIC", "NodeStateChanged", "TradingNode"]
