"""One child's life on its socket: spare -> node -> ending, as one trio program.

**Shape.** A few tasks share the DEALER through ``TrioSocket`` (whose wake-up re-check makes
several senders and one reader safe on one socket):

- the *receiver* decodes every inbound frame and handles it at once (``hb`` feeds the parent
  watchdog, ``ack`` the outbox, ``cmd`` the command handling); whatever needs a decision about
  the child's life (an ``assign``, a spare's ``stop``) goes to the main task as a *control item*;
- the *parent watchdog* and the *signal watcher* post control items too (parent lost, SIGTERM or
  SIGINT);
- the *main task* is the state machine: it waits as a spare for a control item, builds and runs
  the node on an ``assign``, reacts to control items while the node runs, and ends the child;
- once a node runs: the node itself (``run_async`` on this trio loop, so its kernel loop is this
  loop), the *event pump* (``outbox``), the *heartbeat sender* fed by the node's liveness tick,
  and the *state announcer*, which makes a heartbeat due at each lifecycle transition so that
  RUNNING reaches the parent at once (``heartbeat``).

One control channel and one task deciding keeps every "what now?" in one place; the other tasks
only report. The receiver and its handlers are in ``orchestrator.child.inbound``, the control
items in ``orchestrator.child.control``, the status and heartbeat counters in
``orchestrator.child.reporting`` (mixins of :class:`ChildSession`); this module is the main task.

**Ending.** Whatever ends the child, :meth:`ChildSession._finish` runs the same steps: an
``error`` if the config was refused, every event handed over so far is sent, replies to pending
commands go out (the ``stop`` reply last, once the node has stopped), then ``bye(reason,
code)``, then up to ``ACK_WAIT_S`` for the parent's ``ack`` of the last event: ipc can lose the
tail of a sender that exits (DESIGN §5), and the ack proves the parent has it. Every send there
is bounded, so a parent that stopped reading cannot keep the child alive.

**Parent lost.** With a node running, the node is asked to stop and given ``PARENT_LOST_STOP_S``;
the ending steps then run with short bounds (nobody may be listening). If the node does not stop
in time (its own stop steps have their own, longer timeouts), the child exits at once with
``os._exit(PARENT_LOST)``: an orphan must not linger.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from functools import partial

import trio

from node.backtest.config import ConfigError
from node.live.errors import NodeStateError
from node.live.node import NODE_TOPIC, NodeStateChanged, TradingNode
from node.live.states import NodeState
from orchestrator.child.assignment import Assignment, node_config
from orchestrator.child.cli import ChildOptions
from orchestrator.child.control import (
    ENDING,
    SPARE,
    Assigned,
    NodeEnded,
    ParentLost,
    Signalled,
    SpareStop,
)
from orchestrator.child.ending import (
    Ending,
    config_ending,
    is_config_problem,
    is_state_problem,
    node_ending,
    state_ending,
)
from orchestrator.child.heartbeat import HeartbeatPacer, ParentWatchdog
from orchestrator.child.inbound import ParentMessages
from orchestrator.child.log import ChildLog
from orchestrator.child.logfile import NodeLogFile
from orchestrator.child.outbox import EventOutbox
from orchestrator.child.predecessor import wait_for_predecessor
from orchestrator.child.prepared import PreparedNodes
from orchestrator.child.rehearsal import RehearsalReport, rehearse
from orchestrator.child.replies import ReplyCache
from orchestrator.child.reporting import ChildReports
from orchestrator.child.resend import StateBehindJournal, resend_unacked
from orchestrator.process.exit_codes import ChildExit
from orchestrator.protocol import (
    ProtocolError,
    bye,
    encode,
    error,
    hb,
    hello,
    kinds,
    reply_error,
    reply_ok,
)
from orchestrator.transport import TrioSocket

ACK_WAIT_S = 1.0
"""How long the ending waits for the parent's ack of the last event."""
FINISH_SEND_S = 2.0
"""Bound on sending the ending's messages (events, replies, bye) to a parent that is there."""
LOST_SEND_S = 0.2
"""The same bound when the parent is lost: a last try, then go."""
PARENT_LOST_STOP_S = 2.0
"""How long a node may take to stop once the parent is lost; then the child exits regardless."""
LOG_CHECK_S = 1.0
"""How often the node's log file size is checked for rotation."""


class ChildSession(ParentMessages, ChildReports):
    """The child's state machine over one connected DEALER (see module docstring)."""

    def __init__(self, sock: TrioSocket, options: ChildOptions, log: ChildLog, warmup_s: float) -> None:
        self._sock = sock
        self._options = options
        self._log = log
        self._warmup_s = warmup_s
        self._rehearsal: RehearsalReport | None = None
        self._prepared = PreparedNodes(options.heartbeat_interval_s, log.write)
        self._waiting_for: int | None = None  # see predecessor
        self._modules_at_hello = frozenset(sys.modules)
        self._control_in, self._control_out = trio.open_memory_channel(math.inf)
        self._watchdog = ParentWatchdog(options.parent_timeout_s)
        self._nursery: trio.Nursery | None = None
        self._phase = SPARE
        self._assignment: Assignment | None = None
        self._node: TradingNode | None = None
        self._outbox: EventOutbox | None = None
        self._pending_stop: str | None = None  # a stop asked for before the node ran
        self._stop_cmd_ids: list[str] = []  # answered by _finish, once the node has stopped
        self._stop_replies_sent = False
        self._ending: Ending | None = None
        self._replies_in_flight = 0
        self._replies_done: trio.Event | None = None
        self.malformed_frames = 0
        self.unexpected_messages = 0
        self.parent_errors = 0
        self.commands = 0
        self._replies = ReplyCache()
        self._pnl_failed = False  # its failure is logged once, not at every heartbeat

    # -- the main task ----------------------------------------------------------------------------

    async def run(self) -> ChildExit:
        """Say hello, live, end; return the exit code."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._watch_signals)
            if self._options.prepare is not None:  # before the rehearsal: its gc.freeze keeps them
                self._prepared.prepare_file(self._options.prepare)
            if self._options.rehearse:  # a signal meanwhile is a control item, handled as a spare's
                await self._rehearse()
            await self._send(hello(self._options.slot, os.getpid(), True))
            nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._watch_parent)
            outcome = await self._wait_as_spare()
            if isinstance(outcome, Assignment):
                outcome = await self._serve(outcome)
            await self._finish(outcome)
            nursery.cancel_scope.cancel()
        return outcome.code

    async def _rehearse(self) -> None:
        report = self._rehearsal = await rehearse(self._options.heartbeat_interval_s)
        if report.problem is not None:
            self._log.write(f"the rehearsal failed ({report.problem}); this spare serves without it")
        self._modules_at_hello = frozenset(sys.modules)

    async def _wait_as_spare(self) -> Assignment | Ending:
        while True:
            item = await self._control_out.receive()
            if isinstance(item, Assigned):
                return item.assignment
            if isinstance(item, SpareStop):
                self._stop_cmd_ids.append(item.cmd_id)
                return Ending(ChildExit.OK, f"spare stopped by command {item.cmd_id!r}")
            if isinstance(item, ParentLost):
                return Ending(ChildExit.PARENT_LOST, item.reason)
            if isinstance(item, Signalled):
                return Ending(ChildExit.OK, f"spare stopped by signal {signal.Signals(item.signum).name}")

    async def _serve(self, assignment: Assignment) -> Ending:
        """Build the node, run it until it ends, and say how it ended."""
        name = assignment.node
        self._open_node_log(name)
        prepared = self._prepared.take(name, assignment.config)  # built ahead (see prepared)
        try:
            config = (
                prepared[0]
                if prepared
                else node_config(assignment.config, self._options.heartbeat_interval_s)
            )
        except ConfigError as exc:
            return config_ending(name, exc)
        outbox = EventOutbox(
            name,
            assignment.incarnation,
            assignment.resume_after,
            self._options.max_unacked,
            warn=self._log.write,
            offset=0 if config.state is not None else None,  # a stored sequence is absolute
        )
        try:
            # The outbox itself, not outbox.sink: it is a RecordSink (one list per event; see outbox).
            if prepared:
                node = prepared[1]
                node.set_stream_sink(outbox)
            else:
                node = TradingNode(config, stream_sink=outbox)
            if config.state is not None and assignment.after_pid:
                self._waiting_for = assignment.after_pid  # it holds the store until it is gone
                await wait_for_predecessor(assignment.after_pid)
                self._waiting_for = None
            node.build()  # with a state store: start = recovery (node.live.recovery)
        except Exception as exc:
            if is_config_problem(exc):
                return config_ending(name, exc)
            if is_state_problem(exc):
                self._log.write(str(exc))
                return state_ending(name, exc)
            self._log.exception(f"node {name!r} could not be built", exc)
            return Ending(ChildExit.FAILED, f"node {name!r} could not be built: {type(exc).__name__}: {exc}")
        self._node, self._outbox = node, outbox
        pacer = HeartbeatPacer(self._options.heartbeat_interval_s, config.liveness_interval_s)
        node.liveness.add_listener(pacer.on_tick)
        self._nursery.start_soon(outbox.pump, self._send_frame)
        if node.recorder is not None:
            try:
                resent = await resend_unacked(
                    outbox,
                    node.state_store,
                    node.restore_report.last_seq,
                    assignment.resume_after,
                    self._log.write,
                )
            except StateBehindJournal as exc:
                self._log.write(str(exc))
                node.dispose()
                return state_ending(name, exc)
            if resent:
                self._log.write(f"resending {resent} events the parent had not journaled")
        self._nursery.start_soon(self._send_heartbeats, pacer, node)
        node.kernel.msgbus.subscribe(NODE_TOPIC, partial(self._announce_state, pacer, node))
        async with trio.open_nursery() as node_nursery:
            node_nursery.start_soon(self._run_node, node)
            return await self._supervise(node)

    async def _discard_prepared(self) -> None:
        """The nodes prepared for others go once the assigned one runs: not on its start's path."""
        self._prepared.discard()

    def _open_node_log(self, name: str) -> None:
        """From now on this process's output is the node's log (see ``logfile``), rotated by size."""
        options = self._options
        if options.log_dir is None:
            return
        logfile = NodeLogFile(options.log_dir, name, options.log_max_bytes, options.log_backups)
        try:
            logfile.open()
        except OSError as exc:
            self._log.write(f"cannot open the node's log {logfile.path}: {exc}; keeping this output")
            return
        self._nursery.start_soon(self._rotate_log, logfile)

    @staticmethod
    async def _rotate_log(logfile: NodeLogFile) -> None:
        while True:  # a size check once a second: rotation is housekeeping, not a hot path
            await trio.sleep(LOG_CHECK_S)
            try:
                logfile.rotate_if_large() or logfile.reopen_if_removed()
            except OSError:
                pass

    async def _run_node(self, node: TradingNode) -> None:
        error_: BaseException | None = None
        stop_reason = self._pending_stop  # asked to stop before it ran: it is never started
        if stop_reason is None:
            try:
                await node.run_async()
            except Exception as exc:  # its failure, or something unexpected: _supervise tells which
                error_ = exc
            stop_reason = node.stop_reason
        try:
            node.dispose()
        except Exception as exc:
            self._log.exception(f"disposing node {node.node_id} failed", exc)
        self._control_in.send_nowait(NodeEnded(error_, stop_reason))

    async def _supervise(self, node: TradingNode) -> Ending:
        """React to control items until the node has ended."""
        assert self._assignment is not None
        name = self._assignment.node
        parent_lost: str | None = None
        give_up_at = math.inf
        while True:
            item = None
            with trio.move_on_at(give_up_at):
                item = await self._control_out.receive()
            if item is None:
                self._abandon(f"{parent_lost}; node {name!r} did not stop within {PARENT_LOST_STOP_S:g} s")
            if isinstance(item, NodeEnded):
                if item.error is not None and item.error is not node.failure:
                    self._log.exception(f"node {name!r} raised unexpectedly", item.error)
                ending = node_ending(name, item.error, item.stop_reason)
                if parent_lost is None:
                    return ending
                how = f"node {name!r} stopped cleanly" if ending.code is ChildExit.OK else ending.reason
                return Ending(ChildExit.PARENT_LOST, f"{parent_lost}; {how}")
            if isinstance(item, ParentLost):
                parent_lost = item.reason
                give_up_at = trio.current_time() + PARENT_LOST_STOP_S
                self._stop_node(item.reason)
            elif isinstance(item, Signalled):
                self._stop_node(f"signal {signal.Signals(item.signum).name}")

    def _stop_node(self, reason: str) -> None:
        """Ask the node to stop, whatever its state (idempotent)."""
        node = self._node
        if node is None or node.state in (NodeState.CREATED, NodeState.BUILT):
            if self._pending_stop is None:
                self._pending_stop = reason
            return
        try:
            node.stop(reason)  # on the loop thread: the same path the inbox's StopNode takes
        except NodeStateError:
            pass  # disposed meanwhile: it has stopped already

    def _abandon(self, reason: str) -> None:
        self._log.write(f"{reason}: exiting at once with {ChildExit.PARENT_LOST.name}")
        os._exit(ChildExit.PARENT_LOST)

    @staticmethod
    def _stop_result(ending: Ending) -> dict:
        return {"exit_code": int(ending.code), "reason": ending.reason}

    async def _finish(self, ending: Ending) -> None:
        self._phase = ENDING
        self._ending = ending
        self._prepared.discard()
        level = "exiting" if ending.code is ChildExit.OK else "exiting on error"
        self._log.write(f"{level}: {ending.code.name} ({int(ending.code)}): {ending.reason}")
        lost = ending.code is ChildExit.PARENT_LOST
        outbox = self._outbox
        with trio.move_on_after(LOST_SEND_S if lost else FINISH_SEND_S) as scope:
            if ending.error is not None:
                await self._send(error(*ending.error))
            if outbox is not None:
                await outbox.wait_idle()
            await self._wait_replies()
            self._stop_replies_sent = True
            for cmd_id in self._stop_cmd_ids:
                await self._send(reply_ok(cmd_id, self._stop_result(ending)))
            await self._send(bye(ending.reason, int(ending.code)))
        if scope.cancelled_caught:
            self._log.write("the parent did not take the last messages in time; some may be lost")
            return
        if outbox is not None and not lost:
            with trio.move_on_after(ACK_WAIT_S):
                await outbox.wait_all_acked()
            if not outbox.all_acked:
                self._log.write(
                    f"no ack for events {outbox.acked_seq + 1}..{outbox.last_seq} within {ACK_WAIT_S:g} s"
                )

    # -- helper tasks -----------------------------------------------------------------------------

    async def _watch_signals(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                self._control_in.send_nowait(Signalled(signum))

    async def _watch_parent(self) -> None:
        reason = await self._watchdog.watch()
        self._control_in.send_nowait(ParentLost(reason))

    async def _send_heartbeats(self, pacer: HeartbeatPacer, node: TradingNode) -> None:
        while True:
            ts = await pacer.next_due()
            await self._send(hb(ts, node.state.value, self._counters(node)))

    def _announce_state(self, pacer: HeartbeatPacer, node: TradingNode, change: NodeStateChanged) -> None:
        """A heartbeat at each lifecycle transition (see ``heartbeat``), sent from inside it.

        Why here: the parent times a restart until it sees RUNNING. Sent by the transition itself
        (a bus handler on the kernel loop), the heartbeat leaves before the loop runs anything
        else; left to the sender task, it went out two task switches later, after whatever the
        node's start-up had queued (0.4-0.5 ms p50 in bench/restart_latency.py). If the socket
        cannot take it at once, the sender task sends it.
        """
        if change.state is NodeState.DISPOSED:
            return
        ts = time.time_ns()
        try:
            frame = encode(hb(ts, change.state.value, self._counters(node)))
            sent = self._sock.try_send((frame,))
        except Exception:  # never out of the transition: the sender task meets the same and reports it
            sent = False
        if sent:
            pacer.sent(ts)
        else:
            pacer.due_now(ts)
        if change.state is NodeState.RUNNING and len(self._prepared):
            self._nursery.start_soon(self._discard_prepared)  # after this heartbeat, not before it

    # -- sending ----------------------------------------------------------------------------------

    async def _send_frame(self, frame: bytes) -> None:
        await self._sock.send_multipart((frame,))

    async def _send(self, msg: dict) -> None:
        """Encode and send; a reply whose result cannot be encoded becomes a reply_error.

        A reply is kept by command id (``replies``) and also sent to the repeats that waited for it.
        """
        try:
            frame = encode(msg)
        except ProtocolError as exc:
            if msg["k"] != kinds.REPLY:
                raise
            msg = reply_error(msg["id"], f"the command's result cannot be sent: {exc}")
            frame = encode(msg)
        copies = 1 + (self._replies.done(msg) if msg["k"] == kinds.REPLY else 0)
        for _ in range(copies):
            await self._sock.send_multipart((frame,))

    async def _refuse(self, code: str, message: str, ref: str | None = None) -> None:
        self.unexpected_messages += 1
        self._log.write(f"refused a message ({code}): {message}")
        await self._send(error(code, message, ref))


__all__ = ["ACK_WAIT_S", "PARENT_LOST_STOP_S", "ChildSession"]
