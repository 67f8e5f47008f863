"""The wire protocol between the orchestrator and its children: kinds, encoding, strict validation.

Every message is one msgpack map in one ZeroMQ frame, with ``"k"`` (kind) and ``"v"``
(``PROTOCOL_VERSION``). Build messages with the constructors (``hello(...)``, ``evt(...)``, ...),
send ``encode(msg)``, and turn a received frame back into a message with ``decode(frame)``, which
raises ``ProtocolError`` for anything that is not a valid message. The relay uses ``decode_relay``
instead: the same, except that a valid ``evt`` frame comes back as an ``EvtBatch`` (envelope and seq
range checked, events not decoded: they are forwarded as received). The ROUTER's identity frame is
the transport's business and never reaches this package.
"""

from . import kinds
from .codec import EvtBatch, decode, decode_relay, encode
from .errors import ERROR_CODES, ProtocolError
from .limits import MAX_FRAME_BYTES, PROTOCOL_VERSION
from .messages import (
    ack,
    assign,
    bye,
    cmd,
    error,
    error_from,
    evt,
    hb,
    hello,
    prepare,
    reply_error,
    reply_ok,
)
from .schema import validate

__all__ = [
    "ERROR_CODES",
    "EvtBatch",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "ack",
    "assign",
    "bye",
    "cmd",
    "decode",
    "decode_relay",
    "encode",
    "error",
    "error_from",
    "evt",
    "hb",
    "hello",
    "kinds",
    "prepare",
    "reply_error",
    "reply_ok",
    "validate",
]
