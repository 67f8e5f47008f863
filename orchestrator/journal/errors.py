"""The exceptions of the journal: one class per thing the caller must handle differently.

Why so many: the orchestrator reacts differently to each. A ``SequenceError`` is a bug upstream
(duplicates must be dropped before ``append``) and the journal is unharmed; a ``JournalWriteError``
means this append stored nothing and may be retried; a ``JournalFailedError`` means the file's state
is unknown and only reopening it (recovery) can tell; a ``JournalCorruptError`` means the node must
not start until a person decides, so its message says which file, where, and what to do.
"""

from __future__ import annotations

import os


class JournalError(Exception):
    """Base class of everything the journal raises on purpose."""


class SequenceError(JournalError, ValueError):
    """``append`` was given a seq that is not strictly greater than the last one stored.

    Nothing of the refused call was written. ``seq`` is the offending number, ``last_seq`` the last
    one in the journal (or the previous one in the same batch).
    """

    def __init__(self, path: str | os.PathLike, seq: int, last_seq: int) -> None:
        self.path = os.fspath(path)
        self.seq = seq
        self.last_seq = last_seq
        super().__init__(
            f"journal {self.path}: seq {seq} refused, it must be greater than {last_seq} "
            "(duplicates must be dropped before they reach the journal); nothing was written"
        )


class RecordTooLargeError(JournalError, ValueError):
    """A payload is larger than the journal's record limit; nothing of the call was written."""


class JournalLockedError(JournalError):
    """Another open ``Journal`` (this process or another) already owns the file."""


class JournalClosedError(JournalError):
    """The journal was used after ``close()``."""


class JournalWriteError(JournalError):
    """An append could not be written; the file was put back as it was, nothing was stored."""


class JournalFailedError(JournalError):
    """A write or fsync failed in a way that leaves the file's durable state unknown.

    After a failed fsync the kernel may already have dropped the dirty pages (so retrying fsync
    can report success for data that is gone); the only honest answer is to stop appending and
    let recovery (close, then open again) establish what the file really holds.
    """


class JournalCorruptError(JournalError):
    """The file holds damage that is not a torn tail: recovery must not guess.

    ``offset`` is the byte offset of the first bad record, ``last_good_seq`` the seq of the record
    before it (0 if none), ``reason`` what was wrong with it, and ``next_valid_offset`` where a valid
    record was found after the damage (None when the damage itself is the reason, e.g. not a
    journal at all).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        offset: int,
        last_good_seq: int,
        reason: str,
        next_valid_offset: int | None = None,
        advice: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.offset = offset
        self.last_good_seq = last_good_seq
        self.reason = reason
        self.next_valid_offset = next_valid_offset
        after = "" if next_valid_offset is None else f", and valid records follow at byte {next_valid_offset}"
        if advice is None:
            advice = (
                f"the node's events after seq {last_good_seq} are in doubt. Restore {self.path} "
                "from a backup, or move it aside (the node then starts with an empty journal); to "
                f"keep the events up to seq {last_good_seq}, copy the file aside and truncate the "
                f"original to {offset} bytes (truncate -s {offset} {self.path})"
            )
        super().__init__(
            f"journal {self.path} is corrupt at byte offset {offset}: {reason}{after}; the last good "
            f"record is seq {last_good_seq}. It is not repaired automatically: {advice}"
        )


class JournalVersionError(JournalCorruptError):
    """A record written in a format version this code does not read (a newer orchestrator)."""
