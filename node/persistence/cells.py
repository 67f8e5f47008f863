"""One cell of a data file as the number, timestamp, Price or Quantity it stands for.

Kept apart from the row loop because this is where exactness lives: text is turned into
raw fixed-point integers without going through float (``0.1`` must be exactly ``0.1``),
floats from Parquet are rounded the way their writer meant them, and anything that is not
a finite number in range raises ``_FieldError`` with the offending value. The interner
shares one Price or Quantity per distinct cell value within a load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from node.model.objects import POW10, RAW_MAX, RAW_MIN, Price, Quantity
from node.model.timestamps import check_unix_nanos, parse_timestamp
from node.persistence.load_errors import _FieldError

# A plain decimal written with ASCII digits: parsed exactly with int() (fast path).
_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+)(?:\.(\d*))?|[+-]?\.(\d+)", re.ASCII)


def _decimal_to_raw(dec: Decimal, precision: int, value: Any) -> int:
    if not dec.is_finite():
        raise _FieldError(f"not finite: {value!r}")
    try:
        return int(dec.scaleb(precision).to_integral_value(ROUND_HALF_EVEN))
    except ArithmeticError:  # decimal.Overflow on an absurd exponent such as 1e999999999
        raise _FieldError(f"out of range at precision {precision}: {value!r}") from None


def _to_raw(value: Any, precision: int) -> int:
    """Convert one cell (str from CSV; int/float/Decimal/str from Parquet) to a raw int."""
    if type(value) is str:
        text = value.strip()
        m = _PLAIN_DECIMAL.fullmatch(text)
        if m is not None:
            frac = m.group(2) if m.group(3) is None else m.group(3)
            frac = frac or ""
            if len(frac) <= precision:
                whole = m.group(1) or "0"
                raw = int(whole + frac + "0" * (precision - len(frac)))
                raw = -raw if text[0] == "-" else raw
            else:
                raw = _decimal_to_raw(Decimal(text), precision, value)
        elif not text:
            raise _FieldError("missing value")
        else:
            try:
                dec = Decimal(text)
            except InvalidOperation:
                raise _FieldError(f"not a number: {value!r}") from None
            if "_" in text:  # Decimal accepts "1_000"; a data file should not.
                raise _FieldError(f"not a number: {value!r}")
            raw = _decimal_to_raw(dec, precision, value)
    elif value is None:
        raise _FieldError("missing value")
    elif type(value) is float:
        if not math.isfinite(value):
            raise _FieldError(f"not finite: {value!r}")
        scaled = value * POW10[precision]
        if not -9.3e18 < scaled < 9.3e18:
            raise _FieldError(f"out of range at precision {precision}: {value!r}")
        raw = round(scaled)
        if abs(abs(scaled - raw) - 0.5) < 1e-6:
            # Near a rounding tie the float product may be off by an ulp; round the
            # shortest decimal repr instead, which is what the writer of the file meant.
            raw = _decimal_to_raw(Decimal(repr(value)), precision, value)
    elif type(value) is int:
        raw = value * POW10[precision]
    elif isinstance(value, Decimal):
        raw = _decimal_to_raw(value, precision, value)
    else:
        raise _FieldError(f"not a number: {value!r} ({type(value).__name__})")
    if raw > RAW_MAX or raw < RAW_MIN:
        raise _FieldError(f"out of range at precision {precision}: {value!r}")
    return raw


def _to_size_raw(value: Any, precision: int) -> int:
    raw = _to_raw(value, precision)
    if raw < 0:
        raise _FieldError(f"negative size: {value!r}")
    return raw


def _to_nanos(value: Any) -> int:
    """ISO-8601 text (naive = UTC) or integer nanoseconds, as int nanoseconds."""
    try:
        if type(value) is str:
            if value.isdigit() and value.isascii():  # the common case: integer nanoseconds
                return check_unix_nanos(int(value))
            if not value.strip():
                raise _FieldError("missing value")
            return parse_timestamp(value)
        if type(value) is int:
            return check_unix_nanos(value)
    except ValueError:  # InvalidTimestampError, or int() on odd unicode digits
        pass
    else:
        if value is None:
            raise _FieldError("missing value")
    raise _FieldError(
        f"not a valid timestamp: {value!r}; use ISO-8601 (naive means UTC) "
        "or integer nanoseconds in 0..2**64-1"
    )


_INTERN_MAX = 1 << 16


def _interner(cls: type[Price] | type[Quantity], precision: int, is_size: bool) -> Callable[[Any], Any]:
    """A per-load function from cell value to the Price or Quantity it parses to.

    Market data repeats the same few thousand prices and sizes, and the values are
    immutable, so each distinct cell text is parsed once and its object shared; that makes
    loading several times faster. The cache lives only as long as one load and stops
    growing at ``_INTERN_MAX`` entries.
    """
    cache: dict[Any, Any] = {}
    get = cache.get
    convert = _to_size_raw if is_size else _to_raw
    from_raw = cls.from_raw

    def intern(value: Any) -> Any:
        try:
            obj = get(value)
        except TypeError:  # an unhashable cell (a Parquet list, say) is not a number
            raise _FieldError(f"not a number: {value!r}") from None
        if obj is None:
            obj = from_raw(convert(value, precision), precision)
            if len(cache) < _INTERN_MAX:
                cache[value] = obj
        return obj

    return intern
