"""``Journal``: one node's append-only event file, opened by recovering it.

Why opening *is* recovery (crash-only design): there is no separate repair path to forget to run.
``Journal(path)`` validates every record, truncates a torn tail left by a crash, refuses to start
on damage anywhere else, and ends knowing ``last_seq``, which is what the orchestrator needs on its
own restart to drop duplicates a node resends.

Other choices:

- The file is opened ``O_APPEND`` and locked with ``flock``: a second owner (another orchestrator,
  or the same one opening it twice) gets ``JournalLockedError`` instead of interleaving records.
- Each append call is one ``write`` of all its records, so a crash cuts at most that call's tail.
  A failed write is rolled back with ``ftruncate``; a failed ``fdatasync`` leaves the journal
  *failed* (see ``JournalFailedError``) until it is reopened.
- Files are created 0600 in a 0700 directory: events carry orders and balances.
- Not thread-safe: one owner appends (the orchestrator's relay); ``fdatasync`` blocks the calling
  thread, so an async owner runs ``append`` in a worker thread or accepts the pause.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import record as fmt
from .errors import (
    JournalClosedError,
    JournalError,
    JournalFailedError,
    JournalLockedError,
    JournalWriteError,
    RecordTooLargeError,
    SequenceError,
)
from .policy import FsyncMode, FsyncPolicy
from .scan import JournalRecord, RecordReader, SparseIndex, iter_records, recover

logger = logging.getLogger(__name__)

SUFFIX = ".journal"
DIR_MODE = 0o700
FILE_MODE = 0o600
_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def journal_dir(state_dir: str | os.PathLike) -> Path:
    """Where the journals of a fleet live: ``<state_dir>/journal`` (``orchestrator.fleet.state_dir``)."""
    return Path(state_dir) / "journal"


def journal_path(state_dir: str | os.PathLike, node_id: str) -> Path:
    """``<state_dir>/journal/<node_id>.journal``; the node id must be a plain file name."""
    if not isinstance(node_id, str) or not _NODE_ID.fullmatch(node_id) or ".." in node_id:
        raise ValueError(
            f"node id {node_id!r} cannot name a journal file: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return journal_dir(state_dir) / f"{node_id}{SUFFIX}"


def _fdatasync(fd: int) -> None:
    # fdatasync also flushes the file size, all an append changes; fsync where it is missing.
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _private_dir(directory: Path) -> bool:
    """Create ``directory`` (mode 0700) if missing, tighten it if ours and looser; True if created."""
    try:
        directory.mkdir(mode=DIR_MODE, parents=True)
        created = True
    except FileExistsError:
        created = False
    st = directory.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise JournalError(f"journal directory {directory} exists and is not a directory")
    if stat.S_IMODE(st.st_mode) != DIR_MODE and st.st_uid == os.getuid():
        os.chmod(directory, DIR_MODE)
    return created


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (the file's own fsync does not cover its name)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Recovery:
    """What opening found: ``records`` kept, and the torn tail (if any) that was cut off."""

    records: int
    last_seq: int
    truncated_bytes: int
    reason: str


class Journal:
    """One node's journal: ``append``/``append_batch``, ``read_from``, ``last_seq``, ``close``.

    ``Journal(path, fsync="always")`` opens (creating the file and its directory if needed) and
    recovers it; see the module docstring. ``fsync`` is an ``FsyncPolicy`` or its text form
    (``"always"``, ``"batch:<ms>"``, ``"never"``); ``max_payload_bytes`` bounds one record;
    ``clock`` (monotonic seconds) is only there so tests can drive the ``batch`` interval.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fsync: str | FsyncPolicy = "always",
        max_payload_bytes: int = fmt.MAX_PAYLOAD_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = FsyncPolicy.parse(fsync)
        if not 0 < max_payload_bytes <= fmt.MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"max_payload_bytes must be in 1..{fmt.MAX_PAYLOAD_BYTES}, got {max_payload_bytes}"
            )
        self._max_payload = max_payload_bytes
        self._clock = clock
        self._path = Path(path)
        self._fd: int | None = None
        self._failed: str | None = None
        syncing = self._policy.mode is not FsyncMode.NEVER

        dir_created = _private_dir(self._path.parent)
        if dir_created and syncing:
            _fsync_dir(self._path.parent.parent)
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(self._path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
            created = True
        except FileExistsError:
            fd = os.open(self._path, flags)
            created = False
        try:
            self._recovery, self._index, self._count, size = self._open_fd(fd, created, syncing)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._size = size
        self._last_seq = self._recovery.last_seq
        self._durable_seq = self._last_seq
        self._dirty = False
        self._last_sync = clock()

    def _open_fd(self, fd: int, created: bool, syncing: bool) -> tuple[Recovery, SparseIndex, int, int]:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise JournalError(f"journal {self._path} is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalLockedError(
                f"journal {self._path} is already open (another orchestrator, or this one twice); "
                "only one owner may append to it"
            ) from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
        if created and syncing:
            _fsync_dir(self._path.parent)
        reader = RecordReader(
            lambda off, n: os.pread(fd, n, off), st.st_size, str(self._path), self._max_payload
        )
        scan = recover(reader)
        cut = st.st_size - scan.good_end
        if cut:
            logger.warning(
                "journal %s: torn tail of %d bytes at offset %d (%s) truncated; last seq is %d",
                self._path,
                cut,
                scan.good_end,
                scan.tail_reason,
                scan.last_seq,
            )
            os.ftruncate(fd, scan.good_end)
            if syncing:
                _fdatasync(fd)
        recovery = Recovery(scan.count, scan.last_seq, cut, scan.tail_reason)
        return recovery, scan.index, scan.count, scan.good_end

    # -- properties ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def policy(self) -> FsyncPolicy:
        return self._policy

    @property
    def last_seq(self) -> int:
        """The seq of the last record stored (0 for an empty journal); ``append`` needs more."""
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        """The last seq known to be on disk (fdatasync done); equals ``last_seq`` under ``always``."""
        return self._durable_seq

    @property
    def record_count(self) -> int:
        return self._count

    @property
    def size(self) -> int:
        """Bytes in the file (all of them valid records)."""
        return self._size

    @property
    def recovery(self) -> Recovery:
        """What opening found (records kept, torn-tail bytes cut off and why)."""
        return self._recovery

    @property
    def closed(self) -> bool:
        return self._fd is None

    # -- appending -----------------------------------------------------------------------------

    def append(self, seq: int, payload) -> int:
        """Store one record; returns ``seq``. See ``append_batch``."""
        return self.append_batch(((seq, payload),))

    def append_batch(self, records: Iterable[tuple[int, bytes]]) -> int:
        """Store ``(seq, payload)`` records with one ``write``; returns the new ``last_seq``.

        All-or-nothing as far as the caller can see: every seq must be an int greater than the one
        before it (``SequenceError``) and every payload bytes-like and within the size limit
        (``RecordTooLargeError``), checked before anything is written; a failed write is undone
        (``JournalWriteError``). Under the ``always`` policy it returns after ``fdatasync``.
        """
        fd = self._usable_fd()
        parts: list = []
        offsets: list[tuple[int, int, int]] = []
        previous = self._last_seq
        position = self._size
        for seq, payload in records:
            if isinstance(seq, bool) or not isinstance(seq, int):
                raise TypeError(f"journal {self._path}: seq must be an int, got {seq!r}")
            if seq <= previous:
                raise SequenceError(self._path, seq, previous)
            if seq > fmt.MAX_SEQ:
                raise ValueError(f"journal {self._path}: seq {seq} does not fit in 64 bits")
            if not isinstance(payload, bytes):
                try:
                    payload = memoryview(payload).tobytes()  # any buffer, counted in bytes
                except TypeError:
                    raise TypeError(
                        f"journal {self._path}: payload must be bytes-like, got {type(payload).__name__}"
                    ) from None
            length = len(payload)
            if length > self._max_payload:
                raise RecordTooLargeError(
                    f"journal {self._path}: payload of seq {seq} is {length} bytes, over the "
                    f"{self._max_payload}-byte limit; nothing was written"
                )
            parts.append(fmt.encode_header(seq, payload))
            parts.append(payload)
            offsets.append((seq, position, previous))
            position += fmt.HEADER_SIZE + length
            previous = seq
        if not offsets:
            return self._last_seq
        self._write_all(fd, b"".join(parts))
        for seq, offset, before in offsets:
            self._index.note(self._count, seq, offset, before)
            self._count += 1
        self._size = position
        self._last_seq = previous
        self._dirty = True
        if self._policy.mode is FsyncMode.ALWAYS or (
            self._policy.mode is FsyncMode.BATCH and self._interval_elapsed()
        ):
            self._sync(fd)
        return previous

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                written = os.write(fd, view[done:])
                if written <= 0:
                    raise OSError(errno.EIO, "write stored no bytes")
                done += written
        except OSError as exc:
            try:
                os.ftruncate(fd, self._size)
            except OSError as undo:
                self._failed = f"a write failed ({exc}) and could not be undone ({undo})"
                raise JournalFailedError(
                    f"journal {self._path}: {self._failed}; the file may end in a partial record: "
                    "close it and open it again (recovery truncates the torn tail)"
                ) from exc
            raise JournalWriteError(
                f"journal {self._path}: write failed ({exc}); nothing of this append was stored "
                f"(last seq is still {self._last_seq})"
            ) from exc

    # -- syncing -------------------------------------------------------------------------------

    def _interval_elapsed(self) -> bool:
        return (self._clock() - self._last_sync) * 1000.0 >= self._policy.interval_ms

    def _sync(self, fd: int) -> None:
        try:
            _fdatasync(fd)
        except OSError as exc:
            self._failed = f"fdatasync failed ({exc})"
            raise JournalFailedError(
                f"journal {self._path}: {self._failed}; records after seq {self._durable_seq} may "
                "not be on disk and retrying cannot tell: close it and open it again"
            ) from exc
        self._durable_seq = self._last_seq
        self._dirty = False
        self._last_sync = self._clock()

    def sync(self) -> None:
        """``fdatasync`` now if anything was appended since the last one (any policy)."""
        fd = self._usable_fd()
        if self._dirty:
            self._sync(fd)

    def sync_if_due(self) -> bool:
        """Under ``batch``: sync if data is pending and the interval has passed; True if it synced.

        The owner calls this from a timer (every ``interval_ms`` or so) so that the last appends
        before a quiet period reach the disk without waiting for the next append.
        """
        fd = self._usable_fd()
        if self._policy.mode is FsyncMode.BATCH and self._dirty and self._interval_elapsed():
            self._sync(fd)
            return True
        return False

    # -- reading -------------------------------------------------------------------------------

    def read_from(self, since: int = 1) -> Iterator[JournalRecord]:
        """The records with seq >= ``since``, in order, as ``JournalRecord(seq, payload)``.

        Covers what was stored when the call was made (later appends are not included). Every
        record's checksum is verified again; damage found now raises ``JournalCorruptError``.
        Using the iterator after ``close()`` raises ``JournalClosedError``.
        """
        self._open_fd_or_raise()
        start, before = self._index.start(since)
        reader = RecordReader(self._pread, self._size, str(self._path), self._max_payload)
        return iter_records(reader, start, since, strict=True, last_seq=before)

    def _pread(self, offset: int, n: int) -> bytes:
        return os.pread(self._open_fd_or_raise(), n, offset)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Sync (unless the policy is ``never``) and close; idempotent. The lock goes with the fd."""
        fd = self._fd
        if fd is None:
            return
        try:
            if self._dirty and self._failed is None and self._policy.mode is not FsyncMode.NEVER:
                self._sync(fd)
        finally:
            self._fd = None
            os.close(fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else ("failed" if self._failed else "open")
        return f"<Journal {str(self._path)!r} {state} last_seq={self._last_seq} fsync={self._policy}>"

    # -- helpers -------------------------------------------------------------------------------

    def _open_fd_or_raise(self) -> int:
        if self._fd is None:
            raise JournalClosedError(f"journal {self._path} is closed")
        return self._fd

    def _usable_fd(self) -> int:
        fd = self._open_fd_or_raise()
        if self._failed is not None:
            raise JournalFailedError(
                f"journal {self._path}: refusing to append after {self._failed}; close it and open it again"
            )
        return fd


def read_journal(path: str | os.PathLike, since: int = 1) -> Iterator[JournalRecord]:
    """Records with seq >= ``since`` from a journal file, without opening it for writing.

    For readers outside the owner (``events --since`` from another process, tools): no lock, no
    truncation, safe while the orchestrator appends. A bad record with nothing valid after it is
    taken as a write in progress (or a torn tail the owner will cut) and ends the iteration;
    damage followed by valid records, or a file that does not start like a journal, raises
    ``JournalCorruptError`` (once the records before the damage have been yielded).
    ``FileNotFoundError`` if there is no journal.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def records() -> Iterator[JournalRecord]:
        try:
            size = os.fstat(fd).st_size
            reader = RecordReader(
                lambda off, n: os.pread(fd, n, off), size, os.fspath(path), fmt.MAX_PAYLOAD_BYTES
            )
            yield from iter_records(reader, 0, since, strict=False)
        finally:
            os.close(fd)

    return records()
