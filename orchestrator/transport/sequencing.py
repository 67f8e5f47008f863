"""Sequence numbers on the event PUB, so that a subscriber can see what it missed.

The event PUB is a plain PUB on purpose: at the high-water mark it drops messages for the slow
subscriber instead of blocking, because a dashboard that stops reading must never stall the
nodes (``XPUB_NODROP`` would push back on the relay, and from there on every node). The price is
silent loss, so every published message carries its stream's position:

    frames = [topic, header, payload...]      header = struct ">QQ" (epoch, seq)

- ``seq`` counts messages per topic (one stream per topic, 1, 2, 3, ...), so a subscriber that
  subscribed to some topics only still sees a contiguous sequence for each of them;
- ``epoch`` is random per publisher, so a restarted orchestrator (whose counters start again at 1)
  is recognised as a new stream rather than as a huge gap or a replay.

The payload frames are passed through untouched, which lets the relay forward an ``evt`` frame
received from a node without re-encoding it. Gaps are for detection only: a subscriber that must
not miss anything replays from the journal (``events --since SEQ``).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import zmq

from .errors import TransportError

_HEADER = struct.Struct(">QQ")
HEADER_BYTES = _HEADER.size


class SequenceHeaderError(TransportError, ValueError):
    """A PUB message whose second frame is not a 16-byte (epoch, seq) header."""


def pack_header(epoch: int, seq: int) -> bytes:
    return _HEADER.pack(epoch, seq)


def unpack_header(header: bytes) -> tuple[int, int]:
    """``(epoch, seq)`` from a header frame; ``SequenceHeaderError`` if it is not one."""
    if len(header) != HEADER_BYTES:
        raise SequenceHeaderError(
            f"sequence header must be {HEADER_BYTES} bytes, got {len(header)}: is the publisher a "
            "SequencedPublisher of the same orchestrator version?"
        )
    return _HEADER.unpack(header)


class SequencedPublisher:
    """Publishes on a PUB socket with a per-topic sequence number; never blocks, never waits.

    ``publish`` is synchronous: a plain PUB never raises ``Again`` (it drops at the HWM), so there
    is nothing to wait for and no reason to yield. Counters are kept per topic for the life of the
    publisher; topics are node ids and the orchestrator's own stream, so they stay few.
    """

    def __init__(self, sock: zmq.Socket, *, epoch: int | None = None) -> None:
        if sock.type != zmq.PUB:
            raise TransportError("SequencedPublisher needs a PUB socket (see sockets.event_pub)")
        self._sock = sock
        self.epoch = epoch if epoch is not None else int.from_bytes(os.urandom(8), "big")
        self._last: dict[bytes, int] = {}
        self.published = 0

    def publish(self, topic: bytes, *payload: bytes) -> int:
        """Send ``[topic, header, *payload]`` and return the message's sequence number in its topic."""
        seq = self._last.get(topic, 0) + 1
        self._last[topic] = seq
        self._sock.send_multipart([topic, _HEADER.pack(self.epoch, seq), *payload], zmq.NOBLOCK)
        self.published += 1
        return seq


@dataclass
class _Stream:
    epoch: int
    seq: int


@dataclass
class GapDetector:
    """Subscriber side: feed it each message's topic and header; it says how many were missed.

    The first message of a topic (or of a new epoch) is never a gap: a subscriber that joins late
    starts wherever the stream is. ``missed`` is the running total over all topics.
    """

    missed: int = 0
    _streams: dict[bytes, _Stream] = field(default_factory=dict)

    def observe(self, topic: bytes, header: bytes) -> int:
        """Messages lost in ``topic`` just before this one (0 if none)."""
        epoch, seq = unpack_header(header)
        stream = self._streams.get(topic)
        if stream is None or stream.epoch != epoch:
            self._streams[topic] = _Stream(epoch, seq)
            return 0
        gap = seq - stream.seq - 1
        stream.seq = seq
        if gap > 0:
            self.missed += gap
            return gap
        return 0
