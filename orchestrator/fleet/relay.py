"""The exactly-once relay: each child's ``evt`` frames journaled, fanned out, then acked.

Why a module of its own: this is the orchestrator's hot path (every event of every node passes
here), with its own rules, kept apart from the supervision around it:

- **Journal first.** A frame is appended to its node's journal (``FleetJournals``), then published
  on the PUB socket, then acked. One journal record per frame, keyed by the frame's last seq,
  holding the frame as received: nothing is re-encoded on the relay path (one record per event
  cost ~1 us/event); replay unpacks frames and keeps the events at or after the asked seq (see
  ``control.server``).
- **Nothing twice.** A frame whose last seq the journal already has is a resend: dropped and only
  re-acked. One that overlaps is decoded in full (and so validated to the last event body) and
  cut to its new part. A gap is logged and relayed: the node's own seq says what is missing.
- **Acked in bulk, never ahead of the disk.** Acks are cumulative: one per child per received
  batch (:meth:`ack_pending`), and never beyond what the fsync policy has made durable
  (``FleetJournals.ackable``); under ``batch`` the acks that waited go out after each sync
  (:meth:`made_durable`).
- **Not decoded.** What is used comes from what ``codec.decode_relay`` checked: node, incarnation,
  the first and last seq (consecutive within the frame) and the event count. Events are decoded
  only for an overlapping resend, or when listeners (the control socket's history) want them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
import zmq

from orchestrator.fleet.journals import FleetJournals
from orchestrator.fleet.slots import Slot
from orchestrator.fleet.state import NodeStatus
from orchestrator.journal import FsyncMode, RecordTooLargeError, SequenceError
from orchestrator.protocol import codec, messages
from orchestrator.protocol.codec import EvtBatch
from orchestrator.protocol.errors import ProtocolError
from orchestrator.transport.errors import PeerUnreachableError

log = logging.getLogger(__name__)


def event_topic(node_id: str) -> bytes:
    """The PUB topic of a node's events (subscribers filter on its prefix)."""
    return b"evt." + node_id.encode()


class EventRelay:
    """Journal, publish and ack the event frames of the children; see the module docstring."""

    def __init__(
        self,
        nodes: dict[str, NodeStatus],
        send: Callable[[Slot, dict], Awaitable[None]],
        reply_error: Callable[[bytes, str, str], Awaitable[None]],
        slot_of: Callable[[str], Slot | None],
    ) -> None:
        self._nodes = nodes
        self._send = send  # a message to a child
        self._reply_error = reply_error  # an ``error`` reply to a peer identity
        self._slot_of = slot_of  # the slot that runs a node now, if any
        self.journals: FleetJournals | None = None  # set while the orchestrator runs
        self.publisher = None  # the PUB (a SequencedPublisher), set while the orchestrator runs
        # Called as listener(node_id, events) for every relayed batch (e.g. the control socket's
        # event history); must be quick and must not raise.
        self.listeners: list = []
        self.duplicate_events = 0  # events of resent frames, dropped
        self.relayed_events = 0
        self.refused_frames = 0  # frames refused with an error reply (the child's fault)
        self._pending_acks: dict[Slot, None] = {}  # slots that sent events in the current batch

    async def on_events(self, slot: Slot, batch: EvtBatch) -> None:
        """Journal, publish and (after the receive batch) ack one evt frame of ``slot``."""
        node_id = slot.node_id
        if slot.handed_over:
            # Sent just before it died, read after its node moved on to a replacement that numbers
            # its events after what the journal had then: a durable node resends these from its
            # store; a stateless one loses them, as it loses what its outbox still held.
            log.warning(
                "node %s: %d events of its ended child %s dropped (%d..%d)",
                node_id,
                batch.count,
                slot.slot_id,
                batch.first,
                batch.last,
            )
            return
        if node_id != batch.node or slot.incarnation != batch.incarnation:
            await self._refuse(slot, "wrong_node", f"slot {slot.slot_id} runs {node_id!r}")
            return
        status = self._nodes[node_id]
        journal = self.journals[node_id]
        frame, first, last, count = batch.frame, batch.first, batch.last, batch.count
        stored = journal.last_seq
        if last <= stored:  # a resend of what the journal already has: not stored or published again
            self.duplicate_events += count
            slot.relayed_seq = max(slot.relayed_seq, last)
            self._pending_acks[slot] = None  # re-ack, so the node can forget them
            return
        events = None  # decoded only where needed: an overlapping resend, or listeners
        if first <= stored:  # a resend overlapping what we have: keep (and publish) only the new part
            try:
                msg = batch.message()
            except ProtocolError as exc:
                log.warning("node %s: invalid resent events: %s", node_id, exc)
                await self._refuse(slot, exc.code, str(exc))
                return
            events = [e for e in msg["events"] if e[0] > stored]
            self.duplicate_events += count - len(events)
            frame = codec.encode({**msg, "events": events})
            first, count = events[0][0], len(events)
        elif first != stored + 1:
            log.warning(
                "node %s: events %d..%d follow seq %d: a gap in its stream", node_id, first, last, stored
            )
        records = [(last, frame)]
        try:
            if journal.policy.mode is FsyncMode.ALWAYS:  # fdatasync per frame: off the loop
                await trio.to_thread.run_sync(journal.append_batch, records)
            else:
                journal.append_batch(records)
        except (SequenceError, RecordTooLargeError) as exc:  # the child's fault: refuse the frame
            log.warning("node %s: events not journaled: %s", node_id, exc)
            await self._refuse(slot, "bad_events", str(exc))
            return
        # Any other JournalError propagates: relaying what cannot be stored would break exactly-once.
        self.publisher.publish(event_topic(node_id), frame)
        if self.listeners:
            self._tell_listeners(node_id, batch, events)
        status.events += count
        status.event_rate.add(trio.current_time(), count)
        status.last_seq = last
        slot.relayed_seq = last
        self.relayed_events += count
        self._pending_acks[slot] = None  # acked after the current receive batch (ack_pending)

    async def _refuse(self, slot: Slot, code: str, message: str) -> None:
        self.refused_frames += 1
        await self._reply_error(slot.identity, code, message)

    def _tell_listeners(self, node_id: str, batch: EvtBatch, events: list | None) -> None:
        """Hand the relayed events to ``listeners`` (decoding the frame only for them)."""
        if events is None:
            try:
                events = batch.message()["events"]
            except ProtocolError as exc:  # relayed (its envelope was valid), but a body is not
                log.warning(
                    "node %s: events %d..%d not given to listeners: %s", node_id, batch.first, batch.last, exc
                )
                return
        for listener in self.listeners:
            listener(node_id, events)

    # -- acks ------------------------------------------------------------------------------------
    def ackable(self, slot: Slot) -> int:
        """The highest seq ``slot`` may be acked: what it sent that is journaled *and* durable (a
        node keeps, and after a reconnect resends, what is not yet on disk; see FleetJournals)."""
        return self.journals.ackable(slot.node_id, slot.relayed_seq)

    async def ack_pending(self) -> None:
        """After a receive batch: one cumulative ack per child that sent events in it."""
        pending = self._pending_acks
        for slot in list(pending):
            del pending[slot]
            await self.ack(slot)

    async def ack(self, slot: Slot) -> None:
        if slot.node_id is None or slot.exited.is_set():
            return
        seq = self.ackable(slot)
        if seq <= slot.acked_seq:
            return
        try:
            await self._send(slot, messages.ack(slot.node_id, seq))
        except (PeerUnreachableError, zmq.ZMQError):
            return  # it is gone; its exit watcher takes over
        slot.acked_seq = max(slot.acked_seq, seq)

    async def made_durable(self, node_id: str) -> None:
        """``node_id``'s journal was synced: send the ack that waited for it."""
        slot = self._slot_of(node_id)
        if slot is not None and slot.relayed_seq > slot.acked_seq:
            await self.ack(slot)

    async def sync_batch(self) -> None:
        """Under ``batch``: make the journals durable off the loop, then send the acks that waited."""
        for node_id in await self.journals.sync_batch():
            await self.made_durable(node_id)


__all__ = ["EventRelay", "event_topic"]
