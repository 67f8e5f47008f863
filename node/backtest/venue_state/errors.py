"""What a restore raises: ``VenueStateError``, worded to say what went wrong and what to do.

Anything that does not add up (bad bytes, another version, another venue, an instrument the venue
does not trade or of another precision, ids missing or twice) raises ``VenueStateError``.
"""

from __future__ import annotations

ADVICE = (
    "the stored venue state does not belong to this venue or is damaged; if the node's store is "
    "otherwise intact, restore it from a backup, or start the node with a fresh state dir"
)


class VenueStateError(RuntimeError):
    """Stored venue state that cannot be restored (corrupt, another version, another venue)."""


def venue_error(exchange, what: str) -> VenueStateError:
    """``what`` went wrong with ``exchange``'s stored state (``what`` says what to do about it)."""
    return VenueStateError(f"venue {exchange.venue}: {what}")


def fail(exchange, what: str) -> VenueStateError:
    """Stored state that is damaged or not this venue's: ``what`` is wrong, plus the advice."""
    return venue_error(exchange, f"cannot restore its stored state: {what}; {ADVICE}")
