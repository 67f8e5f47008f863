"""The node's stream -> ``evt`` batches for the parent, kept until the parent acks them.

**Numbering.** A node without a state store numbers its stream from 1 on every run; the wire
seq is then ``resume_after + node seq``, so a restarted node (assigned with the last seq the
parent has) keeps the sequence growing. A node with a state store continues its own stored
sequence (``offset=0``), and the child first resends, from the store's outbox, whatever the parent
has not journaled (``orchestrator.child.resend``). ``ts`` is the event's ``ts_event`` when it has one, else the time the
wire event was built (at publish, or when a dict was handed to :meth:`EventOutbox.sink`).

**Packed once, at publish.** The outbox is itself the node's stream sink, in the node's record
form (``node.live.streaming.RecordSink``): the node's streaming port calls
:meth:`EventOutbox.stream_record` at publish time, which builds the wire event
``[seq, ts, topic, type, data]`` and packs it with msgpack right away; the port buffers the pair
``(seq, packed bytes)`` and later hands runs of them to :meth:`EventOutbox.take_records` (or one
to ``outbox(event)``). A frame is then the envelope's bytes, a list header and the packed events
joined: each event is packed once, and nothing of it but an int and a bytes object lives until
the ack (no dict, no list: the cyclic GC, which walked every buffered event, has nothing to walk;
that alone was ~25% of the child's CPU under load, issue #4). An event is what was published:
a dict changed after the publish call does not change it. :meth:`EventOutbox.sink` still takes
the node's ordinary dict, for any other host (and tests).

**Batching without waiting.** Taking events (:meth:`EventOutbox.take_records`, ``outbox(event)``
or :meth:`EventOutbox.sink`, on the kernel loop) only appends and wakes the pump task. The pump sends whatever is waiting, up to
``BATCH_MAX`` events per message, and goes back to sleep when nothing is left: an event is never
held back for a batch to fill. Batches form by themselves under load, because the node's stream
task hands every buffered message to the sink without yielding, and the pump runs after it.

**Kept until acked, bounded.** Every event stays in memory from the sink call until a cumulative
``ack`` covers it (the parent acks once it has journaled the event; a later issue resends what
was never acked). At most ``max_unacked`` events are kept (the port hands a run of at most
:meth:`EventOutbox.record_room` events). When that many are waiting, the sink still stores the
event(s) it was given and then returns an awaitable that the node's stream port
awaits before handing over the next one: the port stops, its buffer fills, and past half full the
node's drain tasks pause (``StreamingPort.wait_room``), so a parent that does not ack slows the
node down to nothing. Nothing is dropped. If the parent never acks at all, the node stalls, its
heartbeat still goes out (the liveness tick does not wait on the stream), and the heartbeat's
``unacked`` counter and ``backpressure_waits`` say why; a parent that is gone is caught by the
parent-heartbeat watchdog. Only if a single kernel step publishes more than the node's stream
buffer holds does the node stop itself with ``StreamOverflow`` (loud, never silent).

**Encoding.** Events are packed without a schema walk on the way out, because every field of
every event is built here (``stream_record``: seq an int that only grows, ts an int >= 0, topic
and type str, data a dict) and the envelope is written here to the ``evt`` schema (the frame is
byte for byte what ``codec.encode_trusted(protocol.evt(...))`` would give); the parent's
``decode`` still validates all of it. What cannot be known in advance is still handled: an event
whose data msgpack cannot carry is packed, at publish, with its ``data`` replaced by a short
explanation (``{"unencodable": ..., "error": ...}``, the ``invalid_field`` error of ``encode``);
a batch whose frame would be over ``MAX_FRAME_BYTES`` is split in halves until it fits, and an
event too large for a frame on its own is sent with its data replaced the same way
(``too_large``). Either is counted in ``events_replaced`` and warned about: the seq is kept, so
the parent sees the event happened and why its payload is missing, rather than a gap.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from operator import itemgetter

import msgpack
import trio

from orchestrator.protocol import ProtocolError, kinds
from orchestrator.protocol.errors import INVALID_FIELD, TOO_LARGE
from orchestrator.protocol.limits import MAX_FRAME_BYTES, PROTOCOL_VERSION

BATCH_MAX = 256
"""Events per ``evt`` message at most (fewer if they would exceed ``MAX_FRAME_BYTES``).

DESIGN §5 measured 64/frame at ~1.7x one/frame. Batches this large form only under a backlog (the
pump sends whatever is waiting); there, 256 instead of 64 cut the child's CPU per event by ~9% and
the orchestrator's by ~30% (bench/relay_throughput.py, issue #4: per-frame costs, the socket send
and the ack in the child, the journal record, publish and ack in the orchestrator)."""

DEFAULT_MAX_UNACKED = 65_536
"""Events kept for the parent at most (~6 s of a node streaming 10k events/s)."""

_REPR_LIMIT = 200


def _array_header(count: int) -> bytes:
    """The msgpack header of a list of ``count`` elements (what every msgpack encoder writes)."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


_ARRAY_HEADERS = tuple(_array_header(n) for n in range(BATCH_MAX + 1))
_packed = itemgetter(1)  # (seq, packed event) -> packed event
_pack_error_types = (TypeError, ValueError, OverflowError)  # what msgpack raises for a value it cannot carry


class InvalidAck(ValueError):
    """An ``ack`` for a seq this child never sent."""


class EventOutbox:
    """Buffer between the node's stream and the socket (see module docstring)."""

    def __init__(
        self,
        node: str,
        incarnation: int,
        resume_after: int,
        max_unacked: int = DEFAULT_MAX_UNACKED,
        warn: Callable[[str], None] | None = None,
        offset: int | None = None,
    ) -> None:
        if type(max_unacked) is not int or max_unacked < 1:
            raise ValueError(f"max_unacked must be an int >= 1, got {max_unacked!r}")
        self.node = node
        self.incarnation = incarnation
        self.max_unacked = max_unacked
        # wire seq = offset + node seq: the parent's last seq for a node that numbers from 1 on
        # every run; 0 for a node with a state store, whose stream continues its stored sequence.
        self._offset = resume_after if offset is None else offset
        self._warn = warn
        # One packer for every event (msgpack's packb would build a Packer per call); only the
        # kernel loop packs, so it is never used by two callers at once.
        self._pack = msgpack.Packer(use_bin_type=True).pack
        # Everything of an evt frame before its events: a 5-entry map whose last key is "events"
        # (the same bytes as packing protocol.evt(node, incarnation, events) up to the list).
        pack = msgpack.Packer(use_bin_type=True).pack
        self._envelope = (
            b"\x85"
            + b"".join(
                pack(x)
                for x in ("k", kinds.EVT, "v", PROTOCOL_VERSION, "node", node, "incarnation", incarnation)
            )
            + pack("events")
        )
        self._unsent: deque[tuple[int, bytes]] = deque()  # packed wire events, not yet sent
        # Sent, waiting for an ack: whole batches (non-empty lists of events in seq order), so a
        # cumulative ack releases a batch per step rather than an event per step.
        self._unacked: deque[list[tuple[int, bytes]]] = deque()
        self._unacked_count = 0  # events in _unacked
        self._sending = False
        self._wake_pump = trio.Event()
        self._room: trio.Event | None = None
        self._progress: trio.Event | None = None  # set on every send and ack
        self.acked_seq = resume_after
        self.last_seq = resume_after  # the newest seq handed to us
        self.sent_seq = resume_after  # the newest seq sent
        self.events_sent = 0
        self.batches_sent = 0
        self.events_replaced = 0
        self.backpressure_waits = 0

    # -- the node's side --------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Events held: not yet sent plus sent but not acked."""
        return len(self._unsent) + self._unacked_count

    def stream_record(self, seq: int, topic: str, type_name: str, data: object) -> tuple[int, bytes]:
        """Wire event ``[seq, ts, topic, type, data]`` for node message ``seq``, packed: ``(seq, bytes)``.

        Called by the node's streaming port on the kernel loop, at publish time; the port buffers
        the pair and hands it back through :meth:`__call__`. The event is built to the ``evt``
        schema and packed here, once (module docstring, *Encoding*): what the pump sends is the
        envelope and these bytes. An event whose data msgpack cannot carry is packed with its data
        replaced (``events_replaced``): this never raises for that. (One too large for a frame on
        its own is replaced by the pump, which is where the frame's size is known.)
        """
        if type(data) is not dict:
            data = {"value": data}
        ts = data.get("ts_event")
        if type(ts) is not int or ts < 0:
            ts = time.time_ns()
        seq += self._offset
        try:
            return seq, self._pack((seq, ts, topic, type_name, data))
        except _pack_error_types as exc:
            why = ProtocolError(INVALID_FIELD, f"{kinds.EVT}: a value cannot be encoded as msgpack: {exc}")
            return seq, self._replaced(seq, ts, topic, type_name, data, why)

    def _replaced(
        self, seq: int, ts: int, topic: str, type_name: str, data: dict, exc: ProtocolError
    ) -> bytes:
        """The packed event with ``data`` replaced by why it cannot be sent (the seq is kept)."""
        text = repr(data)
        if len(text) > _REPR_LIMIT:
            text = text[: _REPR_LIMIT - 3] + "..."
        self.events_replaced += 1
        if self._warn is not None:
            self._warn(f"event seq {seq} ({type_name} on {topic}) sent without its data: {exc}")
        return self._pack((seq, ts, topic, type_name, {"unencodable": text, "error": str(exc)}))

    def __call__(self, event: tuple[int, bytes]):
        """Take one packed wire event from :meth:`stream_record` (the node calls this, in seq order).

        Returns None, or (buffer full) an awaitable the stream port awaits; see module docstring.
        """
        unsent = self._unsent
        if not unsent:
            # The pump sleeps only after finding _unsent empty, so waking it when the deque goes
            # from empty to non-empty is enough; no per-event Event.set().
            self._wake_pump.set()
        unsent.append(event)
        self.last_seq = event[0]
        if len(unsent) + self._unacked_count >= self.max_unacked:
            return self._wait_room()
        return None

    def take_records(self, events: list[tuple[int, bytes]]):
        """Take a run of packed wire events, in seq order: :meth:`__call__` for each, in one call.

        The node's stream port hands what it has buffered this way (``RecordSink.take_records``),
        never more at once than :meth:`record_room` said, so at most ``max_unacked`` events are
        held, as with one call per event. Returns None, or (buffer full) an awaitable to await.
        """
        unsent = self._unsent
        if not unsent:
            self._wake_pump.set()
        unsent.extend(events)
        self.last_seq = events[-1][0]
        if len(unsent) + self._unacked_count >= self.max_unacked:
            return self._wait_room()
        return None

    def record_room(self) -> int:
        """How many events :meth:`take_records` takes before the buffer is full (``RecordSink``)."""
        return self.max_unacked - len(self._unsent) - self._unacked_count

    def sink(self, item: dict):
        """The node's ordinary stream sink: ``{"seq", "topic", "type", "data"}`` -> one wire event.

        For hosts that hand the node's dicts; the child itself uses the record form (``outbox`` as
        the sink). Returns None, or (buffer full) an awaitable to await; see module docstring.

        The dict comes from outside this module, so its fields are checked here (``ValueError``):
        the pump packs events without re-validating them.
        """
        seq, topic, type_name = item["seq"], item["topic"], item["type"]
        if type(seq) is not int or self._offset + seq <= self.last_seq:
            raise ValueError(f"stream seq must be an int above {self.last_seq - self._offset}, got {seq!r}")
        if type(topic) is not str or type(type_name) is not str:
            raise ValueError(f"stream topic and type must be str, got {topic!r} and {type_name!r}")
        return self(self.stream_record(seq, topic, type_name, item["data"]))

    async def _wait_room(self) -> None:
        self.backpressure_waits += 1
        while self.buffered >= self.max_unacked:
            if self._room is None:
                self._room = trio.Event()
            await self._room.wait()

    # -- the parent's side ------------------------------------------------------------------------

    def ack(self, seq: int) -> int:
        """Cumulative ack: forget every sent event up to ``seq``; return how many were released.

        An ack at or below what was already acked is harmless (a duplicate); an ack beyond what
        was sent raises :class:`InvalidAck` and changes nothing.
        """
        if seq > self.sent_seq:
            raise InvalidAck(
                f"ack for seq {seq} of node {self.node!r}, but only up to {self.sent_seq} was sent"
            )
        released = 0
        unacked = self._unacked
        while unacked:
            batch = unacked[0]
            if batch[-1][0] <= seq:  # the whole batch is acked
                unacked.popleft()
                released += len(batch)
                continue
            if batch[0][0] <= seq:  # part of it (a batch sent as several frames): drop that part
                acked = 1
                while batch[acked][0] <= seq:
                    acked += 1
                del batch[:acked]
                released += acked
            break
        self._unacked_count -= released
        if seq > self.acked_seq:
            self.acked_seq = seq
        if released:
            room = self._room
            if room is not None and self.buffered < self.max_unacked:
                self._room = None
                room.set()
            self._notify_progress()
        return released

    @property
    def all_acked(self) -> bool:
        return self.acked_seq >= self.last_seq

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent and no batch is being sent."""
        return not self._unsent and not self._sending

    async def wait_idle(self) -> None:
        """Return once every event handed to the sink so far has been sent."""
        while not self.idle:
            await self._wait_progress()

    async def wait_all_acked(self) -> None:
        """Return once the parent has acked every event handed to the sink so far."""
        while not self.all_acked:
            await self._wait_progress()

    async def _wait_progress(self) -> None:
        if self._progress is None:
            self._progress = trio.Event()
        await self._progress.wait()

    def _notify_progress(self) -> None:
        progress = self._progress
        if progress is not None:
            self._progress = None
            progress.set()

    # -- the pump ---------------------------------------------------------------------------------

    async def pump(self, send_frame: Callable[[bytes], object]) -> None:
        """Send everything that arrives, forever (run as a task; cancel to stop).

        ``send_frame`` is an async callable that sends one encoded frame to the parent.
        """
        unsent = self._unsent
        popleft = unsent.popleft
        while True:
            if not unsent:
                self._wake_pump = trio.Event()
                self._notify_progress()
                await self._wake_pump.wait()
                continue
            if len(unsent) <= BATCH_MAX:
                batch = list(unsent)
                unsent.clear()
            else:
                batch = [popleft() for _ in range(BATCH_MAX)]
            self._unacked.append(batch)
            self._unacked_count += len(batch)
            self._sending = True
            try:
                for frame, last_seq, events in self._frames(batch):
                    # Recorded before the await: the parent's ack for this frame may be
                    # processed as soon as the send yields, and must not look premature.
                    self.sent_seq = last_seq
                    await send_frame(frame)
                    self.events_sent += events
                    self.batches_sent += 1
            finally:
                self._sending = False

    def _frames(self, batch: list[tuple[int, bytes]]) -> list[tuple[bytes, int, int]]:
        """``(frame, last seq, event count)`` per message: normally one, more if over the size limit.

        The frame is the envelope, the list header and the events as packed by :meth:`stream_record`:
        the bytes ``codec.encode_trusted(protocol.evt(node, incarnation, events))`` would give.
        """
        parts = [self._envelope, _ARRAY_HEADERS[len(batch)]]
        parts += map(_packed, batch)
        frame = b"".join(parts)
        if len(frame) <= MAX_FRAME_BYTES:
            return [(frame, batch[-1][0], len(batch))]
        if len(batch) > 1:
            half = len(batch) // 2
            return self._frames(batch[:half]) + self._frames(batch[half:])
        # One event too large for a frame on its own: sent with its data replaced (seq kept).
        seq, packed = batch[0]
        _, ts, topic, type_name, data = msgpack.unpackb(packed, raw=False, strict_map_key=False)
        why = ProtocolError(
            TOO_LARGE,
            f"{kinds.EVT} message is {len(frame)} bytes, over MAX_FRAME_BYTES={MAX_FRAME_BYTES}: split it "
            "(e.g. fewer events per batch) or shrink the payload",
        )
        batch[0] = (seq, self._replaced(seq, ts, topic, type_name, data, why))
        return self._frames(batch)

    def stats(self) -> dict[str, int]:
        return {
            "events_sent": self.events_sent,
            "batches_sent": self.batches_sent,
            "last_seq": self.last_seq,
            "sent_seq": self.sent_seq,
            "acked_seq": self.acked_seq,
            "unacked": self.buffered,
            "events_replaced": self.events_replaced,
            "backpressure_waits": self.backpressure_waits,
        }


__all__ = ["BATCH_MAX", "DEFAULT_MAX_UNACKED", "EventOutbox", "InvalidAck"]
