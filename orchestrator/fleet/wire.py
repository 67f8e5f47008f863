"""The Orchestrator's side of the node ROUTER: what it sends, and what it does with each message.

Part of :class:`orchestrator.fleet.orchestrator.Orchestrator`, as a mixin (these share its
sockets, slots and node statuses). One trio task owns reading the ROUTER (``_recv_loop``); any
task may send on it (the TrioSocket re-check protocol keeps the reader awake). Every inbound
message is checked (``codec.decode_relay``): an invalid one is counted, logged and answered with
``error``, and never stops the orchestrator. Event frames go to the ``EventRelay``
(``orchestrator.fleet.relay``), acked once per received batch; heartbeats feed the
HeartbeatMonitor and make a STARTING node RUNNING.
"""

from __future__ import annotations

import logging
import time

import trio
import zmq

from orchestrator.fleet.slots import Slot
from orchestrator.fleet.state import NodeState, Transition
from orchestrator.fleet.strays import end_stray
from orchestrator.protocol import codec, messages
from orchestrator.protocol.codec import EvtBatch
from orchestrator.protocol.errors import ProtocolError
from orchestrator.supervision.exit_reason import Intent
from orchestrator.transport.errors import PeerUnreachableError

log = logging.getLogger("orchestrator")

HELD_UP_LOG_S = 10.0
"""At most one hold-up warning this often; the others are counted into the next."""


class NodeWire:
    """The Orchestrator's messaging with its children (module docstring)."""

    async def _send(self, slot: Slot, msg: dict) -> None:
        await self._router.send_multipart([slot.identity, codec.encode(msg)])

    async def _parent_heartbeats(self) -> None:
        interval = self.config.heartbeat_interval_s
        while True:
            frame = codec.encode(messages.hb(time.time_ns(), "orchestrator", {}))
            for slot in list(self._slots.values()):
                try:
                    await self._router.send_multipart([slot.identity, frame])
                except (PeerUnreachableError, zmq.ZMQError):
                    pass  # not connected yet, or gone: its exit is handled by its watcher
            await trio.sleep(interval)

    async def _recv_loop(self) -> None:
        router = self._router
        relay = self.relay
        while True:
            batch = await router.recv_batch(256)
            self._handling = True  # taken off the socket, not all handled yet (_read_what_arrived)
            try:
                for frames in batch:
                    await self._handle(frames)
            finally:
                self._handling = False
            # Acks are cumulative: one per child per received batch covers all its frames in it.
            await relay.ack_pending()

    async def _read_what_arrived(self) -> None:
        """Return once the receive loop has handled every message already here (bounded).

        Awaited before a node is judged hung (``HeartbeatMonitor.watch``): its heartbeat may be
        in the socket, or taken off it and not handled yet, when our loop was the slow one.
        """
        router = self._router
        with trio.move_on_after(self.config.heartbeat_interval_s):
            await trio.lowlevel.checkpoint()  # a reader woken with us runs first
            while self._handling or (router is not None and router.has_unread()):
                await trio.lowlevel.checkpoint()

    def _held_up(self, late_s: float) -> None:
        """The hang watcher woke late (``HeartbeatMonitor``): say so, at most every ``HELD_UP_LOG_S``."""
        now = trio.current_time()
        if now < self._held_up_logged_at + HELD_UP_LOG_S:
            self._held_up_unlogged += 1
            return
        more = self._held_up_unlogged
        self._held_up_logged_at, self._held_up_unlogged = now, 0
        log.warning(
            "the orchestrator was held up: it woke %.0f ms past a heartbeat deadline (its process "
            "was stopped or starved of CPU, or its loop busy); no node is judged hung until %.0f ms "
            "from now, while the heartbeats that arrived meanwhile are read%s",
            late_s * 1000,
            self._heartbeats.settle_s * 1000,
            f" ({more} more hold-ups since the last report)" if more else "",
        )

    async def _handle(self, frames: list) -> None:
        if len(frames) != 2:
            self._invalid_messages += 1
            log.warning("dropped a message with %d frames (expected identity + 1)", len(frames))
            return
        identity, frame = frames
        try:
            # An evt frame comes back as an EvtBatch: envelope and seq range checked, events not
            # decoded (the relay forwards them as received; see codec.decode_relay for the boundary).
            msg = codec.decode_relay(frame)
        except ProtocolError as exc:
            self._invalid_messages += 1
            log.warning("invalid message from %r: %s", identity, exc)
            await self._reply_error(identity, exc.code, str(exc))
            return
        slot = self._slots.get(identity)
        if slot is None:
            self._invalid_messages += 1
            if type(msg) is dict and msg["k"] == "hello" and identity in self._children.abandoned:
                if end_stray(self._nursery, msg["slot"], msg["pid"]):
                    self._children.abandoned.discard(identity)
                    return
            await self._reply_error(
                identity, "unknown_peer", "this orchestrator did not start a child with that id"
            )
            return
        if type(msg) is EvtBatch:
            await self.relay.on_events(slot, msg)
            return
        kind = msg["k"]
        if kind == "hb":
            self._on_heartbeat(slot, msg)
        elif kind == "reply":
            waiter = self._replies.get(msg["id"])
            if waiter is not None:
                waiter[1].append(msg)
                waiter[0].set()
        elif kind == "hello":
            slot.ready.set()
        elif kind == "bye":
            slot.bye = msg["reason"]
        elif kind == "error":
            log.warning("child %s reported an error: %s", slot.slot_id, msg["message"])
        else:
            self._invalid_messages += 1
            await self._reply_error(identity, "unexpected_kind", f"a child may not send {kind!r}")

    async def _reply_error(self, identity: bytes, code: str, message: str) -> None:
        try:
            await self._router.send_multipart([identity, codec.encode(messages.error(code, message, None))])
        except (PeerUnreachableError, zmq.ZMQError):
            pass

    def _on_heartbeat(self, slot: Slot, msg: dict) -> None:
        node_id = slot.node_id
        if node_id is None or self._node_slot.get(node_id) is not slot:
            return
        status = self.nodes[node_id]
        now = trio.current_time()
        status.last_heartbeat = now
        status.event_rate.start(now)
        pnl = msg["counters"].get("pnl_micros")
        if pnl is not None:
            status.pnl_micros = pnl
        if slot.intent is Intent.STOP:
            return  # being stopped: no hang deadline (see _end_slot)
        if status.state is NodeState.STARTING:
            slot.assign_answered = True
            if msg["state"] == "RUNNING":
                status.started_at = now
                self._move(status, Transition.STARTED, cold=slot.cold)
                self._heartbeats.beat(node_id, now)
            else:
                self._heartbeats.beat(node_id, now, timeout_s=self.config.startup_timeout_s)
        else:
            self._heartbeats.beat(node_id, now)


__all__ = ["NodeWire"]
