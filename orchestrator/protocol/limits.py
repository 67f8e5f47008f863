"""Protocol-wide constants shared by the codec and the transport.

``MAX_FRAME_BYTES`` lives here (not in the transport) because two layers must agree on it: the
encoder refuses to build a larger frame, and every socket sets ``MAXMSGSIZE`` to it so that a
larger frame from a rogue peer is refused by libzmq before Python ever sees it.
"""

PROTOCOL_VERSION = 1
"""Carried in every message as ``"v"``; a peer speaking another version is refused with code ``version``."""

MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest msgpack frame either side will encode, decode or accept on a socket (4 MiB)."""

MAX_PREPARED_NODES = 32
"""A ``prepare`` names at most this many nodes (a spare builds each ahead: ~2 ms of CPU, ~45 KB)."""
