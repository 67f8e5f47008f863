"""Constructors: one plain function per kind, returning the dict that ``encode`` sends.

They only assemble fields; validation happens in ``encode`` (sender) and ``decode`` (receiver),
through the same ``schema.validate``. A constructor called with a wrong type therefore fails at
the sender, with the very ``ProtocolError`` the receiver would have raised. One exception: the
child's event outbox packs the ``evt`` batches it built itself with ``encode_trusted`` (no
schema pass on the hot path); the parent's ``decode_relay`` checks each frame's envelope and
seqs, and a subscriber's ``decode`` validates every event. Parameters
are named after the wire fields, ``id`` included, although it shadows the builtin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import kinds
from .errors import ProtocolError
from .limits import PROTOCOL_VERSION

V = PROTOCOL_VERSION


def hello(slot: str, pid: int, spare: bool) -> dict:
    """Child -> parent, first message: which slot this process is, its pid, whether it is a spare."""
    return {"k": kinds.HELLO, "v": V, "slot": slot, "pid": pid, "spare": spare}


def assign(node: str, incarnation: int, config: Mapping, resume_after: int, after_pid: int = 0) -> dict:
    """Parent -> child: become ``node`` (incarnation >= 1); resend events after seq ``resume_after``.

    ``after_pid``: the process this child replaces, killed as hung or crashed, and possibly still
    being torn down by the kernel; the child takes the node's state store only once it has ended
    (0: none).
    """
    return {
        "k": kinds.ASSIGN,
        "v": V,
        "node": node,
        "incarnation": incarnation,
        "config": config,
        "resume_after": resume_after,
        "after_pid": after_pid,
    }


def prepare(nodes: Mapping[str, Mapping]) -> dict:
    """Parent -> spare: the configs (each as ``assign.config``) of the nodes it may be assigned.

    Not sent on the socket: the parent writes it once to a file that each spare reads before its
    hello (``--prepare``; ``orchestrator.child.prepared``), validated like any message.
    """
    return {"k": kinds.PREPARE, "v": V, "nodes": dict(nodes)}


def cmd(id: str, node: str, name: str, args: Mapping) -> dict:
    """Parent -> child: run command ``name``; the reply carries the same ``id``."""
    return {"k": kinds.CMD, "v": V, "id": id, "node": node, "name": name, "args": args}


def reply_ok(id: str, result: Any) -> dict:
    """Child -> parent: command ``id`` succeeded with ``result`` (any msgpack value)."""
    return {"k": kinds.REPLY, "v": V, "id": id, "ok": True, "result": result}


def reply_error(id: str, error: str) -> dict:
    """Child -> parent: command ``id`` failed; ``error`` says why."""
    return {"k": kinds.REPLY, "v": V, "id": id, "ok": False, "error": error}


def evt(node: str, incarnation: int, events: Sequence[Sequence]) -> dict:
    """Child -> parent: a batch of ``[seq, ts_ns, topic, type, data]``, seqs consecutive."""
    return {"k": kinds.EVT, "v": V, "node": node, "incarnation": incarnation, "events": events}


def ack(node: str, seq: int) -> dict:
    """Parent -> child: every event of ``node`` up to ``seq`` is journaled (cumulative)."""
    return {"k": kinds.ACK, "v": V, "node": node, "seq": seq}


def hb(ts: int, state: str, counters: Mapping[str, int]) -> dict:
    """Both ways: heartbeat with the sender's clock, state and counters."""
    return {"k": kinds.HB, "v": V, "ts": ts, "state": state, "counters": counters}


def bye(reason: str, code: int) -> dict:
    """Child -> parent: the child is leaving, with the exit code it will use."""
    return {"k": kinds.BYE, "v": V, "reason": reason, "code": code}


def error(code: str, message: str, ref: str | None = None) -> dict:
    """Both ways: the previous message could not be used; ``ref`` names it (e.g. a cmd id)."""
    return {"k": kinds.ERROR, "v": V, "code": code, "message": message, "ref": ref}


def error_from(exc: ProtocolError, ref: str | None = None) -> dict:
    """The ``error`` message that answers a frame which failed to decode with ``exc``."""
    return error(exc.code, exc.message, ref)
