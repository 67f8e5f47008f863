"""The on-disk record format of a node journal, and nothing else.

A journal file is a plain concatenation of records; there is no file header, so a file is valid
if and only if it is a sequence of valid records with strictly increasing seq, and a write cut
short can only ever damage the end of the file. Each record (little-endian)::

    offset  size  field
    0       2     magic    b"\\xc1J" (0xC1 is the one byte msgpack never uses as a type)
    2       1     version  1
    3       1     flags    0 (reserved; a non-zero value is invalid in version 1)
    4       4     length   payload length in bytes (u32, at most MAX_PAYLOAD_BYTES)
    8       8     seq      the event's sequence number (u64, >= 1)
    16      4     crc      CRC-32 of bytes 0..16 and of the payload
    20      n     payload  opaque bytes: the event as relayed (a msgpack event or a whole batch frame)

Why these choices:

- The CRC covers the header as well as the payload, so a flipped bit in ``seq`` or ``length`` is
  caught like one in the data (a misread length would otherwise misframe every later record).
- CRC-32 (``zlib.crc32``) rather than CRC-32C: it is in the standard library, implemented in C,
  and runs at GB/s, far above any event rate; for detecting torn writes and media errors the two
  are equivalent. The version byte leaves room to change it.
- A length limit turns a corrupt length into "impossible" at once instead of a huge read.
- For a batch frame stored as one record, use the batch's *last* seq as the record's seq: then
  ``read_from(s)`` returns exactly the records that can hold events >= s.
"""

from __future__ import annotations

import struct
import zlib

MAGIC = b"\xc1J"
VERSION = 1
FLAGS = 0
HEADER_SIZE = 20
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
"""Format limit (64 MiB): a length above it is impossible, whatever the writer was configured to."""
MAX_SEQ = 2**64 - 1

_HEAD = struct.Struct("<2sBBIQ")  # the 16 bytes the CRC starts with
_CRC = struct.Struct("<I")
_HEADER = struct.Struct("<2sBBIQI")
assert _HEADER.size == HEADER_SIZE and _HEAD.size + _CRC.size == HEADER_SIZE

START = MAGIC + bytes([VERSION])
"""The first bytes of every version-1 record: what a torn first record still starts with."""


def encode_header(seq: int, payload) -> bytes:
    """The 20-byte header of a record holding ``payload`` (bytes-like) under ``seq``.

    The caller has already checked ``seq`` and the payload's size; the header and the payload are
    then written back to back (kept apart so a batch is one ``join`` and no payload is copied twice).
    """
    head = _HEAD.pack(MAGIC, VERSION, FLAGS, len(payload), seq)
    return head + _CRC.pack(zlib.crc32(payload, zlib.crc32(head)))


def encode_record(seq: int, payload: bytes) -> bytes:
    """One whole record (header + payload); handy for tests and tools, ``append`` batches instead."""
    return encode_header(seq, payload) + bytes(payload)


def unpack_header(buf, pos: int = 0) -> tuple[bytes, int, int, int, int, int]:
    """``(magic, version, flags, length, seq, crc)`` from the 20 bytes at ``buf[pos:]``."""
    return _HEADER.unpack_from(buf, pos)


def record_crc(buf, pos: int, length: int) -> int:
    """The CRC a record at ``buf[pos:]`` with a ``length``-byte payload should carry."""
    view = memoryview(buf)
    head = view[pos : pos + _HEAD.size]
    body = view[pos + HEADER_SIZE : pos + HEADER_SIZE + length]
    return zlib.crc32(body, zlib.crc32(head))
