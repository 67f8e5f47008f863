"""Example strategies, and the config checking they share.

A strategy's config usually comes from a TOML file a person wrote. A typo there (``fast_ema``
for ``fast_ema_period``, ``"ten"`` for ``10``, a bar type for the wrong instrument) must stop the
node when it is built, with an error that names the key, not surface as an ``AttributeError`` on
the first bar of an overnight run. So every example config validates and normalises each field
in its constructor, and ``from_dict`` also refuses unknown and missing keys.

The strategies themselves live in their own modules and are loaded by dotted path
(``node.strategies.ema_cross:EMACross``); this package deliberately does not import them, so
importing one never drags in the other.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from node.model.data import BarType
from node.model.errors import InvalidValueError
from node.model.identifiers import InstrumentId, StrategyId
from node.trading.strategy import StrategyConfig


class StrategyConfigError(ValueError):
    """A strategy config field is missing, unknown or invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"strategy config field '{field}': {message}")


class StrategyStartError(RuntimeError):
    """A strategy cannot start with what the node holds (e.g. its instrument is not in the cache)."""


# -- field checks (each returns the normalised value or raises naming the field) -------------------


def instrument_id_field(value: Any, field: str) -> InstrumentId:
    if isinstance(value, InstrumentId):
        return value
    if not isinstance(value, str):
        raise StrategyConfigError(field, f"must be an instrument id like 'EUR/USD.SIM', got {value!r}")
    try:
        return InstrumentId.from_str(value)
    except InvalidValueError as exc:
        raise StrategyConfigError(field, str(exc)) from None


def bar_type_field(value: Any, field: str) -> BarType:
    if isinstance(value, BarType):
        return value
    if not isinstance(value, str):
        raise StrategyConfigError(
            field, f"must be a bar type like 'EUR/USD.SIM-1-MINUTE-MID-INTERNAL', got {value!r}"
        )
    try:
        return BarType.from_str(value)
    except InvalidValueError as exc:
        raise StrategyConfigError(field, str(exc)) from None


def positive_decimal_field(value: Any, field: str) -> Decimal:
    """A Decimal > 0 from an int, str, Decimal or float (floats via ``repr``, so 0.1 stays 0.1)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise StrategyConfigError(field, f"must be a positive number, got {value!r}")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise StrategyConfigError(field, f"must be a positive number, got {value!r}") from None
    if not dec.is_finite() or dec <= 0:
        raise StrategyConfigError(field, f"must be a finite number > 0, got {value!r}")
    return dec


def positive_int_field(value: Any, field: str, minimum: int = 1) -> int:
    # ``type(...) is int`` rejects bool (True would otherwise pass as 1) and floats like 10.0.
    if type(value) is not int or value < minimum:
        raise StrategyConfigError(field, f"must be an int >= {minimum}, got {value!r}")
    return value


def bool_field(value: Any, field: str) -> bool:
    # Strict: a TOML string "false" is truthy in Python and would silently mean True.
    if type(value) is not bool:
        raise StrategyConfigError(field, f"must be true or false, got {value!r}")
    return value


def _plain(value: Any) -> Any:
    """A config value as TOML can write it (ids and bar types as text, decimals as strings)."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str | BarType | Decimal):
        return str(value)
    return value


class ValidatedStrategyConfig(StrategyConfig):
    """Base of the example configs: checks the common keys, offers ``from_dict``/``to_dict``.

    Subclasses take their fields as keyword-only constructor arguments, validate them there and
    list them in ``FIELDS`` (a tuple: class-level constants only, never mutable state).
    """

    FIELDS: tuple[str, ...] = ()

    def __init__(self, *, strategy_id: str | None = None, order_id_tag: str = "000") -> None:
        if strategy_id is not None:
            try:
                strategy_id = StrategyId(strategy_id)
            except InvalidValueError as exc:
                raise StrategyConfigError("strategy_id", str(exc)) from None
        if not isinstance(order_id_tag, str) or not order_id_tag or any(c.isspace() for c in order_id_tag):
            raise StrategyConfigError(
                "order_id_tag", f"must be a non-empty string without spaces, got {order_id_tag!r}"
            )
        super().__init__(strategy_id=strategy_id, order_id_tag=order_id_tag)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from plain (TOML-decoded) values; unknown or missing keys raise naming the key."""
        if not isinstance(data, Mapping):
            raise StrategyConfigError("<config>", f"must be a table of keys, got {type(data).__name__}")
        params = cls._keyword_params()
        for key in data:
            if key not in params:
                raise StrategyConfigError(
                    str(key), f"unknown key for {cls.__name__}; known keys: {', '.join(params)}"
                )
        for name, p in params.items():
            if p.default is inspect.Parameter.empty and name not in data:
                raise StrategyConfigError(name, f"is required by {cls.__name__}")
        return cls(**data)

    @classmethod
    def _keyword_params(cls) -> Mapping[str, inspect.Parameter]:
        """The constructor's keyword-only parameters, read once per class.

        Why cached: ``inspect.signature`` costs ~0.2 ms, and a node's config is parsed on every
        (re)start, on the restart's critical path. Kept on the class itself (not inherited: each
        class has its own constructor), so nothing is shared beyond the class definition.
        """
        params = cls.__dict__.get("_KEYWORD_PARAMS")
        if params is None:
            params = MappingProxyType(
                {
                    name: p
                    for name, p in inspect.signature(cls.__init__).parameters.items()
                    if name != "self" and p.kind is inspect.Parameter.KEYWORD_ONLY
                }
            )
            cls._KEYWORD_PARAMS = params
        return params

    def to_dict(self) -> dict[str, Any]:
        """Plain values that ``from_dict`` accepts back (``strategy_id`` omitted when unset)."""
        out = {name: _plain(getattr(self, name)) for name in self.FIELDS}
        if self.strategy_id is not None:
            out["strategy_id"] = str(self.strategy_id)
        out["order_id_tag"] = self.order_id_tag
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({fields})"


def exact_trade_quantity(instrument, trade_size: Decimal, field: str = "trade_size"):
    """``trade_size`` as the instrument's Quantity, refusing a size its precision cannot hold.

    Rounding 1.5 to 2 units would trade a different amount than configured, and rounding a
    tiny size to 0 would produce orders the risk engine must deny; both are config mistakes.
    """
    qty = instrument.make_qty(trade_size)
    if qty.raw <= 0 or qty.as_decimal() != trade_size:
        raise StrategyConfigError(
            field,
            f"{trade_size} is not a positive multiple of {instrument.id}'s size precision "
            f"({instrument.size_precision} decimals)",
        )
    return qty


def net_position(cache, instrument_id: InstrumentId, strategy_id: StrategyId) -> tuple[bool, Decimal]:
    """(has open positions, signed net quantity) of *this strategy* in ``instrument_id``.

    The portfolio's ``is_flat``/``is_net_long`` sum every strategy's positions; a strategy that
    shares an instrument with another must decide on its own book, so it asks the cache with its
    strategy id instead.
    """
    positions = cache.positions_open(instrument_id, strategy_id)
    return bool(positions), sum((p.signed_qty for p in positions), Decimal(0))


__all__ = [
    "StrategyConfigError",
    "StrategyStartError",
    "ValidatedStrategyConfig",
    "bar_type_field",
    "bool_field",
    "exact_trade_quantity",
    "instrument_id_field",
    "net_position",
    "positive_decimal_field",
    "positive_int_field",
]
