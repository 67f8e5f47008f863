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

Where the parts live: this module holds the node's construction, its state and its counters; the
rest of the class is in mixins, one phase of its life each: ``node.live.node_build``
(registration, ``build()``, opening the state store), ``node.live.node_run`` (the loop, the tasks,
start-up), ``node.live.node_stop`` (stop requests and the stop sequence) and
``node.live.node_dispose`` (``dispose()``).
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import anyio

from node.common.clock import LiveClock
from node.live.bridge import KernelBridge
from node.live.commands import CommandExecutor, CommandInbox
from node.live.config import TradingNodeConfig
from node.live.errors import NodeStateError
from node.live.loop_tasks import Liveness, TimerDriver
from node.live.node_build import NodeBuilding
from node.live.node_dispose import NodeDisposal
from node.live.node_run import NodeRunning
from node.live.node_stop import NodeStopping
from node.live.queues import KernelQueues
from node.live.recorder import StateRecorder
from node.live.recovery import RestoreReport
from node.live.sequences import NodeSequences
from node.live.states import NodeFSM, NodeState, NodeTrigger
from node.live.streaming import StreamingBus, StreamingPort
from node.system.kernel import Environment, Kernel, KernelConfig

NODE_COMPONENT_ID = "TradingNode"
NODE_TOPIC = f"events.system.{NODE_COMPONENT_ID}"


@dataclass(frozen=True, slots=True)
class NodeStateChanged:
    """Published on ``events.system.TradingNode`` at every node transition (and streamed)."""

    node_id: str
    state: NodeState
    ts_event: int
    reason: str = ""


class TradingNode(NodeBuilding, NodeRunning, NodeStopping, NodeDisposal):
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
        try:
            self.kernel.msgbus.publish(
                NODE_TOPIC, NodeStateChanged(self.node_id, state, self.clock.timestamp_ns(), reason)
            )
        finally:  # the state has changed even if a subscriber raised: whoever waits must see it
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

    async def wait_until_running(self) -> None:
        """Return once the node is RUNNING; raise the start-up failure if it never gets there."""
        state = await self.wait_for_state(NodeState.RUNNING, NodeState.STOPPING, NodeState.STOPPED)
        if state is not NodeState.RUNNING:
            if self.failure is not None:
                raise self.failure
            raise NodeStateError(f"node '{self.node_id}' stopped before it was RUNNING ({self.stop_reason})")

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

    # -- host commands --------------------------------------------------------------------------

    def inject(self, command) -> Future:
        """Queue a host command (from any thread or task); it runs on the kernel loop in arrival order."""
        return self.inbox.put(command)

    def __repr__(self) -> str:
        return f"TradingNode(id={self.node_id!r}, state={self.state.value})"


__all__ = ["NODE_TOPIC", "NodeStateChanged", "TradingNode"]
