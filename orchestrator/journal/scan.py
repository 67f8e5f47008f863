"""Reading records back: the recovery scan on open, and iteration for ``read_from``.

Why recovery needs more than "stop at the first bad record": a bad record can be a write that was
cut short (normal after a crash: truncate it) or damage in the middle of the file (never normal:
truncating there would silently drop every later event). The two are told apart by looking past
the bad record: if any valid record follows it, the damage is in the middle and the journal is
corrupt; if none does, it is a torn tail. Searching for a following record (by its magic, then
checking its CRC) rather than trusting the bad record's own length matters because a corrupt
length field is one of the things being detected.

Two guards keep "torn tail" from ever meaning "wipe a file that is not ours to wipe":

- a record whose magic is right but whose version is unknown (a newer orchestrator wrote it)
  raises ``JournalVersionError`` instead of being treated as torn;
- if the very first record is bad and the file does not start like a journal record (nor with the
  zeros a crash can leave), the file is not a journal: ``JournalCorruptError``, nothing truncated.

Reads go through one large ``pread`` window: no shared file offset (the writer's fd uses
``O_APPEND``, and two readers may interleave), and few system calls per record.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from . import record as fmt
from .errors import JournalCorruptError, JournalVersionError

WINDOW_BYTES = 1024 * 1024
INDEX_STRIDE = 1024
"""One (seq, offset) index entry every this many records: ``read_from`` starts near its seq."""

VALID = "valid"
SHORT = "short"  # the record would run past the end of the scanned range
INVALID = "invalid"
NEWER = "newer"  # a well-formed header of a format version this code does not read


class JournalRecord(NamedTuple):
    """One record as read back: its seq and its payload bytes, exactly as appended."""

    seq: int
    payload: bytes


class Parsed(NamedTuple):
    status: str
    seq: int
    payload: bytes | None
    end: int
    reason: str


@dataclass
class SparseIndex:
    """Seq -> byte offset of every ``INDEX_STRIDE``-th record, to start a replay near its seq."""

    seqs: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    previous: list[int] = field(default_factory=list)

    def note(self, ordinal: int, seq: int, offset: int, previous_seq: int) -> None:
        """Record the ``ordinal``-th record (0-based) if it falls on the stride."""
        if ordinal % INDEX_STRIDE == 0:
            self.seqs.append(seq)
            self.offsets.append(offset)
            self.previous.append(previous_seq)

    def start(self, since: int) -> tuple[int, int]:
        """``(offset, seq before it)``: a record at or before the first one with seq >= ``since``."""
        i = bisect.bisect_right(self.seqs, since) - 1
        return (self.offsets[i], self.previous[i]) if i >= 0 else (0, 0)


class RecordReader:
    """Parses records in ``[0, end)`` of a file through a ``pread`` window.

    ``read(offset, n)`` is the only access to the file (so the owner can refuse reads after
    close: a closed fd number may already belong to another file).
    """

    def __init__(self, read: Callable[[int, int], bytes], end: int, path: str, max_payload: int) -> None:
        self._read = read
        self.end = end
        self.path = path
        self._max_payload = max_payload
        self._start = 0
        self._buf = b""

    def _ensure(self, offset: int, n: int) -> int | None:
        """Make ``[offset, offset + n)`` available in the window; its position there, or None."""
        if offset + n > self.end:
            return None
        rel = offset - self._start
        if 0 <= rel and rel + n <= len(self._buf):
            return rel
        want = min(max(n, WINDOW_BYTES), self.end - offset)
        chunks = []
        got = 0
        while got < want:
            chunk = self._read(offset + got, want - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        self._buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._start = offset
        return 0 if len(self._buf) >= n else None

    def view(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end of the range)."""
        n = min(n, self.end - offset)
        if n <= 0:
            return b""
        rel = self._ensure(offset, n)
        return b"" if rel is None else self._buf[rel : rel + n]

    def parse(self, offset: int) -> Parsed:
        """The record at ``offset``: VALID, SHORT (runs past the end), INVALID (with why) or NEWER."""
        rel = self._ensure(offset, fmt.HEADER_SIZE)
        if rel is None:
            return Parsed(SHORT, 0, None, self.end, "incomplete header")
        magic, version, flags, length, seq, crc = fmt.unpack_header(self._buf, rel)
        if magic != fmt.MAGIC:
            return Parsed(INVALID, 0, None, offset, "bad magic")
        if version != fmt.VERSION:
            if version == 0:  # zero-filled by a crash, not a format
                return Parsed(INVALID, 0, None, offset, "bad version 0")
            return Parsed(NEWER, 0, None, offset, f"record format version {version}")
        if flags != fmt.FLAGS:
            return Parsed(INVALID, 0, None, offset, f"bad flags {flags}")
        if length > self._max_payload:
            return Parsed(INVALID, 0, None, offset, f"impossible length {length}")
        end = offset + fmt.HEADER_SIZE + length
        rel = self._ensure(offset, fmt.HEADER_SIZE + length)
        if rel is None:
            return Parsed(SHORT, seq, None, self.end, f"length {length} runs past the end of the file")
        if fmt.record_crc(self._buf, rel, length) != crc:
            return Parsed(INVALID, seq, None, offset, "checksum mismatch")
        if seq == 0:
            return Parsed(INVALID, seq, None, offset, "seq 0")
        start = rel + fmt.HEADER_SIZE
        return Parsed(VALID, seq, self._buf[start : start + length], end, "")

    def find_valid_after(self, offset: int) -> int | None:
        """The offset of the first valid record starting after ``offset``, or None."""
        pos = offset + 1
        step = len(fmt.MAGIC) - 1
        while pos + fmt.HEADER_SIZE <= self.end:
            chunk = self.view(pos, WINDOW_BYTES)
            i = chunk.find(fmt.MAGIC)
            if i < 0:
                pos += max(len(chunk) - step, 1)
                continue
            candidate = pos + i
            if self.parse(candidate).status in (VALID, NEWER):  # damage before either is no tail
                return candidate
            pos = candidate + 1
        return None


def newer_version(path: str, offset: int, last_seq: int, reason: str) -> JournalVersionError:
    return JournalVersionError(
        path,
        offset,
        last_seq,
        f"{reason} (this code reads version {fmt.VERSION})",
        advice="it was written by a newer orchestrator; open it with that version, or move it aside",
    )


def not_a_journal(path: str) -> JournalCorruptError:
    return JournalCorruptError(
        path,
        0,
        0,
        "the file does not start with a journal record",
        advice="it is not a journal file (or its first record was overwritten); check the path, "
        "restore it from a backup, or move it aside",
    )


def looks_like_start(head: bytes) -> bool:
    """Whether bytes at offset 0 could be a torn first record: the start of one, then zeros if anything.

    (A crash can leave zeros where data never reached the disk; nothing else writes to a journal.)
    """
    limit = min(len(head), len(fmt.START))
    k = 0
    while k < limit and head[k] == fmt.START[k]:
        k += 1
    return k == limit or not head[k : fmt.HEADER_SIZE].strip(b"\0")


@dataclass
class ScanResult:
    """What the recovery scan found: the good prefix, and the torn tail after it (if any)."""

    good_end: int
    last_seq: int
    count: int
    index: SparseIndex
    tail_reason: str


def recover(reader: RecordReader) -> ScanResult:
    """Validate every record of the file; say where the good prefix ends.

    Raises ``JournalCorruptError`` for damage that is not a torn tail (see the module docstring);
    never modifies the file: the caller truncates to ``good_end``.
    """
    offset = 0
    last_seq = 0
    count = 0
    index = SparseIndex()
    while offset < reader.end:
        parsed = reader.parse(offset)
        if parsed.status == NEWER:
            raise newer_version(reader.path, offset, last_seq, parsed.reason)
        if parsed.status == VALID:
            if parsed.seq <= last_seq:
                raise JournalCorruptError(
                    reader.path, offset, last_seq, f"seq {parsed.seq} does not follow seq {last_seq}"
                )
            index.note(count, parsed.seq, offset, last_seq)
            last_seq = parsed.seq
            count += 1
            offset = parsed.end
            continue
        later = reader.find_valid_after(offset)
        if later is not None:
            raise JournalCorruptError(reader.path, offset, last_seq, parsed.reason, later)
        if offset == 0 and not looks_like_start(reader.view(0, fmt.HEADER_SIZE)):
            raise not_a_journal(reader.path)
        return ScanResult(offset, last_seq, count, index, parsed.reason)
    return ScanResult(offset, last_seq, count, index, "")


def iter_records(
    reader: RecordReader, start: int, since: int, *, strict: bool, last_seq: int = 0
) -> Iterator[JournalRecord]:
    """Records from byte ``start`` to ``reader.end`` whose seq is >= ``since``, in order.

    ``strict`` (the owner's own, already recovered file): any bad record is corruption. Otherwise
    (a file another process may be appending to) a bad record with nothing valid after it is an
    unfinished tail and ends the iteration quietly, unless it is at byte 0 and does not even start
    like a record (the rule ``recover`` applies): then the file is no journal, and a reader that
    printed nothing and said nothing would hide what ``up`` refuses. ``last_seq`` is the seq
    before ``start`` (0 when ``start`` is 0), for ordering checks and error messages.
    """
    offset = start
    while offset < reader.end:
        parsed = reader.parse(offset)
        if parsed.status == NEWER:
            raise newer_version(reader.path, offset, last_seq, parsed.reason)
        if parsed.status != VALID:
            later = None if strict else reader.find_valid_after(offset)
            if strict or later is not None:
                raise JournalCorruptError(reader.path, offset, last_seq, parsed.reason, later)
            if offset == 0 and not looks_like_start(reader.view(0, fmt.HEADER_SIZE)):
                raise not_a_journal(reader.path)
            return
        if parsed.seq <= last_seq:
            raise JournalCorruptError(
                reader.path, offset, last_seq, f"seq {parsed.seq} does not follow seq {last_seq}"
            )
        last_seq = parsed.seq
        offset = parsed.end
        if parsed.seq >= since:
            yield JournalRecord(parsed.seq, parsed.payload)
