"""The Orchestrator: one node per child process, relayed over ZeroMQ, supervised.

This module holds its life (``run``: sockets, journals, the child pool, the tasks) and its
Python API (start, stop, restart, status, commands, waiting for states). Three parts live beside
it, as mixins of the same class: how a node gets a child (``orchestrator.fleet.assigning``), what
it does when a child ends (``orchestrator.fleet.deaths``: crash, hang, restart policy) and its
messaging with the children (``orchestrator.fleet.wire``). Child event frames go to the ``EventRelay``
(``orchestrator.fleet.relay``): journaled, fanned out on the PUB socket *as received*, and acked
once per received batch. Each PUB stream is numbered so subscribers can see gaps; a slow
subscriber never stalls a node (PUB drops at its high-water mark). Every state change of a node
is also published as an event of the orchestrator itself (topic ``orchestrator``).

Exactly-once relay (issue #5): each node has a ``Journal`` (``<state_dir>/journal/<node>.journal``)
opened in ``run()`` (``FleetJournals``); its ``last_seq`` is the node's ``last_seq``, what a new
child resumes after. The relay's rules are in ``orchestrator.fleet.relay``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from functools import partial
from pathlib import Path

import msgpack
import trio
import zmq

from orchestrator.fleet.assigning import NodeAssignment
from orchestrator.fleet.children import ChildPool
from orchestrator.fleet.config import OrchestratorConfig
from orchestrator.fleet.deaths import NodeDeaths
from orchestrator.fleet.errors import CommandFailed, CommandTimeout, OrchestratorError
from orchestrator.fleet.journals import FleetJournals
from orchestrator.fleet.prepare_file import remove_prepare_file, write_prepare_file
from orchestrator.fleet.relay import EventRelay, event_topic
from orchestrator.fleet.runtime_watch import RuntimeDirWatch
from orchestrator.fleet.slots import Slot
from orchestrator.fleet.state import NodeState, NodeStatus, Transition
from orchestrator.fleet.state_dir import StateDirLock, check_state_dir, link_logs
from orchestrator.fleet.subscriber import ORCHESTRATOR_TOPIC
from orchestrator.fleet.wire import NodeWire
from orchestrator.journal import FsyncPolicy
from orchestrator.process.lifeline import lifelines_supported
from orchestrator.process.spawn import ChildProcess
from orchestrator.protocol import messages
from orchestrator.supervision.exit_reason import ExitReason, Intent
from orchestrator.supervision.heartbeat import HeartbeatMonitor
from orchestrator.supervision.policy import RestartTracker
from orchestrator.transport.endpoints import bind, ipc_path
from orchestrator.transport.errors import PeerUnreachableError
from orchestrator.transport.options import new_context
from orchestrator.transport.runtime_dir import ensure_runtime_dir, ipc_endpoint, remove_ipc_file
from orchestrator.transport.sequencing import SequencedPublisher
from orchestrator.transport.sockets import event_pub, node_router
from orchestrator.transport.trio_socket import TrioSocket

log = logging.getLogger("orchestrator")

LEFTOVER_REAP_S = 2.0
"""How long a cancelled run waits for the children it killed to be reaped."""


class Orchestrator(NodeAssignment, NodeDeaths, NodeWire):
    """The fleet's parent process: see the module docstring."""

    def __init__(self, config: OrchestratorConfig) -> None:
        self.config = config
        self.runtime_dir = ensure_runtime_dir(config.runtime_dir)
        self.state_dir = config.state_dir  # journals and state stores (fleet.state_dir)
        check_state_dir(self.runtime_dir, self.state_dir, [spec.node_id for spec in config.nodes])
        self.log_dir = link_logs(self.runtime_dir, self.state_dir)  # -> <state_dir>/logs
        self.node_endpoint = ipc_endpoint(self.runtime_dir, "nodes")
        self.event_endpoint = ipc_endpoint(self.runtime_dir, "events")
        self.nodes: dict[str, NodeStatus] = {spec.node_id: NodeStatus(spec.node_id) for spec in config.nodes}
        self._trackers = {spec.node_id: RestartTracker(spec.policy) for spec in config.nodes}
        # One start/stop/restart of a node at a time: two operators restarting one node at once
        # take turns instead of meeting each other half-way (see ``_node_operation``).
        self._node_ops = {spec.node_id: trio.Lock() for spec in config.nodes}
        self._slots: dict[bytes, Slot] = {}
        self._node_slot: dict[str, Slot] = {}
        self._children = ChildPool(
            config,
            self.node_endpoint,
            self.log_dir,
            on_new_child=self._on_new_child,
            on_change=self._notify,
            closing=lambda: self._closing,
            lifeline_dir=self._lifeline_dir(),
        )
        self._lifeline_threads = trio.CapacityLimiter(math.inf)  # one waiting thread per child
        self._command_ids = itertools.count(1)
        self._replies: dict[str, tuple[trio.Event, list]] = {}
        self.journals: FleetJournals | None = None  # open while run() runs
        self.journal_policy = FsyncPolicy.parse(config.journal_fsync)
        self._state_changed = trio.Event()
        # Held up (stopped, starved of CPU), we look again two beats later before judging a node.
        self._heartbeats = HeartbeatMonitor(
            config.heartbeat_timeout_s,
            settle_s=min(2 * config.heartbeat_interval_s, config.heartbeat_timeout_s / 2),
        )
        self._handling = False  # the receive loop holds messages it has not handled yet
        self._held_up_logged_at = -math.inf  # hold-ups of the hang watcher: last warned, and since
        self._held_up_unlogged = 0
        self._shutdown = trio.Event()
        self._closing = False
        self._invalid_messages = 0  # refused here; the relay counts the frames it refuses
        self.clean_shutdown: bool | None = None
        self._router: TrioSocket | None = None
        self._publisher: SequencedPublisher | None = None
        self._nursery: trio.Nursery | None = None
        self.relay = EventRelay(self.nodes, self._send, self._reply_error, self._node_slot.get)
        self.runtime_watch = RuntimeDirWatch(self.runtime_dir)  # made again if removed under us
        self.runtime_watch.on_restored = self._notify
        # First: files go in them.
        self.runtime_watch.keep(self.log_dir, "logs/", partial(link_logs, self.runtime_dir, self.state_dir))
        lifelines = self._children.lifeline_dir
        if lifelines is not None:
            self.runtime_watch.keep(lifelines, "lifelines/", partial(lifelines.mkdir, 0o700, exist_ok=True))

    # -- running ---------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> bool:
        """Serve until ``shutdown()``; returns True if every node stopped cleanly."""
        state_lock = StateDirLock.acquire(self.state_dir, self.runtime_dir)  # one fleet per state dir
        try:
            self._open_journals()
            try:
                return await self._run(task_status)
            finally:
                self._close_journals()
        finally:
            state_lock.release()

    async def _run(self, task_status) -> bool:
        ctx = new_context()
        try:
            router_sock = node_router(ctx, self.node_endpoint)
            pub_sock = event_pub(ctx, self.event_endpoint)
        except BaseException:  # e.g. the runtime dir is in use: nothing of ours stays open
            ctx.destroy(linger=0)
            raise
        self._router = TrioSocket(router_sock)
        self._publisher = self.relay.publisher = SequencedPublisher(pub_sock)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                prepare_path = write_prepare_file(self.config, self.runtime_dir)
                self._children.start(nursery, prepare_path)
                self._keep_runtime_dir(router_sock, pub_sock, prepare_path)
                nursery.start_soon(self.runtime_watch.run)
                nursery.start_soon(self._recv_loop)
                nursery.start_soon(self.journals.sync_forever, self.relay.made_durable)
                nursery.start_soon(self._parent_heartbeats)
                nursery.start_soon(
                    partial(
                        self._heartbeats.watch,
                        self._on_hang,
                        settle=self._read_what_arrived,
                        on_held_up=self._held_up,
                    )
                )
                for spec in self.config.nodes:
                    if spec.autostart:
                        nursery.start_soon(self._start_quietly, spec.node_id)
                task_status.started(self)
                await self._shutdown.wait()
                self.clean_shutdown = await self._stop_everything()
                nursery.cancel_scope.cancel()
        finally:
            # Shielded: a cancelled run (its host's nursery ended) still closes its sockets and
            # removes its ipc files, or the next orchestrator on this runtime dir finds them live.
            with trio.CancelScope(shield=True):
                await self._kill_leftover_children()
                await self._children.aclose()
                await self._router.aclose()
            pub_sock.close(linger=0)
            ctx.term()
            remove_ipc_file(self.node_endpoint)
            remove_ipc_file(self.event_endpoint)
            remove_prepare_file(self.runtime_dir)
            lifelines = self._children.lifeline_dir
            if lifelines is not None:
                with contextlib.suppress(OSError):  # not empty: a child we could not reap
                    lifelines.rmdir()
        return bool(self.clean_shutdown)

    def _keep_runtime_dir(self, router_sock, pub_sock, prepare_path: Path | None) -> None:
        """What ``runtime_watch`` makes again if the runtime dir loses it (``fleet.runtime_watch``)."""
        keep = self.runtime_watch.keep
        nodes, events = self.node_endpoint, self.event_endpoint
        keep(Path(ipc_path(nodes)), "the nodes' socket", lambda: bind(router_sock, nodes))
        keep(Path(ipc_path(events)), "the events socket", lambda: bind(pub_sock, events))
        if prepare_path is not None:
            keep(prepare_path, "the prepare file", lambda: write_prepare_file(self.config, self.runtime_dir))

    async def _kill_leftover_children(self) -> None:
        """SIGKILL and reap the children a run leaves alive: only a run cancelled by its host does.

        A graceful shutdown stops every child first. A cancelled run does not; its nodes would run
        on until their parent-heartbeat timeout, holding their state stores against the next
        orchestrator on this runtime dir. Killing them is safe: a node recovers from a kill.
        """
        left = [slot for slot in self._slots.values() if not slot.exited.is_set()]
        if not left:
            return
        log.warning("the orchestrator's run ended with %d children alive: killing them", len(left))
        for slot in left:
            slot.process.kill()
        with trio.move_on_after(LEFTOVER_REAP_S):
            for slot in left:
                await slot.process.wait()

    def _open_journals(self) -> None:
        """Open (= recover) every node's journal; each node continues after its ``last_seq``."""
        self.journals = self.relay.journals = FleetJournals(self.state_dir, self.nodes, self.journal_policy)
        for node_id, status in self.nodes.items():
            status.last_seq = self.journals[node_id].last_seq

    def _close_journals(self) -> None:
        if self.journals is not None:
            self.journals.close()

    @property
    def invalid_messages(self) -> int:
        """Messages refused: malformed, from an unknown peer, of a kind a child may not send, or
        events the relay refused."""
        return self._invalid_messages + self.relay.refused_frames

    @property
    def relayed_events(self) -> int:
        return self.relay.relayed_events

    @property
    def duplicate_events(self) -> int:
        """Events of resent frames, dropped."""
        return self.relay.duplicate_events

    @property
    def relay_listeners(self) -> list:
        """Called as listener(node_id, events) for every relayed batch (e.g. the control socket's
        event history); must be quick and must not raise."""
        return self.relay.listeners

    def shutdown(self) -> None:
        """Ask for a graceful shutdown: stop every node, spares included, then return from run()."""
        self._shutdown.set()

    def kill_everything(self) -> None:
        """The impatient shutdown (a second Ctrl-C): SIGKILL every child now, then return from run().

        A graceful stop already under way ends at once instead of waiting out its deadlines; the
        nodes end as killed, so run() reports an unclean shutdown. Durable state makes this safe:
        a killed node is recovered on its next start like any crashed one.
        """
        self._closing = True
        self._shutdown.set()
        for slot in list(self._slots.values()):
            if not slot.exited.is_set():
                slot.intent = Intent.STOP
                slot.process.kill()
        self._children.kill_zygote()

    # -- public API ------------------------------------------------------------------------------
    def status(self) -> list[dict]:
        now = trio.current_time()
        return [self.nodes[n].to_dict(now) for n in self.nodes]

    def node_status(self, node_id: str) -> NodeStatus:
        try:
            return self.nodes[node_id]
        except KeyError:
            known = ", ".join(self.nodes) or "none"
            raise OrchestratorError(f"unknown node {node_id!r} (known: {known})") from None

    async def wait_for(self, node_id: str, *states: NodeState, timeout: float | None = None) -> NodeStatus:
        """Wait until ``node_id`` is in one of ``states`` (event-driven, no polling)."""
        status = self.node_status(node_id)
        await self.wait_until(lambda: status.state in states, timeout)
        return status

    async def wait_until(self, predicate, timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds, re-checked at every node state or spare-pool change."""
        with trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
            while not predicate():
                await self._state_changed.wait()

    async def start_node(self, node_id: str) -> None:
        async with self._node_operation(node_id):
            await self._start_node(node_id)

    async def stop_node(self, node_id: str) -> NodeStatus:
        """Stop a node: protocol stop -> stop_timeout -> SIGTERM -> term_timeout -> SIGKILL."""
        async with self._node_operation(node_id):
            return await self._stop_node(node_id)

    async def restart_node(self, node_id: str) -> None:
        async with self._node_operation(node_id):
            await self._stop_node(node_id)
            await self._start_node(node_id)

    @contextlib.asynccontextmanager
    async def _node_operation(self, node_id: str):
        """Hold ``node_id``'s operation lock: a second start/stop/restart waits for the first."""
        self.node_status(node_id)  # an unknown node is refused before any wait
        async with self._node_ops[node_id]:
            yield

    async def _start_node(self, node_id: str) -> None:
        status = self.node_status(node_id)
        if self._closing:
            raise OrchestratorError(f"node {node_id} not started: the orchestrator is shutting down")
        if status.state in (NodeState.STARTING, NodeState.RUNNING, NodeState.STOPPING):
            raise OrchestratorError(f"node {node_id} is {status.state.value}; stop it first")
        self._move(status, Transition.START)
        await self._assign_or_fail(status)

    async def _stop_node(self, node_id: str) -> NodeStatus:
        status = self.node_status(node_id)
        if status.state in (NodeState.STOPPED, NodeState.PENDING):
            return status
        if status.state is NodeState.FAILED:  # given up on: stopped now, as `stop --help` says
            self._move(status, Transition.STOP)
            return status
        if status.state is NodeState.STOPPING:  # a stop already under way (the shutdown's): its end
            return await self.wait_for(node_id, NodeState.STOPPED, NodeState.FAILED)
        slot = self._node_slot.get(node_id)
        self._move(status, Transition.STOP)
        if slot is not None:
            await self._end_slot(slot)
            await self.wait_for(node_id, NodeState.STOPPED, NodeState.FAILED)
        return status

    async def command(self, node_id: str, name: str, args: dict | None = None, timeout: float | None = None):
        """Send a command to a running node and return its result (raises on error/timeout)."""
        slot = self._node_slot.get(node_id)
        if slot is None or self.node_status(node_id).state not in (NodeState.RUNNING, NodeState.STARTING):
            raise OrchestratorError(f"node {node_id} is not running")
        cid = f"c{next(self._command_ids)}"
        done = trio.Event()
        box: list = []
        self._replies[cid] = (done, box)
        try:
            await self._send(slot, messages.cmd(cid, node_id, name, args or {}))
            with trio.move_on_after(timeout or self.config.command_timeout_s):
                await done.wait()
        finally:
            self._replies.pop(cid, None)
        if not box:
            raise CommandTimeout(
                f"node {node_id} did not answer {name!r} within {timeout or self.config.command_timeout_s} s"
            )
        reply = box[0]
        if not reply["ok"]:
            raise CommandFailed(f"node {node_id} refused {name!r}: {reply['error']}")
        return reply.get("result")

    @property
    def spares_ready(self) -> int:
        return len(self._children.spares)

    @property
    def spare_pids(self) -> tuple[int, ...]:
        """The pids of the ready spares, the next one to be taken first."""
        return tuple(slot.pid for slot in self._children.spares)

    # -- slots and spares ------------------------------------------------------------------------
    def _lifeline_dir(self) -> Path | None:
        if not lifelines_supported():
            return None
        path = self.runtime_dir / "lifelines"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def _on_new_child(self, slot: Slot) -> None:
        """A child the pool has just started: route its messages, watch its death and its exit."""
        self._slots[slot.identity] = slot
        self._nursery.start_soon(self._watch_exit, slot)
        if slot.lifeline is not None:
            self._nursery.start_soon(self._watch_lifeline, slot)

    # -- node lifecycle --------------------------------------------------------------------------
    def _move(self, status: NodeStatus, transition: Transition, **extra) -> None:
        status.apply(transition, trio.current_time())
        self._announce(status, **extra)

    def _notify(self) -> None:
        """Wake every ``wait_until``: something observable (a node's state, the spare pool) changed."""
        self._state_changed.set()
        self._state_changed = trio.Event()

    def _announce(self, status: NodeStatus, **extra) -> None:
        self._notify()
        if self._publisher is None:
            return
        event = {
            "node": status.node,
            "state": status.state.value,
            "incarnation": status.incarnation,
            "pid": status.pid,
            "restarts": status.restarts,
            "ts": time.time_ns(),
            **extra,
        }
        self._publisher.publish(ORCHESTRATOR_TOPIC, msgpack.packb(event, use_bin_type=True))

    async def _end_slot(self, slot: Slot) -> None:
        """Stop the child in ``slot``: protocol stop, then signals (see stop_node)."""
        slot.intent = Intent.STOP
        if slot.node_id is not None:
            # From now on the stop's own deadlines govern (stop_timeout -> SIGTERM -> SIGKILL): a
            # node that is disposing and waiting for its last acks sends no heartbeat, and must
            # not be killed as hung in the middle of a clean stop.
            self._heartbeats.forget(slot.node_id)
        try:
            # A spare has no node; it takes a stop addressed to its slot id.
            target = slot.node_id or slot.slot_id
            await self._send(slot, messages.cmd(f"c{next(self._command_ids)}", target, "stop", {}))
        except (PeerUnreachableError, zmq.ZMQError):
            pass
        await slot.process.terminate_gracefully(self.config.stop_timeout_s, self.config.term_timeout_s)
        await slot.exited.wait()

    async def _stop_everything(self) -> bool:
        """Graceful shutdown: every node and spare stopped; True if every node stopped cleanly."""
        self._closing = True
        async with trio.open_nursery() as nursery:
            for node_id, status in self.nodes.items():
                # Not under the node's operation lock: a restart under way must not delay the
                # shutdown; its start is refused (closing). A stop under way (STOPPING) is
                # waited for, on its own deadlines, instead of being cut short by the end of run.
                if status.state in (NodeState.STARTING, NodeState.RUNNING, NodeState.STOPPING):
                    nursery.start_soon(self._stop_node, node_id)
                elif status.state in (NodeState.CRASHED, NodeState.RESTARTING):
                    self._move(status, Transition.STOP)
            for slot in list(self._slots.values()):
                if slot.node_id is None:
                    nursery.start_soon(self._end_slot, slot)
        return all(_ended_cleanly(s) for s in self.nodes.values())


def _ended_cleanly(status: NodeStatus) -> bool:
    """Never started, or stopped on request and exited 0 without needing a signal."""
    if status.state is NodeState.PENDING:
        return True
    return status.state is NodeState.STOPPED and status.last_reason in (
        ExitReason.STOPPED.value,
        ExitReason.CLEAN.value,
    )


__all__ = [
    "Orchestrator",
    "OrchestratorError",
    "CommandTimeout",
    "CommandFailed",
    "ChildProcess",
    "event_topic",
]
