"""What a child does with each message from its parent: the receiver task and the handlers.

Part of :class:`orchestrator.child.session.ChildSession`, as a mixin (the handlers share its
socket, node, outbox and counters). Every inbound frame is decoded and checked (``protocol.
decode``); a malformed one is counted, logged and answered with ``error``, and the child goes
on. ``hb`` feeds the parent watchdog, ``ack`` the outbox (and the node's recorder), ``cmd`` the
command handling (a repeated command id gets its first reply, never a second execution);
whatever needs a decision about the child's life (an ``assign``, a spare's ``stop``) goes to the
main task as a control item (``orchestrator.child.control``). An ``assign`` is also answered at
once with a heartbeat (state ``ASSIGNED``), before the node is built: the parent gives the
child the start-up's deadline only then, so a spare that cannot answer is found hung at once.
"""

from __future__ import annotations

import time

import trio

from node.live.errors import InvalidCommand
from orchestrator.child import error_codes
from orchestrator.child.assignment import Assignment
from orchestrator.child.commands import (
    NODE_COMMANDS,
    PING,
    STATUS,
    STOP,
    InvalidArguments,
    UnknownCommand,
    node_command,
)
from orchestrator.child.control import ASSIGNED, ENDING, NODE, SPARE, Assigned, SpareStop
from orchestrator.child.futures import wait_future
from orchestrator.child.outbox import InvalidAck
from orchestrator.protocol import ProtocolError, decode, error_from, hb, kinds, reply_error, reply_ok
from orchestrator.protocol.errors import MALFORMED


class ParentMessages:
    """The child's handling of its parent's messages (module docstring)."""

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
        self._control_in.send_nowait(Assigned(self._assignment))
        # Answered at once, before the node is built: the parent then knows this spare is alive
        # and gives it the start-up's deadline (a wedged spare is found within a heartbeat timeout).
        await self._send(hb(time.time_ns(), ASSIGNED, {}))

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
            self._control_in.send_nowait(SpareStop(cmd_id))
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


__all__ = ["ParentMessages"]
