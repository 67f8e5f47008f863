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
    known = {f.name for f in fields(cls)}
    extra = set(doc) - known - {"type"}
    if extra:
        raise CodecError(f"{where}: unknown field(s) {', '.join(sorted(extra))}; written by a newer node?")
    kwargs = {}
    for f in fields(cls):
        if f.name in doc:
            kwargs[f.name] = _decode(f.type, doc[f.name], f"{where}.{f.name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise CodecError(f"{where}: missing field {f.name!r}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # the model's own validation (InvalidValueError is a ValueError)
        raise CodecError(f"{where}: {exc}") from exc


def _decode(tp: Any, value: Any, where: str) -> Any:
    """Turn one plain value back into the model type ``tp`` (the inverse of ``to_plain``)."""
    try:
        if isinstance(tp, types.UnionType):
            if value is None and type(None) in get_args(tp):
                return None
            members = [m for m in get_args(tp) if m is not type(None)]
            if len(members) != 1:
                raise CodecError(f"{where}: cannot decode a value of union type {tp}")
            return _decode(members[0], value, where)
        if get_origin(tp) is tuple:
            item = get_args(tp)[0]
            return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))
        if tp in (int, bool, str, Any):
            return value  # the event constructor checks the type
        if not isinstance(tp, type):
            raise CodecError(f"{where}: no decoding rule for annotation {tp!r}")
        if is_dataclass(tp):
            if not isinstance(value, dict):
                raise CodecError(f"{where}: expected a map for {tp.__name__}, got {type(value).__name__}")
            return _build(tp, value, where)
        text_types = (Identifier, FixedPoint, Currency, Enum, Decimal)
        if issubclass(tp, text_types) and not isinstance(value, str):
            raise CodecError(f"{where}: expected a string for {tp.__name__}, got {type(value).__name__}")
        if issubclass(tp, InstrumentId):
            return InstrumentId.from_str(value)
        if issubclass(tp, Identifier):
            return tp(value)
        if issubclass(tp, Money):
            return Money.from_str(value)
        if issubclass(tp, FixedPoint):
            return tp.from_str(value)  # precision = decimals written, which to_plain keeps
        if issubclass(tp, Currency):
            return Currency.from_str(value)
        if issubclass(tp, Enum):
            return tp[value]
        if issubclass(tp, Decimal):
            return Decimal(value)
    except CodecError:
        raise
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise CodecError(
            f"{where}: cannot decode {value!r} as {getattr(tp, '__name__', tp)} ({exc})"
        ) from None
    raise CodecError(f"{where}: no decoding rule for {getattr(tp, '__name__', tp)}; add one to codec._decode")


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list | tuple):
        raise CodecError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)
