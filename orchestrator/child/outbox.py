"""The node's stream -> ``evt`` batches for the parent, kept until the parent acks them.

**Numbering.** A node without a state store numbers its stream from 1 on every run; the wire
seq is then ``resume_after + node seq``, so a restarted node (assigned with the last seq the
parent has) keeps the sequence growing. A node with a state store continues its own stored
sequence (``offset=0``), and the child first resends, from the store's outbox, whatever the parent
has not journaled (``orchestrator.child.resend``). ``ts`` is the event's ``ts_event`` when it has one, else the time the
wire event was built (at publish, or when a dict was handed to :meth:`EventOutbox.sink`).

**One object per event.** The outbox is itself the node's stream sink, in the node's record form
(``node.live.streaming.RecordSink``): the node's streaming port calls :meth:`EventOutbox.stream_record`
at publish time, buffers the wire event list it returns (``[seq, ts, topic, type, data]``) and
later hands that same list to the outbox (``outbox(event)``). So each event is one list from
publish to socket, instead of a dict that the outbox then copies into a list. :meth:`EventOutbox.sink`
still takes the node's ordinary dict, for any other host (and tests).

**Batching without waiting.** Taking an event (``outbox(event)`` or :meth:`EventOutbox.sink`, on
the kernel loop) only appends and wakes the pump task. The pump sends whatever is waiting, up to
``BATCH_MAX`` events per message, and goes back to sleep when nothing is left: an event is never
held back for a batch to fill. Batches form by themselves under load, because the node's stream
task hands every buffered message to the sink without yielding, and the pump runs after it.

**Kept until acked, bounded.** Every event stays in memory from the sink call until a cumulative
``ack`` covers it (the parent acks once it has journaled the event; a later issue resends what
was never acked). At most ``max_unacked`` events are kept. When that many are waiting, the sink
still stores the event it was given and then returns an awaitable that the node's stream port
awaits before handing over the next one: the port stops, its buffer fills, and past half full the
node's drain tasks pause (``StreamingPort.wait_room``), so a parent that does not ack slows the
node down to nothing. Nothing is dropped. If the parent never acks at all, the node stalls, its
heartbeat still goes out (the liveness tick does not wait on the stream), and the heartbeat's
``unacked`` counter and ``backpressure_waits`` say why; a parent that is gone is caught by the
parent-heartbeat watchdog. Only if a single kernel step publishes more than the node's stream
buffer holds does the node stop itself with ``StreamOverflow`` (loud, never silent).

**Encoding.** A batch is packed with ``codec.encode_trusted``: no schema walk of the events on the
way out, because every field of every event is built here (``stream_record``: seq an int that
only grows, ts an int >= 0, topic and type str, data a dict) and the envelope by ``protocol.evt``;
the parent's ``decode`` still validates all of it. What cannot be known in advance (data msgpack
cannot carry, a frame over the size limit) is still refused as by ``encode``. If it is refused (over
``MAX_FRAME_BYTES``, or an event's data that msgpack cannot carry), it is split in halves until
the offending event stands alone. An event too large or unencodable on its own is sent with its
``data`` replaced by a short explanation (``{"unencodable": ..., "error": ...}``) and counted in
``events_replaced``: the seq is kept, so the parent sees the event happened and why its payload
is missing, rather than a gap.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import trio

from orchestrator.protocol import ProtocolError, evt
from orchestrator.protocol.codec import encode_trusted

BATCH_MAX = 64
"""Events per ``evt`` message at most (DESIGN §5 measured 64/frame at ~1.7x one/frame)."""

DEFAULT_MAX_UNACKED = 65_536
"""Events kept for the parent at most (~6 s of a node streaming 10k events/s)."""

_REPR_LIMIT = 200


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
        self._unsent: deque[list] = deque()  # wire events, not yet sent
        # Sent, waiting for an ack: whole batches (non-empty lists of events in seq order), so a
        # cumulative ack releases a batch per step rather than an event per step.
        self._unacked: deque[list[list]] = deque()
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

    def stream_record(self, seq: int, topic: str, type_name: str, data: object) -> list:
        """The wire event ``[seq, ts, topic, type, data]`` for node message ``seq`` (fast path).

        Called by the node's streaming port on the kernel loop, at publish time; the port buffers
        the list and hands it back through :meth:`__call__`. The event is built to the ``evt``
        schema here, which is what lets the pump skip re-validating it (module docstring).
        """
        if type(data) is not dict:
            data = {"value": data}
        ts = data.get("ts_event")
        if type(ts) is not int or ts < 0:
            ts = time.time_ns()
        return [self._offset + seq, ts, topic, type_name, data]

    def __call__(self, event: list):
        """Take one wire event built by :meth:`stream_record` (the node calls this, in seq order).

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
                popleft = unsent.popleft
                batch = [popleft() for _ in range(BATCH_MAX)]
            self._unacked.append(batch)
            self._unacked_count += len(batch)
            self._sending = True
            try:
                for frame, last_seq, events in self._encode(batch):
                    # Recorded before the await: the parent's ack for this frame may be
                    # processed as soon as the send yields, and must not look premature.
                    self.sent_seq = last_seq
                    await send_frame(frame)
                    self.events_sent += events
                    self.batches_sent += 1
            finally:
                self._sending = False

    def _encode(self, batch: list[list]) -> list[tuple[bytes, int, int]]:
        """``(frame, last seq, event count)`` per message: normally one, more if split."""
        try:
            return [(encode_trusted(evt(self.node, self.incarnation, batch)), batch[-1][0], len(batch))]
        except ProtocolError as exc:
            if len(batch) > 1:
                half = len(batch) // 2
                return self._encode(batch[:half]) + self._encode(batch[half:])
            return [(self._encode_replaced(batch[0], exc), batch[0][0], 1)]

    def _encode_replaced(self, event: list, exc: ProtocolError) -> bytes:
        text = repr(event[4])
        if len(text) > _REPR_LIMIT:
            text = text[: _REPR_LIMIT - 3] + "..."
        event[4] = {"unencodable": text, "error": str(exc)}
        self.events_replaced += 1
        if self._warn is not None:
            self._warn(f"event seq {event[0]} ({event[3]} on {event[2]}) sent without its data: {exc}")
        return encode_trusted(evt(self.node, self.incarnation, [event]))

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
