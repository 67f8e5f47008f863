"""The one exception the protocol raises, with a machine-readable code.

A code (rather than a subclass per failure) is what travels back to the peer in an ``error``
message, so the receiver of a bad frame can answer with exactly what the validator said.
"""

from __future__ import annotations

MALFORMED = "malformed"
TOO_LARGE = "too_large"
VERSION = "version"
UNKNOWN_KIND = "unknown_kind"
INVALID_FIELD = "invalid_field"

ERROR_CODES = frozenset({MALFORMED, TOO_LARGE, VERSION, UNKNOWN_KIND, INVALID_FIELD})


class ProtocolError(ValueError):
    """A frame or message that breaks the wire protocol.

    ``code`` is one of ``ERROR_CODES``: ``malformed`` (not one msgpack map), ``too_large`` (over
    ``MAX_FRAME_BYTES``), ``version`` (another protocol version), ``unknown_kind``, or
    ``invalid_field`` (a field missing, extra, of the wrong type or out of range; the message names
    the field and what was expected). Receivers count and log it and answer with an ``error``
    message; it must never stop either side.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown ProtocolError code {code!r}; use one of {sorted(ERROR_CODES)}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
