"""Bytes <-> validated messages: one msgpack map per ZeroMQ frame.

``decode`` is the trust boundary for everything a peer sends. A hostile frame must not be able to
allocate unboundedly, so the frame size is checked against ``MAX_FRAME_BYTES`` before parsing and
msgpack's ``max_*_len`` limits are set from the frame's own length: a container that declares more
elements than the frame has bytes is refused as ``malformed`` before any list is allocated (msgpack
would otherwise pre-size a list of 2**32 - 1 slots from a 5-byte frame). Nesting depth is bounded by
msgpack's own parser stack. Any failure is a ``ProtocolError``, never another exception.

``decode_relay`` is the orchestrator's variant for its hot path: an ``evt`` frame's envelope, seqs
and msgpack well-formedness are checked without decoding its events, which the relay forwards as
received (the boundary is spelled out on the function); every other frame goes through ``decode``.
"""

from __future__ import annotations

import msgpack

from . import kinds
from .errors import INVALID_FIELD, MALFORMED, TOO_LARGE, ProtocolError
from .limits import MAX_FRAME_BYTES, PROTOCOL_VERSION
from .schema import validate


def encode(msg: dict) -> bytes:
    """Validate ``msg`` and pack it; raise ``ProtocolError`` rather than send what the peer would refuse.

    Refusing an oversized message here matters: the receiving socket's ``MAXMSGSIZE`` would drop
    the whole connection (and everything queued behind the frame), not just the one message.
    """
    validate(msg)
    return encode_trusted(msg)


def encode_trusted(msg: dict) -> bytes:
    """Pack a message *this process built itself* without re-validating it: the outbound fast path.

    Why it exists: a child streams a few 10^5 events/s, and ``validate`` walks every event of every
    ``evt`` batch although the child's own code (``messages.evt`` over events built by
    ``child.outbox``) made them to the schema by construction: measured on a 64-event batch,
    ``encode`` takes ~0.49 us/event, this ~0.30 (issue #4). Only the schema walk is skipped. What the caller cannot
    know in advance is still checked, with the same errors as :func:`encode`: a value msgpack cannot
    carry (``INVALID_FIELD``) and a frame over ``MAX_FRAME_BYTES`` (``TOO_LARGE``).

    Never pass anything that came from a peer, a user or a config file: use :func:`encode`. The
    orchestrator's :func:`decode_relay` checks every frame's envelope and seqs and its subscribers'
    :func:`decode` validates every event, so a bug here is refused there (loudly), never trusted.
    """
    try:
        frame = msgpack.packb(msg, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(
            INVALID_FIELD, f"{msg['k']}: a value cannot be encoded as msgpack: {exc}"
        ) from None
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(
            TOO_LARGE,
            f"{msg['k']} message is {len(frame)} bytes, over MAX_FRAME_BYTES={MAX_FRAME_BYTES}: split it "
            "(e.g. fewer events per batch) or shrink the payload",
        )
    return frame


def decode(frame: bytes | bytearray | memoryview) -> dict:
    """Parse and validate one frame; raise ``ProtocolError`` (with ``.code``) if it is not a valid message."""
    size = len(frame)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(TOO_LARGE, f"frame is {size} bytes, over MAX_FRAME_BYTES={MAX_FRAME_BYTES}")
    try:
        msg = msgpack.unpackb(
            frame,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=size,
            max_bin_len=size,
            max_ext_len=size,
            max_array_len=size,
            max_map_len=size // 2,
        )
    except ValueError as exc:
        # msgpack's ExtraData, FormatError, StackError, incomplete input, limit and UTF-8 errors
        # are all ValueError subclasses; several have an empty message, so name the class too.
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ProtocolError(MALFORMED, f"frame is not one valid msgpack value ({detail})") from None
    return validate(msg)


# -- the relay's evt fast path ------------------------------------------------------------------


class EvtBatch:
    """An ``evt`` frame accepted by :func:`decode_relay`: its envelope and seq range, events undecoded.

    ``frame`` is the frame as received (what the relay journals and publishes); ``first`` and
    ``last`` are the seqs of its first and last event and ``count`` the number of events: the first
    seq and the count are read from the frame and checked, and ``last = first + count - 1`` (seqs
    are consecutive within a batch). :meth:`message` decodes and validates the whole frame, for the
    rare caller that needs the events themselves.
    """

    __slots__ = ("node", "incarnation", "first", "last", "count", "frame", "_message")

    def __init__(
        self,
        node: str,
        incarnation: int,
        first: int,
        last: int,
        count: int,
        frame: bytes,
        message: dict | None = None,
    ) -> None:
        self.node = node
        self.incarnation = incarnation
        self.first = first
        self.last = last
        self.count = count
        self.frame = frame
        self._message = message

    def message(self) -> dict:
        """The whole message, through :func:`decode` (raises ``ProtocolError`` for a bad event body)."""
        if self._message is None:
            self._message = decode(self.frame)
        return self._message

    def __repr__(self) -> str:
        return (
            f"EvtBatch(node={self.node!r}, incarnation={self.incarnation}, seqs {self.first}..{self.last}, "
            f"{self.count} events, {len(self.frame)} bytes)"
        )


def decode_relay(frame: bytes | bytearray | memoryview) -> dict | EvtBatch:
    """:func:`decode` for the relay: a valid ``evt`` frame comes back as an :class:`EvtBatch`.

    Why: the orchestrator forwards an ``evt`` frame untouched (journaled and published as received),
    so building and schema-walking its events is wasted work on the hot path. What it checks costs
    the same Python work for 1 event as for 256 (the per-event part is msgpack's C parser): on a
    64-event frame ~2x less than checking each event's seq in Python, ~7x less than ``decode``
    (``bench/relay_throughput.py`` prints both; issue #4). What it checks, without building events:

    - everything :func:`decode` checks about the frame and the envelope: size, one msgpack map and
      nothing after it, exactly the keys ``k v node incarnation events``, ``v`` the protocol
      version, ``node`` a non-empty str, ``incarnation`` an int >= 1, ``events`` a non-empty list;
    - the first event is a list of 5 whose seq (first element) is an int >= 1; with the list's
      count this gives every seq (consecutive within a batch, the protocol's rule): the journal's
      keys and the acks come from ``first``, ``last`` and ``count``;
    - the whole frame is well-formed msgpack, every byte of it: the event list is skipped by
      msgpack's own parser (bounded by the frame, no object built), so a truncated or garbled body
      is refused.

    What it does **not** check (the relay does not interpret it; a subscriber's :func:`decode` does):
    the shape and seq of each event after the first, the type of each event's ``ts``, ``topic``,
    ``type`` and ``data``, the UTF-8 of strings inside them and the key types of maps inside
    ``data``. A frame with such an odd body but a valid envelope is relayed and journaled as
    received, under the seqs its envelope and first event declare: the relay's own bookkeeping
    (journal keys, acks, duplicates) stays consistent whatever a child puts after them.

    Anything this fast scan does not recognise as a valid ``evt`` (every other kind, every invalid
    frame, and valid but unusual encodings such as a seq packed as a signed int) goes through
    :func:`decode`, so errors are exactly ``decode``'s and nothing ``decode`` accepts is refused.
    Other kinds come back as the validated dict.
    """
    batch = _scan_evt(frame)
    if batch is not None:
        return batch
    msg = decode(frame)
    if msg["k"] == kinds.EVT:  # valid, but not in the shape the scan expects (rare)
        events = msg["events"]
        return EvtBatch(msg["node"], msg["incarnation"], events[0][0], events[-1][0], len(events), frame, msg)
    return msg


_EVT_KEYS = frozenset({"k", "v", "node", "incarnation", "events"})
_FIXMAP_5 = 0x85  # how every encoder writes a 5-entry map
_FIXARRAY_5 = 0x95  # ... and a 5-element list
_from_bytes = int.from_bytes
_UINT64_MAX = 2**64 - 1


def _scan_evt(frame) -> EvtBatch | None:
    """The fast check of :func:`decode_relay`; None if the frame is not a valid ``evt`` of the usual shape.

    None never means "invalid", only "not sure": the caller then runs the full :func:`decode`.
    """
    size = len(frame)
    if size > MAX_FRAME_BYTES or size == 0 or frame[0] != _FIXMAP_5:
        return None
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        max_buffer_size=size,
        max_str_len=size,
        max_bin_len=size,
        max_ext_len=size,
        max_array_len=size,
        max_map_len=size // 2,
    )
    try:
        unpacker.feed(frame)
        unpacker.read_map_header()
        unpack = unpacker.unpack
        envelope = {}
        first = last = count = 0
        for _ in range(5):
            key = unpack()
            if key in envelope or key not in _EVT_KEYS:
                return None
            if key != "events":
                envelope[key] = unpack()
                continue
            envelope[key] = None
            # The list header and the first event's seq are read straight from the bytes; the
            # whole list is then skipped by msgpack's own parser in one call (parsing every byte
            # of it, building nothing). Seqs are consecutive within a batch (the protocol's rule),
            # so the first seq and the count give every seq: no Python work per event.
            at = unpacker.tell()
            head = frame[at]
            if 0x90 <= head <= 0x9F:  # fixarray
                count, at = head & 0x0F, at + 1
            elif head == 0xDC:  # array 16
                count, at = _from_bytes(frame[at + 1 : at + 3]), at + 3
            elif head == 0xDD:  # array 32
                count, at = _from_bytes(frame[at + 1 : at + 5]), at + 5
            else:
                return None
            if not 0 < count < size or frame[at] != _FIXARRAY_5:  # an event takes at least 6 bytes
                return None
            head = frame[at + 1]
            if head < 0x80:  # positive fixint
                first = head
            elif head == 0xCC:  # uint 8
                first = frame[at + 2]
            elif head == 0xCD:  # uint 16
                first = _from_bytes(frame[at + 2 : at + 4])
            elif head == 0xCE:  # uint 32
                first = _from_bytes(frame[at + 2 : at + 6])
            elif head == 0xCF:  # uint 64
                first = _from_bytes(frame[at + 2 : at + 10])
            else:
                return None
            last = first + count - 1
            if first < 1 or last > _UINT64_MAX:  # decode explains (the second event's seq cannot be)
                return None
            unpacker.skip()
        if unpacker.tell() != size:  # trailing bytes after the map
            return None
    except Exception:  # noqa: BLE001 - any doubt at all: the full decode decides and explains
        return None
    version = envelope["v"]
    node = envelope["node"]
    incarnation = envelope["incarnation"]
    if (
        envelope["k"] != kinds.EVT
        or type(version) is not int
        or version != PROTOCOL_VERSION
        or type(node) is not str
        or not node
        or type(incarnation) is not int
        or incarnation < 1
    ):
        return None
    return EvtBatch(node, incarnation, first, last, count, frame)
