"""Errors of the node state store.

Each failure has its own class so start-up can tell "the file is damaged, a human must act" (never
start) from "another process holds it" (a second node on the same state dir) from a programming error
in the code that writes state (a transaction used after it ended, a sequence number skipped). All
derive from ``StateStoreError`` so a host can catch the family, and every message that concerns a
file names it and says what to do.
"""

from __future__ import annotations

from pathlib import Path


class StateStoreError(Exception):
    """Base of every state-store error."""


class StateStoreOpenError(StateStoreError):
    """The store file cannot be opened at all (permissions, a directory in its place, a bad path)."""

    def __init__(self, path: Path | str, detail: str) -> None:
        self.path = Path(path)
        self.detail = detail
        super().__init__(
            f"cannot open node state store {self.path}: {detail}; check that the state dir exists, "
            f"is writable by this user and that the path names a file"
        )


class StateStoreCorruptError(StateStoreError):
    """The file is not a usable state store: damaged, truncated, not SQLite, or not ours.

    Fail fast: a node that started on half its state would trade on a wrong picture of its orders and
    positions, which is worse than not trading.
    """

    def __init__(self, path: Path | str, detail: str) -> None:
        self.path = Path(path)
        self.detail = detail
        super().__init__(
            f"node state store {self.path} is corrupt or not a state store ({detail}); the node will not "
            f"start on it. Move the file (and any {self.path.name}-wal / -shm beside it) aside and keep it "
            f"for diagnosis, then either restore a backup or start with an empty store and let "
            f"reconciliation with the venue rebuild open orders and positions"
        )


class StateStoreSchemaError(StateStoreCorruptError):
    """A healthy SQLite file written by a newer (unknown) schema version: refuse rather than guess."""


class StateStoreLockedError(StateStoreError):
    """Another store (in this or another process) has the file open: one node per state dir."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(
            f"node state store {self.path} is in use by another process or another store in this "
            f"process; only one node may use a state dir at a time. Stop the other node (or give this "
            f"one its own state dir)"
        )


class StateStoreWriteError(StateStoreError):
    """A write transaction failed in SQLite or below it (a full disk, an I/O error): rolled back.

    Raised out of a running node's commit, it ends the node (``node.live.recorder``), which then
    restarts from the last commit that succeeded; the message names the file for the operator.
    """

    def __init__(self, path: Path | str, detail: str) -> None:
        self.path = Path(path)
        self.detail = detail
        super().__init__(
            f"node state store {self.path}: a write failed ({detail}); nothing of it was stored. "
            "Check the disk that holds it (free space, errors)"
        )


class StateStoreClosedError(StateStoreError):
    """An operation on a store that was closed."""


class TransactionError(StateStoreError):
    """Misuse of a transaction (programming error in the writer); the transaction is rolled back."""


class TransactionClosedError(TransactionError):
    """A transaction object used after its ``with`` block ended."""


class NestedTransactionError(TransactionError):
    """``transaction()`` entered while another transaction of the same store is open."""


class OutboxSequenceError(TransactionError):
    """An outbox entry whose seq was not allocated by this transaction, or an allocated seq left out.

    Both would leave a gap or a duplicate in the node's event sequence, which the orchestrator's
    journal treats as data loss.
    """


class ReservedCounterError(TransactionError):
    """``set_counter`` on a name the store manages itself (the event sequence number)."""


class InvalidStateValueError(StateStoreError, ValueError):
    """A value of the wrong type or range given to the store (e.g. str where bytes belong)."""


class OutboxAckError(StateStoreError):
    """An ack beyond the last sequence number ever issued: the peer acks events that do not exist."""


class CodecError(StateStoreError, ValueError):
    """Bytes that do not decode to a model event (unknown type, missing field, bad value)."""
