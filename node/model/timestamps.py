"""UnixNanos: timestamps as plain ``int`` nanoseconds since the epoch, validated at the edges.

Timestamps stay plain ints inside the engine (a wrapper object per tick would cost more than
the tick itself); every constructor of a data or event type calls ``check_unix_nanos`` so a
negative, non-integer or overflowing value never gets in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from node.model.errors import InvalidTimestampError

UNIX_NANOS_MAX = 2**64 - 1
NANOS_PER_SECOND = 1_000_000_000
NANOS_PER_MILLI = 1_000_000


def check_unix_nanos(value: int, field: str = "timestamp") -> int:
    """Return ``value`` if it is an int in 0..2**64-1, else raise InvalidTimestampError."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidTimestampError(f"{field} must be an int of nanoseconds, got {value!r}")
        value = int(value)
    if value < 0 or value > UNIX_NANOS_MAX:
        raise InvalidTimestampError(f"{field} must be within 0..2**64-1 ns, got {value}")
    return value


def add_nanos(a: int, b: int) -> int:
    """Add two nanosecond values, raising rather than producing an out-of-range timestamp."""
    result = a + b
    if result < 0 or result > UNIX_NANOS_MAX:
        raise InvalidTimestampError(f"timestamp arithmetic {a} + {b} leaves the UnixNanos range")
    return result


def parse_timestamp(text: str | int, field: str = "timestamp") -> int:
    """Parse integer nanoseconds or an ISO-8601 string (naive strings are taken as UTC).

    Nanosecond fractions are kept exactly (``datetime`` alone stops at microseconds).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return check_unix_nanos(text, field)
    if not isinstance(text, str):
        raise InvalidTimestampError(f"{field}: expected ISO-8601 text or integer nanoseconds, got {text!r}")
    s = text.strip()
    if s.isascii() and s.isdigit():
        return check_unix_nanos(int(s), field)
    bad = InvalidTimestampError(f"{field}: not ISO-8601 or integer nanoseconds: {text!r}")
    if not s.isascii():
        raise bad
    head, tz = s, ""
    if s.endswith(("Z", "z")):
        head, tz = s[:-1], "+00:00"
    elif len(s) > 5 and s[-5] in "+-" and s[-4:].isdigit() and "T" in s[:-5]:
        head, tz = s[:-5], f"{s[-5:-2]}:{s[-2:]}"
    elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":" and "T" in s[:-6]:
        head, tz = s[:-6], s[-6:]
    frac_ns = 0
    if "." in head:
        head, frac = head.split(".", 1)
        if not frac.isdigit() or len(frac) > 9:
            raise InvalidTimestampError(f"{field}: bad fractional seconds in {text!r}")
        frac_ns = int(frac.ljust(9, "0"))
    try:
        dt = datetime.fromisoformat(head + tz)
    except ValueError:
        raise bad from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    seconds = delta.days * 86_400 + delta.seconds
    return check_unix_nanos(seconds * NANOS_PER_SECOND + delta.microseconds * 1000 + frac_ns, field)


def format_iso8601(ns: int) -> str:
    """Format nanoseconds as ``YYYY-MM-DDTHH:MM:SS.fffffffffZ``."""
    seconds, frac = divmod(ns, NANOS_PER_SECOND)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"
