"""Value checks of the SQLite store, at the boundary: a bad value fails where it is written, not at load."""

from __future__ import annotations

from node.persistence.store.base import INT64_MAX
from node.persistence.store.errors import InvalidStateValueError


def check_text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidStateValueError(f"{what} must be a non-empty str, got {type(value).__name__} {value!r}")
    return str.__str__(value)  # identifiers are str subclasses: store the plain string


def check_bytes(what: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidStateValueError(f"{what} must be bytes, got {type(value).__name__}; encode it first")


def check_int64(what: str, value: object, minimum: int = 0) -> int:
    if type(value) is not int or not minimum <= value <= INT64_MAX:
        raise InvalidStateValueError(f"{what} must be an int in {minimum}..2**63-1, got {value!r}")
    return value
