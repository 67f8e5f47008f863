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
only report.

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
from dataclasses import dataclass
from functools import partial

import trio

from node.backtest.config import ConfigError
from node.live.errors import InvalidCommand, NodeStateError
from node.live.node import NODE_TOPIC, NodeStateChanged, TradingNode
from node.live.states import NodeState
from orchestrator.child import error_codes
from orchestrator.child.assignment import Assignment, node_config
from orchestrator.child.cli import ChildOptions
from orchestrator.child.commands import (
    NODE_COMMANDS,
    PING,
    STATUS,
    STOP,
    InvalidArguments,
    UnknownCommand,
    node_command,
)
from orchestrator.child.ending import (
    Ending,
    config_ending,
    is_config_problem,
    is_state_problem,
    node_ending,
    state_ending,
)
from orchestrator.child.futures import wait_future
from orchestrator.child.heartbeat import HeartbeatPacer, ParentWatchdog, pnl_micros
from orchestrator.child.log import ChildLog
from orchestrator.child.logfile import NodeLogFile
from orchestrator.child.outbox import EventOutbox, InvalidAck
from orchestrator.child.predecessor import wait_for_predecessor
from orchestrator.child.prepared import PreparedNodes
from orchestrator.child.rehearsal import RehearsalReport, rehearse
from orchestrator.child.replies import ReplyCache
from orchestrator.child.resend import StateBehindJournal, resend_unacked
from orchestrator.process.exit_codes import ChildExit
from orchestrator.protocol import (
    ProtocolError,
    bye,
    decode,
    encode,
    error,
    error_from,
    hb,
    hello,
    kinds,
    reply_error,
    reply_ok,
)
from orchestrator.protocol.errors import MALFORMED
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

SPARE = "spare"
NODE = "node"
ENDING = "ending"


# -- control items: what the main task is told -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Assigned:
    assignment: Assignment


@dataclass(frozen=True, slots=True)
class _SpareStop:
    cmd_id: str


@dataclass(frozen=True, slots=True)
class _ParentLost:
    reason: str


@dataclass(frozen=True, slots=True)
class _Signalled:
    signum: int


@dataclass(frozen=True, slots=True)
class _NodeEnded:
    error: BaseException | None
    stop_reason: str


class ChildSession:
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
            if isinstance(item, _Assigned):
                return item.assignment
            if isinstance(item, _SpareStop):
                self._stop_cmd_ids.append(item.cmd_id)
                return Ending(ChildExit.OK, f"spare stopped by command {item.cmd_id!r}")
            if isinstance(item, _ParentLost):
                return Ending(ChildExit.PARENT_LOST, item.reason)
            if isinstance(item, _Signalled):
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
                logfile.rotate_if_large()
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
        self._control_in.send_nowait(_NodeEnded(error_, stop_reason))

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
            if isinstance(item, _NodeEnded):
                if item.error is not None and item.error is not node.failure:
                    self._log.exception(f"node {name!r} raised unexpectedly", item.error)
                ending = node_ending(name, item.error, item.stop_reason)
                if parent_lost is None:
                    return ending
                how = f"node {name!r} stopped cleanly" if ending.code is ChildExit.OK else ending.reason
                return Ending(ChildExit.PARENT_LOST, f"{parent_lost}; {how}")
            if isinstance(item, _ParentLost):
                parent_lost = item.reason
                give_up_at = trio.current_time() + PARENT_LOST_STOP_S
                self._stop_node(item.reason)
            elif isinstance(item, _Signalled):
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
                self._control_in.send_nowait(_Signalled(signum))

    async def _watch_parent(self) -> None:
        reason = await self._watchdog.watch()
        self._control_in.send_nowait(_ParentLost(reason))

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

    # -- receiving --------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            frames = await self._sock.recv_multipart()
            if len(frames) != 1:
                await self._malformed(
                    ProtocolError(MALFORMED, f"expected one frame per message, got {len(frames)}")
                )
                continue
            try:
                msg = decode(frames[0])
            except ProtocolError as exc:
                await self._malformed(exc)
                continue
            await self._dispatch(msg)

    async def _malformed(self, exc: ProtocolError) -> None:
        self.malformed_frames += 1
        self._log.write(f"malformed frame #{self.malformed_frames} from the parent: {exc}")
        await self._send(error_from(exc))

    async def _dispatch(self, msg: dict) -> None:
        kind = msg["k"]
        if kind == kinds.HB:
            self._watchdog.beat()
        elif kind == kinds.ACK:
            await self._on_ack(msg)
        elif kind == kinds.CMD:
            await self._on_cmd(msg)
        elif kind == kinds.ASSIGN:
            await self._on_assign(msg)
        elif kind == kinds.ERROR:
            self.parent_errors += 1
            ref = f" (about {msg['ref']})" if msg["ref"] else ""
            self._log.write(f"the parent reported an error{ref}: {msg['code']}: {msg['message']}")
        else:
            await self._refuse(error_codes.UNEXPECTED, f"a child does not take {kind!r} messages")

    async def _on_assign(self, msg: dict) -> None:
        if self._phase != SPARE:
            if self._assignment is not None:
                why = f"this child already runs node {self._assignment.node!r}"
            else:
                why = "this spare is stopping"
            await self._refuse(error_codes.UNEXPECTED, f"assign of node {msg['node']!r} refused: {why}")
            return
        self._phase = NODE
        self._assignment = Assignment.from_message(msg)
        self._control_in.send_nowait(_Assigned(self._assignment))

    async def _on_ack(self, msg: dict) -> None:
        outbox = self._outbox
        if outbox is None or msg["node"] != outbox.node:
            running = f"node {outbox.node!r}" if outbox is not None else "no node"
            await self._refuse(
                error_codes.UNEXPECTED, f"ack for node {msg['node']!r}, but this child runs {running}"
            )
            return
        try:
            outbox.ack(msg["seq"])
        except InvalidAck as exc:
            await self._refuse(error_codes.INVALID_FIELD, str(exc))
            return
        recorder = self._node.recorder if self._node is not None else None
        if recorder is not None:  # journaled by the parent: no resend after a restart
            recorder.ack(msg["seq"])

    async def _on_cmd(self, msg: dict) -> None:
        self.commands += 1
        cmd_id, name, target, args = msg["id"], msg["name"], msg["node"], msg["args"]
        replies = self._replies
        if replies.reply_for(cmd_id) is not None or replies.is_pending(cmd_id):
            first = replies.repeat(cmd_id)  # carried out once: the repeat gets the first reply
            if first is not None:
                await self._send(first)
            return
        replies.begin(cmd_id)
        if name == PING:
            await self._send(reply_ok(cmd_id, "pong"))
            return
        assignment = self._assignment
        if assignment is not None and target != assignment.node:
            await self._send(reply_error(cmd_id, f"this child runs node {assignment.node!r}, not {target!r}"))
            return
        if name == STATUS:
            await self._send(reply_ok(cmd_id, self._status()))
        elif name == STOP:
            await self._on_stop(cmd_id)
        elif name in NODE_COMMANDS:
            await self._on_node_command(cmd_id, name, args)
        else:
            await self._send(reply_error(cmd_id, str(UnknownCommand(name))))

    async def _on_stop(self, cmd_id: str) -> None:
        if self._phase == SPARE:
            self._phase = ENDING  # an assign racing with this stop is refused
            self._control_in.send_nowait(_SpareStop(cmd_id))
            return
        if self._ending is not None and self._stop_replies_sent:  # too late to join: answer now
            await self._send(reply_ok(cmd_id, self._stop_result(self._ending)))
            return
        self._stop_cmd_ids.append(cmd_id)
        self._stop_node(f"stop command {cmd_id!r}")

    async def _on_node_command(self, cmd_id: str, name: str, args: dict) -> None:
        node = self._node
        if node is None:
            state = "a spare: no node is assigned" if self._phase == SPARE else "not running a node"
            await self._send(reply_error(cmd_id, f"command {name!r} needs a node; this child is {state}"))
            return
        try:
            future = node.inject(node_command(name, args))
        except (InvalidArguments, InvalidCommand) as exc:
            await self._send(reply_error(cmd_id, str(exc)))
            return
        self._replies_in_flight += 1  # counted now: _finish must see it before the task starts
        self._nursery.start_soon(self._reply_when_done, cmd_id, future)

    async def _reply_when_done(self, cmd_id: str, future) -> None:
        try:
            try:
                result = await wait_future(future)
            except Exception as exc:
                msg = reply_error(cmd_id, f"{type(exc).__name__}: {exc}")
            else:
                msg = reply_ok(cmd_id, result)
            await self._send(msg)
        finally:
            self._replies_in_flight -= 1
            done = self._replies_done
            if done is not None and not self._replies_in_flight:
                self._replies_done = None
                done.set()

    async def _wait_replies(self) -> None:
        while self._replies_in_flight:
            if self._replies_done is None:
                self._replies_done = trio.Event()
            await self._replies_done.wait()

    # -- reporting --------------------------------------------------------------------------------

    def _child_stats(self) -> dict:
        assignment = self._assignment
        stats = {
            "slot": self._options.slot,
            "pid": os.getpid(),
            "phase": self._phase,
            "node": assignment.node if assignment else None,
            "incarnation": assignment.incarnation if assignment else None,
            "warmup_ms": round(self._warmup_s * 1000, 3),
            "rehearsal_ms": None if self._rehearsal is None else round(self._rehearsal.seconds * 1000, 3),
            "prepared_nodes": len(self._prepared),  # built ahead and not used (yet)
            "prepared": self._prepared.used,  # the assigned node was built ahead
            "waiting_for_pid": self._waiting_for,  # the predecessor (hung or crashed) whose end it awaits
            "late_imports": sorted(set(sys.modules) - self._modules_at_hello),
            "parent_heartbeats": self._watchdog.beats,
            "malformed_frames": self.malformed_frames,
            "unexpected_messages": self.unexpected_messages,
            "parent_errors": self.parent_errors,
            "commands": self.commands,
            "repeated_commands": self._replies.repeats,
        }
        if self._outbox is not None:
            stats.update(self._outbox.stats())
        return stats

    def _status(self) -> dict:
        node = self._node
        if node is None:
            return {"child": self._child_stats()}
        return {**node.stats(), "child": self._child_stats()}

    def _counters(self, node: TradingNode) -> dict[str, int]:
        stats = node.stats()
        queues = stats["queues"].values()
        stream = stats["stream"]
        counters = {
            "events_published": stream["published"],
            "stream_buffered": stream["buffered"],
            "sink_errors": stream["sink_errors"],
            "data_dropped": sum(q["dropped"] for q in queues),
            "queue_errors": sum(q["errors"] for q in queues),
            "commands_executed": stats["commands"]["executed"],
            "commands_failed": stats["commands"]["failed"],
            "liveness_ticks": stats["liveness"]["count"],
            "malformed_frames": self.malformed_frames,
        }
        if self._outbox is not None:
            counters.update(self._outbox.stats())
        pnl = self._pnl_micros(node)
        if pnl is not None:
            counters["pnl_micros"] = pnl
        return counters

    def _pnl_micros(self, node: TradingNode) -> int | None:
        """The node's PnL for the heartbeat (see ``heartbeat.pnl_micros``); never fails the heartbeat."""
        kernel = node.kernel
        try:
            return pnl_micros(kernel.portfolio, kernel.cache.accounts())
        except Exception as exc:  # a bug here must not look like a hang (no hb) to the parent
            if not self._pnl_failed:
                self._pnl_failed = True
                self._log.exception("computing the node's PnL for the heartbeat failed", exc)
            return None


__all__ = ["ACK_WAIT_S", "PARENT_LOST_STOP_S", "ChildSession"]
