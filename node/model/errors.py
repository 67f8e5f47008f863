"""Errors raised when a value would be corrupt.

Trading on a wrong price is worse than not trading, so every value type validates at
construction and raises one of these specific errors. They all derive from
``InvalidValueError`` (itself a ``ValueError``) so a host can catch the family, and each
message names the offending value and the rule it broke.
"""


class InvalidValueError(ValueError):
    """A value violates an invariant of the domain model."""


class NonFiniteValueError(InvalidValueError):
    """NaN or infinity where a finite number is required."""


class NegativeValueError(InvalidValueError):
    """A negative quantity, size or timestamp."""


class PrecisionError(InvalidValueError):
    """A precision outside 0..MAX_PRECISION, or mismatched precisions."""


class ArithmeticOverflowError(InvalidValueError, OverflowError):
    """A result does not fit the fixed-precision raw integer range."""


class InvalidTimestampError(InvalidValueError):
    """A timestamp that is negative, not an int, or beyond 2**64 - 1 nanoseconds."""


class OutOfOrderDataError(InvalidValueError):
    """Data whose timestamps go backwards within one stream."""


class InvalidIdentifierError(InvalidValueError):
    """An identifier that is empty, malformed or contains whitespace."""


class InvalidDataError(InvalidValueError):
    """A market data record that is internally inconsistent (e.g. high < low)."""


class NonPositivePriceError(InvalidDataError):
    """A market price at or below zero.

    Every instrument kind the node trades (currency pairs, crypto spot, equities) is priced
    strictly above zero, so a zero or negative bid, ask, trade price or bar price is corrupt
    data, not a market. ``field`` names the offending field of the data type (``bid_price``,
    ``open``...) so a file loader can name the column it came from.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
