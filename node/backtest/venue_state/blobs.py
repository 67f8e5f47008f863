"""Reading stored blobs back, checked: valid msgpack, this format's version and kind, and a seen
chunk's layout (see ``format``); anything else raises ``VenueStateError``.

A chunk is read without copying its records: only its header and head (the id arrays) are
decoded, the records stay a view of the stored bytes until they are needed.
"""

from __future__ import annotations

from itertools import chain, pairwise

import msgpack

from node.backtest.venue_state.errors import fail, venue_error
from node.backtest.venue_state.format import FORMAT_VERSION, SEEN_CHUNK, seen_key

_HEADER_MAX = 32
"""A chunk's header is at most this long (it is 5 small ints and a short str)."""


def _check_bytes(exchange, data, what: str) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise fail(exchange, f"{what} is {type(data).__name__}, not bytes")


def _not_msgpack(exchange, what: str, exc: Exception):
    return fail(exchange, f"{what} is not valid msgpack ({type(exc).__name__}: {exc})")


def unpack(exchange, data, what: str):
    _check_bytes(exchange, data, what)
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise _not_msgpack(exchange, what, exc) from None


def check_header(exchange, obj, kind: str, what: str, length: int):
    if not isinstance(obj, list | tuple) or not obj:
        raise fail(exchange, f"{what} is not a venue-state record")
    version = obj[0]
    if version != FORMAT_VERSION:
        if type(version) is int and 0 < version < FORMAT_VERSION:
            raise venue_error(
                exchange,
                "cannot restore its stored state: the sandbox venue state is "
                f"from an older version of the node ({what} has format version {version}, this node "
                f"reads version {FORMAT_VERSION}); sandbox venue state is not migrated: start the node "
                "with a fresh state dir (the sandbox venue then starts empty), or finish with that "
                "state on the version that wrote it",
            )
        raise fail(
            exchange,
            f"{what} has format version {version!r}, this venue reads version {FORMAT_VERSION} "
            "(written by a newer version of the node?)",
        )
    if len(obj) != length or obj[1] != kind:
        raise fail(exchange, f"{what} is not a {kind!r} record of length {length}")


def read_chunk(exchange, chunk: int, chunks: int, data) -> tuple[list, list, int, memoryview]:
    """A chunk's (arrived, late, pending, records): only the header and head are decoded, the
    records are a view of ``data``."""
    what = f"seen chunk {seen_key(chunk)!r}"
    _check_bytes(exchange, data, what)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
    unpacker.feed(data[:_HEADER_MAX])
    try:
        header = unpacker.unpack()
    except msgpack.OutOfData:
        raise fail(exchange, f"{what} is empty or truncated") from None
    except Exception as exc:
        raise _not_msgpack(exchange, what, exc) from None
    check_header(exchange, header, "seen", what, 5)
    _, _, number, head_size, records_size = header
    if number != chunk:
        raise fail(exchange, f"{what} says it is chunk {number!r} (mixed up?)")
    start = unpacker.tell()
    if type(head_size) is not int or type(records_size) is not int or head_size < 0 or records_size < 0:
        raise fail(exchange, f"{what} has a bad header {header!r}")
    if start + head_size + records_size != len(data):
        raise fail(
            exchange,
            f"{what} is {len(data)} bytes, its header says {start + head_size + records_size} (truncated?)",
        )
    view = memoryview(data)
    head = unpack(exchange, view[start : start + head_size], what)
    if (
        not isinstance(head, list)
        or len(head) != 3
        or type(head[0]) is not list
        or type(head[1]) is not list
        or type(head[2]) is not int
        or not 0 <= head[2] <= len(head[0])
    ):
        raise fail(exchange, f"{what} has no [arrived ids, late ids, pending count] head")
    arrived, late, pending = head
    entries = len(arrived) + len(late)
    if not 0 < entries <= SEEN_CHUNK or (chunk < chunks - 1 and entries != SEEN_CHUNK):
        raise fail(
            exchange,
            f"{what} holds {entries} entries, a full one {SEEN_CHUNK}, the last one 1 to {SEEN_CHUNK}",
        )
    try:  # every id a str, checked in C
        "".join(arrived)
        "".join(late)
    except TypeError:
        bad = next(c for c in chain(arrived, late) if type(c) is not str)
        raise fail(exchange, f"{what} holds a client order id that is not a string: {bad!r}") from None
    return arrived, late, pending, view[start + head_size :]


def split_records(exchange, what: str, data: memoryview, count: int) -> list[bytes]:
    """``count`` packed records concatenated in ``data``, each as its own bytes."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
    unpacker.feed(data)
    ends = [0]
    try:
        for _ in range(count):
            unpacker.skip()
            ends.append(unpacker.tell())
    except Exception as exc:
        raise fail(exchange, f"{what} holds fewer records than ids ({type(exc).__name__})") from None
    if ends[-1] != len(data):
        raise fail(exchange, f"{what} holds more records than ids")
    return [bytes(data[a:b]) for a, b in pairwise(ends)]
