"""Bytes <-> model events (order events, position events, AccountState), for the store and the outbox.

Why msgpack of ``to_dict()``: the model already reduces every event to plain values in one place
(``node.model.events.to_plain``: identifiers, Price/Quantity/Money and Decimals as exact strings,
enums by name), so the encoder is one line and the payload is readable by anything that speaks
msgpack (the orchestrator, the CLI) without importing the model. Strings keep the precision:
``Price("1.10000")`` comes back with 5 decimals, not as the float 1.1.

The decoder is generic too: it walks the dataclass fields of the event type and rebuilds each value
from its annotation, so a new event type or field needs no codec change. The event's own constructor
then validates the result exactly as it validates a live event.

Format: ``msgpack([CODEC_VERSION, event.to_dict()])``. The version lets a future format be read
alongside this one rather than misread.
"""

from __future__ import annotations

import types
from dataclasses import MISSING, fields, is_dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, get_args, get_origin

import msgpack

from node.model.events import ORDER_EVENT_TYPES, POSITION_EVENT_TYPES, AccountState, Event
from node.model.identifiers import Identifier, InstrumentId
from node.model.objects import Currency, FixedPoint, Money
from node.persistence.store.errors import CodecError

CODEC_VERSION = 1

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (*ORDER_EVENT_TYPES, *POSITION_EVENT_TYPES, AccountState)
}
"""Every event type the codec knows, by the name ``to_dict()`` writes under ``"type"``."""


def encode_event(event: Event) -> bytes:
    """Encode a model event; raises CodecError for a type the decoder would not know."""
    cls = EVENT_TYPES.get(type(event).__name__)
    if cls is not type(event):
        raise CodecError(
            f"cannot encode {type(event).__name__}: not a known event type ({', '.join(EVENT_TYPES)})"
        )
    return msgpack.packb([CODEC_VERSION, event.to_dict()], use_bin_type=True)


def decode_event(data: bytes) -> Event:
    """Rebuild the event encoded by :func:`encode_event`; raises CodecError on anything else."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise CodecError(f"not a msgpack-encoded event ({type(exc).__name__}: {exc})") from None
    if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[1], dict)):
        raise CodecError(f"an encoded event is [version, fields], got {type(obj).__name__}")
    version, doc = obj
    if version != CODEC_VERSION:
        raise CodecError(f"event codec version {version!r}, this node reads version {CODEC_VERSION}")
    name = doc.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CodecError(f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}")
    return _build(cls, doc, name)


def _build(cls: type, doc: dict, where: str) -> Any:
    """Construct dataclass ``cls`` from its plain-value dict, field by field from the annotations."""
    known, plan = _plan(cls)
    if len(doc) > len(known) or not known.issuperset(doc):
        extra = set(doc) - known
        if extra:
            raise CodecError(
                f"{where}: unknown field(s) {', '.join(sorted(extra))}; written by a newer node?"
            )
    kwargs = {}
    for name, convert, required in plan:
        if name in doc:
            kwargs[name] = convert(doc[name], f"{where}.{name}")
        elif required:
            raise CodecError(f"{where}: missing field {name!r}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # the model's own validation (InvalidValueError is a ValueError)
        raise CodecError(f"{where}: {exc}") from exc


_PLANS: dict[type, tuple[frozenset, tuple]] = {}
_CONVERTERS: dict[Any, Any] = {}


def _plan(cls: type) -> tuple[frozenset, tuple]:
    """Per dataclass, computed once: the accepted keys and (name, converter, required) per field.

    Walking the annotations (``get_args``, ``issubclass`` chains) on every decode cost ~100 us per
    event, on a restarting node's critical path; compiled once per class it is a few us.
    """
    plan = _PLANS.get(cls)
    if plan is None:
        items = tuple(
            (f.name, _converter(f.type), f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls)
        )
        plan = _PLANS[cls] = (frozenset(name for name, _, _ in items) | {"type"}, items)
    return plan


def compile_plans() -> int:
    """Compile the decode plan of every stored event type now; returns how many.

    A process that restarts nodes does this before it is needed: otherwise a node's first recovery
    compiles them, on its restart's critical path (~0.3 ms on the project's machine for the
    bench's sandbox node, measured with cProfile over 12 recoveries).
    """
    for cls in EVENT_TYPES.values():
        _plan(cls)
    return len(EVENT_TYPES)


def _converter(tp: Any):
    """A function ``(value, where) -> model value`` for annotation ``tp`` (the inverse of ``to_plain``)."""
    convert = _CONVERTERS.get(tp)
    if convert is None:
        convert = _CONVERTERS[tp] = _make_converter(tp)
    return convert


def _make_converter(tp: Any):
    if isinstance(tp, types.UnionType):
        optional = type(None) in get_args(tp)
        members = [m for m in get_args(tp) if m is not type(None)]
        if len(members) != 1:

            def union(value, where):
                if value is None and optional:
                    return None
                raise CodecError(f"{where}: cannot decode a value of union type {tp}")

            return union
        inner = _converter(members[0])

        def maybe(value, where):
            return None if value is None and optional else inner(value, where)

        return maybe
    if get_origin(tp) is tuple:
        item = _converter(get_args(tp)[0])

        def as_tuple(value, where):
            return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))

        return as_tuple
    if tp in (int, bool, str, Any):
        return lambda value, where: value  # the event constructor checks the type
    if not isinstance(tp, type):
        return _refuse(f"no decoding rule for annotation {tp!r}")
    if is_dataclass(tp):

        def nested(value, where):
            if not isinstance(value, dict):
                raise CodecError(f"{where}: expected a map for {tp.__name__}, got {type(value).__name__}")
            return _build(tp, value, where)

        return nested
    if issubclass(tp, InstrumentId):
        parse = InstrumentId.from_str
    elif issubclass(tp, Identifier):
        parse = tp
    elif issubclass(tp, Money):
        parse = Money.from_str
    elif issubclass(tp, FixedPoint):
        parse = tp.from_str  # precision = decimals written, which to_plain keeps
    elif issubclass(tp, Currency):
        parse = Currency.from_str
    elif issubclass(tp, Enum):
        parse = tp.__getitem__
    elif issubclass(tp, Decimal):
        parse = Decimal
    else:
        return _refuse(
            f"no decoding rule for {getattr(tp, '__name__', tp)}; add one to codec._make_converter"
        )
    name = tp.__name__

    def text(value, where):
        if not isinstance(value, str):
            raise CodecError(f"{where}: expected a string for {name}, got {type(value).__name__}")
        try:
            return parse(value)
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise CodecError(f"{where}: cannot decode {value!r} as {name} ({exc})") from None

    return text


def _refuse(message: str):
    def refuse(value, where):
        raise CodecError(f"{where}: {message}")

    return refuse


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list | tuple):
        raise CodecError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)
