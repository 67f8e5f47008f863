"""Subscribing to a running orchestrator's events (the PUB socket), with gap detection.

Two kinds of messages arrive: node events, topic ``evt.<node>``, whose payload is the node's
``evt`` frame as the child sent it (``events`` is a list of ``[seq, ts_ns, topic, type, data]``
with the node's own sequence numbers), and the orchestrator's own node state changes, topic
``orchestrator`` (a map: node, state, incarnation, pid, restarts, reason...). The PUB never
waits for a slow subscriber: it drops, and ``missed`` counts what this subscriber lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from orchestrator.protocol import ProtocolError, codec
from orchestrator.transport.options import new_context
from orchestrator.transport.sequencing import GapDetector
from orchestrator.transport.sockets import event_sub
from orchestrator.transport.trio_socket import TrioSocket

ORCHESTRATOR_TOPIC = b"orchestrator"
NODE_TOPIC_PREFIX = b"evt."


@dataclass(frozen=True)
class Published:
    topic: str
    missed_before: int  # messages of this topic lost just before this one
    message: dict

    @property
    def node(self) -> str:
        return self.message["node"]


class EventSubscriber:
    """``async for item in EventSubscriber(endpoint, nodes=["a"])`` (or ``await next_event()``)."""

    def __init__(self, endpoint: str, *, nodes: list[str] | None = None, orchestrator_events: bool = True):
        topics = (
            (NODE_TOPIC_PREFIX,) if nodes is None else tuple(NODE_TOPIC_PREFIX + n.encode() for n in nodes)
        )
        if orchestrator_events:
            topics += (ORCHESTRATOR_TOPIC,)
        self._ctx = new_context()
        self._sock = TrioSocket(event_sub(self._ctx, endpoint, topics=topics))
        self._gaps = GapDetector()
        self.invalid = 0  # node frames skipped because their events did not validate
        self.last_invalid = ""

    @property
    def missed(self) -> int:
        return self._gaps.missed

    async def next_event(self) -> Published:
        """The next message. A node frame whose events fail validation is skipped and counted in
        ``invalid`` (the relay forwards event bodies as the node sent them; see
        ``protocol.codec.decode_relay``): one bad frame must not end a subscription."""
        while True:
            topic, header, payload = await self._sock.recv_multipart()
            missed = self._gaps.observe(topic, header)
            if not topic.startswith(NODE_TOPIC_PREFIX):
                return Published(topic.decode(), missed, msgpack.unpackb(payload))
            try:
                message = codec.decode(payload)
            except ProtocolError as exc:
                self.invalid += 1
                self.last_invalid = f"{topic.decode()}: {exc}"
                continue
            return Published(topic.decode(), missed, message)

    def __aiter__(self):
        return self

    async def __anext__(self) -> Published:
        return await self.next_event()

    async def aclose(self) -> None:
        await self._sock.aclose()
        self._ctx.term()

    async def __aenter__(self) -> EventSubscriber:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
