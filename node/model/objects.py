"""Fixed-precision values: Price, Quantity, Money (an integer raw value plus a precision).

Floats never enter the engine: a value is converted once, at construction, into
``raw = value * 10**precision`` (an int that must fit in a signed 64-bit range) and all
comparisons and sums work on those ints. Construction rejects NaN, infinity, out-of-range
precision and overflow with the specific errors of ``node.model.errors``.

``from_raw`` is the fast constructor for hot paths (generators, matching engine) that
already hold a validated integer.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from types import MappingProxyType

from node.model.errors import (
    ArithmeticOverflowError,
    InvalidValueError,
    NegativeValueError,
    NonFiniteValueError,
    PrecisionError,
)

MAX_PRECISION = 9
RAW_MAX = 2**63 - 1
RAW_MIN = -(2**63)
POW10 = tuple(10**i for i in range(MAX_PRECISION + 1))


def _check_precision(precision: int, type_name: str) -> int:
    if type(precision) is not int or not 0 <= precision <= MAX_PRECISION:
        raise PrecisionError(f"{type_name} precision must be an int in 0..{MAX_PRECISION}, got {precision!r}")
    return precision


def _check_raw(raw: int, type_name: str) -> int:
    if type(raw) is not int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise InvalidValueError(f"{type_name} raw value must be an int, got {type(raw).__name__} {raw!r}")
        raw = int(raw)
    if raw > RAW_MAX or raw < RAW_MIN:
        raise ArithmeticOverflowError(f"{type_name} raw value {raw} does not fit in 64 bits")
    return raw


def to_raw(value, precision: int, type_name: str) -> int:
    """Convert an int/float/str/Decimal to a raw integer at ``precision`` (half-even rounding)."""
    _check_precision(precision, type_name)
    if isinstance(value, bool):
        raise InvalidValueError(f"{type_name} value must be a number, got {value!r}")
    if type(value) is int:
        return _check_raw(value * POW10[precision], type_name)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NonFiniteValueError(f"{type_name} value must be finite, got {value}")
        scaled = value * POW10[precision]
        if not -9.3e18 < scaled < 9.3e18:
            raise ArithmeticOverflowError(f"{type_name} value {value} overflows at precision {precision}")
        return _check_raw(round(scaled), type_name)
    if isinstance(value, str | Decimal | int):
        try:
            dec = Decimal(value) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            raise InvalidValueError(f"{type_name} value {value!r} is not a number") from None
        if not dec.is_finite():
            raise NonFiniteValueError(f"{type_name} value must be finite, got {value!r}")
        raw = int(dec.scaleb(precision).to_integral_value(ROUND_HALF_EVEN))
        return _check_raw(raw, type_name)
    raise InvalidValueError(
        f"{type_name} value must be int, float, str or Decimal, got {type(value).__name__}"
    )


def format_raw(raw: int, precision: int) -> str:
    if precision == 0:
        return str(raw)
    sign = "-" if raw < 0 else ""
    whole, frac = divmod(abs(raw), POW10[precision])
    return f"{sign}{whole}.{frac:0{precision}d}"


class FixedPoint:
    """Shared behaviour of the fixed-precision value types."""

    __slots__ = ("raw", "precision")

    raw: int
    precision: int

    def __init__(self, value, precision: int) -> None:
        self.raw = to_raw(value, precision, type(self).__name__)
        self.precision = precision
        self._validate()

    def _validate(self) -> None:
        """Subclass hook for extra invariants (e.g. non-negative)."""

    @classmethod
    def from_raw(cls, raw: int, precision: int):
        obj = object.__new__(cls)
        obj.raw = _check_raw(raw, cls.__name__)
        obj.precision = _check_precision(precision, cls.__name__)
        obj._validate()
        return obj

    @classmethod
    def from_str(cls, value: str):
        """Parse ``"1.10050"``; the precision is the number of decimals written."""
        s = value.strip()
        try:
            exponent = Decimal(s).as_tuple().exponent
        except InvalidOperation:
            raise InvalidValueError(f"{cls.__name__} value {value!r} is not a number") from None
        if not isinstance(exponent, int):
            raise NonFiniteValueError(f"{cls.__name__} value must be finite, got {value!r}")
        return cls(s, max(0, -exponent))

    def as_decimal(self) -> Decimal:
        return Decimal(self.raw).scaleb(-self.precision)

    def as_double(self) -> float:
        return self.raw / POW10[self.precision]

    def __float__(self) -> float:
        return self.raw / POW10[self.precision]

    def _aligned(self, other: FixedPoint) -> tuple[int, int, int]:
        p, q = self.precision, other.precision
        if p == q:
            return self.raw, other.raw, p
        if p > q:
            return self.raw, other.raw * POW10[p - q], p
        return self.raw * POW10[q - p], other.raw, q

    def _cmp_key(self, other):
        if isinstance(other, FixedPoint):
            a, b, _ = self._aligned(other)
            return a, b
        if isinstance(other, int | float | Decimal) and not isinstance(other, bool):
            return self.as_decimal(), _as_decimal(other)
        return None

    def __eq__(self, other) -> bool:
        if type(other) is type(self) and other.precision == self.precision:
            return other.raw == self.raw
        key = self._cmp_key(other)
        return key is not None and key[0] == key[1]

    def __lt__(self, other) -> bool:
        key = self._cmp_key(other)
        if key is None:
            return NotImplemented
        return key[0] < key[1]

    def __le__(self, other) -> bool:
        key = self._cmp_key(other)
        if key is None:
            return NotImplemented
        return key[0] <= key[1]

    def __gt__(self, other) -> bool:
        key = self._cmp_key(other)
        if key is None:
            return NotImplemented
        return key[0] > key[1]

    def __ge__(self, other) -> bool:
        key = self._cmp_key(other)
        if key is None:
            return NotImplemented
        return key[0] >= key[1]

    def __hash__(self) -> int:
        return hash(self.as_decimal())

    def __mul__(self, other) -> Decimal:
        return self.as_decimal() * _as_decimal(other)

    __rmul__ = __mul__

    def __truediv__(self, other) -> Decimal:
        return self.as_decimal() / _as_decimal(other)

    def __str__(self) -> str:
        return format_raw(self.raw, self.precision)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self}')"

    def __reduce__(self):
        return (type(self).from_raw, (self.raw, self.precision))


def _as_decimal(value) -> Decimal:
    if isinstance(value, FixedPoint):
        return value.as_decimal()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NonFiniteValueError(f"operand must be finite, got {value}")
        return Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise NonFiniteValueError(f"operand must be finite, got {value}")
    return Decimal(value)


class Price(FixedPoint):
    """A price (may be negative, e.g. a spread), fixed precision."""

    __slots__ = ()

    def __add__(self, other):
        if isinstance(other, Price):
            a, b, p = self._aligned(other)
            return Price.from_raw(a + b, p)
        return self.as_decimal() + _as_decimal(other)

    def __sub__(self, other):
        if isinstance(other, Price):
            a, b, p = self._aligned(other)
            return Price.from_raw(a - b, p)
        return self.as_decimal() - _as_decimal(other)

    def __neg__(self) -> Price:
        return Price.from_raw(-self.raw, self.precision)


class Quantity(FixedPoint):
    """A non-negative quantity, fixed precision."""

    __slots__ = ()

    def _validate(self) -> None:
        if self.raw < 0:
            raise NegativeValueError(
                f"Quantity must be non-negative, got {format_raw(self.raw, self.precision)}"
            )

    def __add__(self, other):
        if isinstance(other, Quantity):
            a, b, p = self._aligned(other)
            return Quantity.from_raw(a + b, p)
        return self.as_decimal() + _as_decimal(other)

    def __sub__(self, other):
        if isinstance(other, Quantity):
            a, b, p = self._aligned(other)
            return Quantity.from_raw(a - b, p)
        return self.as_decimal() - _as_decimal(other)

    def is_zero(self) -> bool:
        return self.raw == 0

    def is_positive(self) -> bool:
        return self.raw > 0


class Currency:
    """A currency: code, precision and type (FIAT or CRYPTO). Immutable."""

    __slots__ = ("code", "precision", "iso4217", "name", "currency_type")

    def __init__(self, code: str, precision: int, iso4217: int, name: str, currency_type: str) -> None:
        if not code or not code.isalnum():
            raise InvalidValueError(f"currency code must be alphanumeric, got {code!r}")
        _check_precision(precision, "Currency")
        if currency_type not in ("FIAT", "CRYPTO"):
            raise InvalidValueError(f"currency_type must be FIAT or CRYPTO, got {currency_type!r}")
        self.code = code
        self.precision = precision
        self.iso4217 = iso4217
        self.name = name
        self.currency_type = currency_type

    @staticmethod
    def from_str(code: str) -> Currency:
        try:
            return CURRENCIES[code.upper()]
        except (KeyError, AttributeError):
            known = ", ".join(sorted(CURRENCIES))
            raise InvalidValueError(f"unknown currency {code!r}; known: {known}") from None

    def __eq__(self, other) -> bool:
        return isinstance(other, Currency) and other.code == self.code

    def __hash__(self) -> int:
        return hash(self.code)

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"Currency('{self.code}')"

    def __reduce__(self):
        return (Currency.from_str, (self.code,))


CURRENCIES = MappingProxyType(
    {
        c.code: c
        for c in (
            Currency("USD", 2, 840, "US Dollar", "FIAT"),
            Currency("EUR", 2, 978, "Euro", "FIAT"),
            Currency("GBP", 2, 826, "British Pound", "FIAT"),
            Currency("JPY", 0, 392, "Japanese Yen", "FIAT"),
            Currency("CHF", 2, 756, "Swiss Franc", "FIAT"),
            Currency("AUD", 2, 36, "Australian Dollar", "FIAT"),
            Currency("CAD", 2, 124, "Canadian Dollar", "FIAT"),
            Currency("BTC", 8, 0, "Bitcoin", "CRYPTO"),
            Currency("ETH", 8, 0, "Ether", "CRYPTO"),
            Currency("USDT", 8, 0, "Tether", "CRYPTO"),
        )
    }
)
USD = CURRENCIES["USD"]


class Money(FixedPoint):
    """An amount of a currency; the precision is the currency's."""

    __slots__ = ("currency",)

    def __init__(self, value, currency: Currency) -> None:
        if not isinstance(currency, Currency):
            raise InvalidValueError(f"Money needs a Currency, got {currency!r}")
        self.currency = currency
        super().__init__(value, currency.precision)

    @classmethod
    def from_raw(cls, raw: int, currency: Currency) -> Money:  # type: ignore[override]
        if not isinstance(currency, Currency):
            raise InvalidValueError(f"Money needs a Currency, got {currency!r}")
        obj = object.__new__(cls)
        obj.raw = _check_raw(raw, "Money")
        obj.precision = currency.precision
        obj.currency = currency
        return obj

    @classmethod
    def from_str(cls, value: str) -> Money:  # type: ignore[override]
        """Parse ``"1000.00 USD"``."""
        amount, _, code = value.strip().partition(" ")
        return cls(amount, Currency.from_str(code))

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidValueError(f"cannot combine {self.currency} and {other.currency} money")

    def __add__(self, other):
        if isinstance(other, Money):
            self._same(other)
            return Money.from_raw(self.raw + other.raw, self.currency)
        return self.as_decimal() + _as_decimal(other)

    def __sub__(self, other):
        if isinstance(other, Money):
            self._same(other)
            return Money.from_raw(self.raw - other.raw, self.currency)
        return self.as_decimal() - _as_decimal(other)

    def __neg__(self) -> Money:
        return Money.from_raw(-self.raw, self.currency)

    def __eq__(self, other) -> bool:
        # Only Money equals Money: 1 USD is not "equal" to the number 1 or to 1 EUR, and this
        # keeps equal objects hashing equal.
        return isinstance(other, Money) and other.currency == self.currency and other.raw == self.raw

    def __hash__(self) -> int:
        return hash((self.raw, self.currency.code))

    def __str__(self) -> str:
        return f"{format_raw(self.raw, self.precision)} {self.currency.code}"

    def __repr__(self) -> str:
        return f"Money('{format_raw(self.raw, self.precision)}', {self.currency.code})"

    def __reduce__(self):
        return (Money.from_raw, (self.raw, self.currency))
