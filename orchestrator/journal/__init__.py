"""The per-node event journal (DESIGN §3 "Events", issue #5): durable, checksummed, append-only.

Why the orchestrator keeps one: events are relayed exactly once only if each is stored before it is
fanned out and acknowledged; after any crash the journal says what was stored (``last_seq``), and
it is what ``events --since`` replays. One small module per idea:

- ``record``: the on-disk record format (header, CRC, limits);
- ``scan``: reading records back, telling a torn tail from corruption;
- ``policy``: when to ``fdatasync`` (``always`` | ``batch:<ms>`` | ``never``) and what each risks;
- ``journal``: ``Journal`` (open = recover, append, read, close) and ``read_journal`` for readers;
- ``errors``: one exception per thing a caller handles differently.

Standard library only; importing it opens nothing.
"""

from .errors import (
    JournalClosedError,
    JournalCorruptError,
    JournalError,
    JournalFailedError,
    JournalLockedError,
    JournalVersionError,
    JournalWriteError,
    RecordTooLargeError,
    SequenceError,
)
from .journal import Journal, Recovery, journal_dir, journal_path, read_journal
from .policy import FsyncMode, FsyncPolicy
from .scan import JournalRecord

__all__ = [
    "FsyncMode",
    "FsyncPolicy",
    "Journal",
    "JournalClosedError",
    "JournalCorruptError",
    "JournalError",
    "JournalFailedError",
    "JournalLockedError",
    "JournalRecord",
    "JournalVersionError",
    "JournalWriteError",
    "RecordTooLargeError",
    "Recovery",
    "SequenceError",
    "journal_dir",
    "journal_path",
    "read_journal",
]
