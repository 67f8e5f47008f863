"""The wire protocol between the orchestrator and its children: kinds, encoding, strict validation.

Every message is one msgpack map in one ZeroMQ frame, with ``"k"`` (kind) and ``"v"``
(``PROTOCOL_VERSION``). Build messages with the constructors (``hello(...)``, ``evt(...)``, ...),
send ``encode(msg)``, and turn a received frame back into a message with ``decode(frame)``, which
raises ``ProtocolError`` for anything that is not a valid message. The ROUTER's identity frame is
the transport's business and never reaches this package.
"""

from . import kinds
from .codec import decode, encode
from .errors import ERROR_CODES, ProtocolError
from .limits import MAX_FRAME_BYTES, PROTOCOL_VERSION
from .messages import ack, assign, bye, cmd, error, error_from, evt, hb, hello, reply_error, reply_ok
from .schema import validate

__all__ = [
    "ERROR_CODES",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "ack",
    "assign",
    "bye",
    "cmd",
    "decode",
    "encode",
    "error",
    "error_from",
    "evt",
    "hb",
    "hello",
    "kinds",
    "reply_error",
    "reply_ok",
    "validate",
]
