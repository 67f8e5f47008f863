"""Identifiers: immutable, validated strings.

They subclass ``str`` on purpose: identifiers are dict keys on the per-tick path (cache,
topic and matching-engine lookups) and a ``str`` hashes and compares in C, where a
Python-level ``__hash__``/``__eq__`` would cost about 100 ns per lookup. The class still
carries meaning for readers and type checkers, validates at construction, and ``value``
returns the plain string.
"""

from __future__ import annotations

from node.model.errors import InvalidIdentifierError


class Identifier(str):
    """Base for string identifiers (validated: non-empty, no whitespace)."""

    __slots__ = ()

    def __new__(cls, value: str):
        # split() == [value]: non-empty and no whitespace anywhere, checked in C (a per-character
        # generator cost ~10 µs for a 20-character id, on every id decoded at a restart).
        if not isinstance(value, str) or value.split() != [value]:
            raise InvalidIdentifierError(
                f"{cls.__name__} must be a non-empty string without whitespace, got {value!r}"
            )
        return super().__new__(cls, value)

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{str.__str__(self)}')"

    def __getnewargs__(self):
        return (str.__str__(self),)


class TraderId(Identifier):
    """The trader instance, e.g. ``TRADER-001``."""

    __slots__ = ()


class StrategyId(Identifier):
    """A strategy within a trader, e.g. ``EMACross-001``."""

    __slots__ = ()


class ComponentId(Identifier):
    __slots__ = ()


class Symbol(Identifier):
    __slots__ = ()


class Venue(Identifier):
    __slots__ = ()


class ClientOrderId(Identifier):
    __slots__ = ()


class VenueOrderId(Identifier):
    __slots__ = ()


class PositionId(Identifier):
    __slots__ = ()


class TradeId(Identifier):
    __slots__ = ()


class AccountId(Identifier):
    """``ISSUER-NUMBER``, e.g. ``SIM-001``; the issuer is the venue."""

    __slots__ = ()

    def __new__(cls, value: str):
        obj = super().__new__(cls, value)
        if "-" not in value.strip("-"):
            raise InvalidIdentifierError(f"AccountId must look like 'ISSUER-NUMBER', got {value!r}")
        return obj

    @property
    def issuer(self) -> str:
        return self.split("-", 1)[0]


class InstrumentId(Identifier):
    """``SYMBOL.VENUE``, e.g. ``EUR/USD.SIM``; the venue is the part after the last dot."""

    # No __slots__: str subclasses cannot have non-empty slots, so symbol/venue live in __dict__.

    def __new__(cls, symbol: Symbol | str, venue: Venue | str):
        symbol = symbol if isinstance(symbol, Symbol) else Symbol(symbol)
        venue = venue if isinstance(venue, Venue) else Venue(venue)
        obj = super().__new__(cls, f"{symbol}.{venue}")
        obj.symbol = symbol
        obj.venue = venue
        return obj

    @classmethod
    def from_str(cls, value: str) -> InstrumentId:
        if not isinstance(value, str) or "." not in value.strip("."):
            raise InvalidIdentifierError(f"InstrumentId must look like 'SYMBOL.VENUE', got {value!r}")
        symbol, _, venue = value.rpartition(".")
        return cls(symbol, venue)

    def __getnewargs__(self):
        return (str.__str__(self.symbol), str.__str__(self.venue))
