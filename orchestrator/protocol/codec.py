"""Bytes <-> validated messages: one msgpack map per ZeroMQ frame.

``decode`` is the trust boundary for everything a peer sends. A hostile frame must not be able to
allocate unboundedly, so the frame size is checked against ``MAX_FRAME_BYTES`` before parsing and
msgpack's ``max_*_len`` limits are set from the frame's own length: a container that declares more
elements than the frame has bytes is refused as ``malformed`` before any list is allocated (msgpack
would otherwise pre-size a list of 2**32 - 1 slots from a 5-byte frame). Nesting depth is bounded by
msgpack's own parser stack. Any failure is a ``ProtocolError``, never another exception.
"""

from __future__ import annotations

import msgpack

from .errors import INVALID_FIELD, MALFORMED, TOO_LARGE, ProtocolError
from .limits import MAX_FRAME_BYTES
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
    receiving side's :func:`decode` validates everything regardless, so a bug here is refused there
    (loudly), never trusted.
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
