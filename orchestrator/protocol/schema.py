"""Strict validation of decoded messages: the one place that says what a valid message is.

Rules every kind obeys:

- a message is a map with ``"k"`` (kind, str) and ``"v"`` (``PROTOCOL_VERSION``);
- it has exactly the fields of its kind: a missing field and an unknown extra field are both
  ``invalid_field`` errors (a typo on one side must not be silently ignored by the other);
- types are strict: ``type(x) is int`` so ``True`` is not an int, ``1.0`` is not an int and ``1``
  is not a bool; identifiers (slot, node, id, name) must be non-empty strings;
- payloads the orchestrator does not interpret (``assign.config``, each of ``prepare.nodes``,
  ``cmd.args``, each event's ``data``, ``reply.result``) are checked only for their outer type:
  they are passed through as whatever msgpack produced.

Checks are written as plain ``type(x) is T`` comparisons on purpose: every subscriber validates
every ``evt`` batch it receives (the relay itself only checks envelopes and seqs, see
``codec.decode_relay``), which must take a fraction of a microsecond per event, so there is no schema
library and no per-field function call beyond what is listed here.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType, NoneType

from . import kinds
from .errors import INVALID_FIELD, MALFORMED, UNKNOWN_KIND, VERSION, ProtocolError
from .limits import PROTOCOL_VERSION

_TYPE_NAMES = MappingProxyType(
    {
        dict: "map",
        list: "list",
        tuple: "list",
        str: "str",
        bytes: "bin",
        bool: "bool",
        int: "int",
        float: "float",
        NoneType: "nil",
    }
)


def type_name(value: object) -> str:
    """The msgpack name of a value's type, for error messages a non-Python peer understands."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    # reprlib bounds the work: a rogue peer must not make us repr a 4 MiB map on the error path.
    text = reprlib.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _invalid(where: str, expected: str, value: object) -> ProtocolError:
    return ProtocolError(
        INVALID_FIELD, f"{where}: expected {expected}, got {type_name(value)} {_show(value)}"
    )


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    types: tuple[type, ...] | None  # None: any msgpack value
    expected: str
    minimum: int | None = None
    nonempty: bool = False


def _ident(name: str) -> _Field:
    return _Field(name, (str,), "non-empty str", nonempty=True)


def _int(name: str, minimum: int | None = None) -> _Field:
    return _Field(name, (int,), "int" if minimum is None else f"int >= {minimum}", minimum=minimum)


def _str(name: str) -> _Field:
    return _Field(name, (str,), "str")


def _map(name: str) -> _Field:
    return _Field(name, (dict,), "map")


_ARRAY = (list, tuple)


def _check_fields(kind: str, msg: dict, fields: tuple[_Field, ...]) -> None:
    for field in fields:
        value = msg[field.name]
        if field.types is not None and type(value) not in field.types:
            raise _invalid(f"{kind}.{field.name}", field.expected, value)
        if field.minimum is not None and value < field.minimum:
            raise _invalid(f"{kind}.{field.name}", field.expected, value)
        if field.nonempty and not value:
            raise _invalid(f"{kind}.{field.name}", field.expected, value)


def _event_error(index: int, event: object, previous_seq: int) -> ProtocolError:
    """Explain why ``events[index]`` failed the fast check (only called on the error path)."""
    where = f"evt.events[{index}]"
    if type(event) not in _ARRAY or len(event) != 5:
        return _invalid(where, "a list [seq, ts, topic, type, data]", event)
    seq, ts, topic, type_, data = event
    if type(seq) is not int or seq < 1:
        return _invalid(f"{where}.seq", "int >= 1", seq)
    if previous_seq and seq != previous_seq + 1:
        return ProtocolError(
            INVALID_FIELD,
            f"{where}.seq: expected {previous_seq + 1} (seqs are consecutive within a batch), got {seq}",
        )
    if type(ts) is not int or ts < 0:
        return _invalid(f"{where}.ts", "int >= 0 (ns)", ts)
    if type(topic) is not str:
        return _invalid(f"{where}.topic", "str", topic)
    if type(type_) is not str:
        return _invalid(f"{where}.type", "str", type_)
    return _invalid(f"{where}.data", "map", data)


def _check_events(msg: dict) -> None:
    events = msg["events"]
    if type(events) not in _ARRAY or not events:
        raise _invalid("evt.events", "a non-empty list of [seq, ts, topic, type, data]", events)
    previous = 0
    for index, event in enumerate(events):
        # Unpacking into locals and one combined condition keep the valid case to a few bytecodes per
        # event (measured: ~0.15 us/event); the error path re-examines the event to explain itself.
        if type(event) not in _ARRAY or len(event) != 5:
            raise _event_error(index, event, previous)
        seq, ts, topic, type_, data = event
        if (
            type(seq) is not int
            or (seq != previous + 1 if previous else seq < 1)
            or type(ts) is not int
            or ts < 0
            or type(topic) is not str
            or type(type_) is not str
            or type(data) is not dict
        ):
            raise _event_error(index, event, previous)
        previous = seq


def _check_counters(msg: dict) -> None:
    counters = msg["counters"]
    if type(counters) is not dict:
        raise _invalid("hb.counters", "map of str -> int", counters)
    for key, value in counters.items():
        if type(key) is not str:
            raise _invalid("hb.counters key", "str", key)
        if type(value) is not int:
            raise _invalid(f"hb.counters[{key!r}]", "int", value)


def _check_prepared_nodes(msg: dict) -> None:
    for node, config in msg["nodes"].items():
        if type(node) is not str or not node:
            raise _invalid("prepare.nodes key", "non-empty str (a node id)", node)
        if type(config) is not dict:
            raise _invalid(f"prepare.nodes[{node!r}]", "map (as assign.config)", config)


_REPLY_ERROR = _str("error")


def _check_reply_outcome(msg: dict) -> None:
    """``ok`` and the outcome field must agree: ok=true carries ``result``, ok=false ``error``."""
    if msg["ok"]:
        if "result" not in msg:
            raise ProtocolError(
                INVALID_FIELD, "reply.result: a reply with ok=true must carry 'result', not 'error'"
            )
        return
    if "error" not in msg:
        raise ProtocolError(
            INVALID_FIELD, "reply.error: a reply with ok=false must carry 'error', not 'result'"
        )
    _check_fields(kinds.REPLY, msg, (_REPLY_ERROR,))


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    fields: tuple[_Field, ...]
    keys: frozenset
    # A second complete key set, for the one kind with alternatives (reply: result or error).
    alt_keys: frozenset | None = None
    extra_check: Callable[[dict], None] | None = None

    @property
    def key_sets(self) -> tuple[frozenset, ...]:
        return (self.keys,) if self.alt_keys is None else (self.keys, self.alt_keys)


def _kind(name: str, *fields: _Field, extra_check: Callable[[dict], None] | None = None) -> _Kind:
    return _Kind(name, fields, frozenset({"k", "v", *(f.name for f in fields)}), extra_check=extra_check)


def _reply_kind() -> _Kind:
    keys = frozenset({"k", "v", "id", "ok"})
    return _Kind(
        kinds.REPLY,
        (_ident("id"), _Field("ok", (bool,), "bool")),
        keys | {"result"},
        alt_keys=keys | {"error"},
        extra_check=_check_reply_outcome,
    )


_SPECS: MappingProxyType[str, _Kind] = MappingProxyType(
    {
        k.name: k
        for k in (
            _kind(kinds.HELLO, _ident("slot"), _int("pid", 1), _Field("spare", (bool,), "bool")),
            _kind(
                kinds.ASSIGN,
                _ident("node"),
                _int("incarnation", 1),
                _map("config"),
                _int("resume_after", 0),
                _int("after_pid", 0),
            ),
            _kind(kinds.PREPARE, _map("nodes"), extra_check=_check_prepared_nodes),
            _kind(kinds.CMD, _ident("id"), _ident("node"), _ident("name"), _map("args")),
            _reply_kind(),
            _kind(
                kinds.EVT,
                _ident("node"),
                _int("incarnation", 1),
                _Field("events", None, "list"),
                extra_check=_check_events,
            ),
            _kind(kinds.ACK, _ident("node"), _int("seq", 0)),
            _kind(
                kinds.HB,
                _int("ts"),
                _str("state"),
                _Field("counters", None, "map"),
                extra_check=_check_counters,
            ),
            _kind(kinds.BYE, _str("reason"), _int("code")),
            _kind(kinds.ERROR, _str("code"), _str("message"), _Field("ref", (str, NoneType), "str or nil")),
        )
    }
)


def _describe(spec: _Kind) -> str:
    fields = [f"{f.name} ({f.expected})" for f in spec.fields]
    if len(spec.key_sets) > 1:
        fields.append("result (any) or error (str)")
    return ", ".join(fields)


def _key_error(spec: _Kind, keys: set) -> ProtocolError:
    """Name the first missing or unexpected field of a message whose key set is wrong."""
    allowed = frozenset().union(*spec.key_sets)
    extra = sorted(repr(key) for key in keys - allowed)
    if extra:
        return ProtocolError(
            INVALID_FIELD,
            f"{spec.name}: unexpected field {extra[0]}; a {spec.name} has exactly k, v, {_describe(spec)}",
        )
    missing = sorted(min(spec.key_sets, key=lambda ks: len(ks - keys)) - keys)
    if missing:
        return ProtocolError(
            INVALID_FIELD,
            f"{spec.name}: missing field {missing[0]!r}; a {spec.name} has exactly k, v, {_describe(spec)}",
        )
    return ProtocolError(INVALID_FIELD, f"{spec.name}: 'result' and 'error' are exclusive; send exactly one")


def validate(msg: object) -> dict:
    """Return ``msg`` unchanged if it is a valid message of any kind, else raise ``ProtocolError``.

    The version is checked before the kind, so a peer of another version gets ``version`` rather
    than a confusing ``unknown_kind`` for a kind that version introduced.
    """
    if type(msg) is not dict:
        raise ProtocolError(MALFORMED, f"a message must be one msgpack map, got {type_name(msg)}")
    if "v" not in msg:
        raise ProtocolError(INVALID_FIELD, "missing field 'v' (protocol version, int)")
    version = msg["v"]
    if type(version) is not int:
        raise _invalid("v", "int (protocol version)", version)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            VERSION,
            f"peer speaks protocol version {version}, this side speaks {PROTOCOL_VERSION}: "
            "run the same orchestrator version on both sides",
        )
    if "k" not in msg:
        raise ProtocolError(INVALID_FIELD, "missing field 'k' (message kind, str)")
    kind = msg["k"]
    if type(kind) is not str:
        raise _invalid("k", "str (message kind)", kind)
    spec = _SPECS.get(kind)
    if spec is None:
        raise ProtocolError(
            UNKNOWN_KIND, f"unknown message kind {_show(kind)}; known kinds: {', '.join(sorted(_SPECS))}"
        )
    keys = msg.keys()
    if keys != spec.keys and (spec.alt_keys is None or keys != spec.alt_keys):
        raise _key_error(spec, set(keys))
    _check_fields(kind, msg, spec.fields)
    if spec.extra_check is not None:
        spec.extra_check(msg)
    return msg
