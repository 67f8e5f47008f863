"""The CLI <-> orchestrator control protocol: one msgpack map per frame, strictly validated.

A request is ``{"v": 1, "op": <name>, "args": {...}}``; a reply is ``{"v": 1, "ok": true,
"result": ...}`` or ``{"v": 1, "ok": false, "error": {"code": ..., "message": ...}}``. The
DEALER/ROUTER pair keeps one outstanding request per client, so no request id is needed.

Why a separate, tiny protocol rather than the node protocol's ``cmd``: the CLI is another kind
of peer (a person's tool, maybe of another version), its operations are about the fleet rather
than one node, and every failure must come back as a reply the CLI can print, never as silence.
The server validates everything; the client validates replies too, so a version mismatch is a
clear message on either side.
"""

from __future__ import annotations

import msgpack

from orchestrator.protocol.limits import MAX_FRAME_BYTES

CONTROL_VERSION = 1

# op -> {arg name: (python type, required)}
OPS: dict[str, dict[str, tuple[type, bool]]] = {
    "ping": {},
    "status": {},
    "start": {"node": (str, True)},
    "stop": {"node": (str, True)},
    "restart": {"node": (str, True)},
    "down": {},
    "history": {"node": (str, False), "since": (int, False), "limit": (int, False)},
}

# error codes carried in replies
BAD_REQUEST = "bad_request"  # malformed, unknown op, bad args
VERSION = "version"
UNKNOWN_NODE = "unknown_node"
FAILED = "failed"  # the operation was valid but did not succeed (node did not start, ...)
SHUTTING_DOWN = "shutting_down"


class ControlProtocolError(ValueError):
    """A control frame that breaks the protocol; ``code`` is what the peer is told."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def request(op: str, **args) -> dict:
    msg = {"v": CONTROL_VERSION, "op": op, "args": {k: v for k, v in args.items() if v is not None}}
    validate_request(msg)
    return msg


def ok(result) -> dict:
    return {"v": CONTROL_VERSION, "ok": True, "result": result}


def error(code: str, message: str) -> dict:
    return {"v": CONTROL_VERSION, "ok": False, "error": {"code": code, "message": message}}


def encode(msg: dict) -> bytes:
    frame = msgpack.packb(msg, use_bin_type=True)
    if len(frame) > MAX_FRAME_BYTES:
        raise ControlProtocolError(
            BAD_REQUEST, f"control message is {len(frame)} bytes, over {MAX_FRAME_BYTES}; ask for less"
        )
    return frame


def _unpack(frame: bytes) -> dict:
    if len(frame) > MAX_FRAME_BYTES:
        raise ControlProtocolError(BAD_REQUEST, f"frame is {len(frame)} bytes, over {MAX_FRAME_BYTES}")
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=True, max_array_len=len(frame))
    except (ValueError, TypeError) as exc:
        raise ControlProtocolError(BAD_REQUEST, f"not one msgpack value: {type(exc).__name__}") from None
    if type(msg) is not dict:
        raise ControlProtocolError(BAD_REQUEST, f"a control message is a map, got {type(msg).__name__}")
    if msg.get("v") != CONTROL_VERSION:
        raise ControlProtocolError(
            VERSION,
            f"control protocol version {msg.get('v')!r} is not {CONTROL_VERSION}: use the orchestrator "
            "command of the same installation as the running orchestrator",
        )
    return msg


def validate_request(msg: dict) -> dict:
    if set(msg) != {"v", "op", "args"}:
        raise ControlProtocolError(BAD_REQUEST, f"a request has exactly v, op, args; got {sorted(msg)}")
    op, args = msg["op"], msg["args"]
    if type(op) is not str or op not in OPS:
        raise ControlProtocolError(BAD_REQUEST, f"unknown op {op!r}; known: {', '.join(sorted(OPS))}")
    if type(args) is not dict:
        raise ControlProtocolError(BAD_REQUEST, f"{op}: args must be a map")
    schema = OPS[op]
    for name in args:
        if name not in schema:
            raise ControlProtocolError(BAD_REQUEST, f"{op}: unknown argument {name!r}")
    for name, (kind, required) in schema.items():
        if name not in args:
            if required:
                raise ControlProtocolError(BAD_REQUEST, f"{op}: argument {name!r} is required")
            continue
        value = args[name]
        if type(value) is not kind:
            raise ControlProtocolError(
                BAD_REQUEST, f"{op}.{name}: must be {kind.__name__}, got {value!r:.40}"
            )
        if kind is int and value < 0:
            raise ControlProtocolError(BAD_REQUEST, f"{op}.{name}: must be >= 0, got {value}")
    return msg


def decode_request(frame: bytes) -> dict:
    return validate_request(_unpack(frame))


def decode_reply(frame: bytes) -> dict:
    msg = _unpack(frame)
    if msg.get("ok") is True and set(msg) == {"v", "ok", "result"}:
        return msg
    err = msg.get("error")
    if (
        msg.get("ok") is False
        and set(msg) == {"v", "ok", "error"}
        and type(err) is dict
        and type(err.get("code")) is str
        and type(err.get("message")) is str
    ):
        return msg
    raise ControlProtocolError(BAD_REQUEST, f"not a control reply: keys {sorted(msg)}")
