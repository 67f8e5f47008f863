"""The write side of the SQLite store: one open transaction, and the outbox run it writes as one row.

A commit's outbox is a run of consecutive seqs, stored as one ``outbox`` row (schema module). The
transaction keeps it as columns when it came as columns (``append_outbox`` / ``append_outbox_run``,
the recorder's way), checked and packed by C calls, so a run of hundreds of events costs a few
microseconds; entries added one by one (``add_outbox``), or a mix, are kept as rows (sorted at commit
if they were added out of order).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from operator import itemgetter

from node.persistence.store.base import ACKED_COUNTER, RESERVED_COUNTERS, SEQ_COUNTER, StateTransaction
from node.persistence.store.checks import check_bytes, check_int64, check_text
from node.persistence.store.errors import (
    InvalidStateValueError,
    OutboxAckError,
    OutboxSequenceError,
    ReservedCounterError,
    TransactionClosedError,
)
from node.persistence.store.schema import insert_run

UPSERT_COUNTER = (
    "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


class SqliteTransaction(StateTransaction):
    """One open write transaction; the store commits or rolls it back."""

    __slots__ = (
        "_conn",
        "_closed",
        "_seq",
        "_allocated",
        "_unadded",
        "_run",
        "_ordered",
        "_columns",
        "_ack",
        "_path",
    )

    def __init__(self, conn: sqlite3.Connection, path: object = "?") -> None:
        self._conn = conn
        self._path = path  # the database file, for error messages
        self._closed = False
        self._seq: int | None = None  # last seq allocated here; None until one is
        self._allocated: list[int] = []  # by next_seq
        self._unadded: set[int] = set()  # allocated by next_seq, not in the outbox yet
        # The outbox run, written as one row by _finish: either the columns of a single
        # append_outbox call, (first_seq, topics, event_types, payloads), or entries
        # (seq, topic, event_type, payload) in the order added (_ordered: ascending so far).
        self._columns: tuple | None = None
        self._run: list[tuple] = []
        self._ordered = True
        self._ack: int | None = None  # the highest ack_outbox() seq, applied by _finish

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise TransactionClosedError(
                "this transaction has ended; open a new one with store.transaction()"
            )
        return self._conn

    def append_order_event(
        self, client_order_id: str, strategy_id: str, event_type: str, payload: bytes
    ) -> None:
        row = (
            check_text("client_order_id", client_order_id),
            check_text("strategy_id", strategy_id),
            check_text("event_type", event_type),
            check_bytes("payload", payload),
        )
        self._db().execute(
            "INSERT INTO order_events (client_order_id, strategy_id, event_type, payload) VALUES (?, ?, ?, ?)",
            row,
        )

    def append_position_fill(self, position_id: str, payload: bytes) -> None:
        row = (check_text("position_id", position_id), check_bytes("payload", payload))
        self._db().execute("INSERT INTO position_fills (position_id, payload) VALUES (?, ?)", row)

    def forget_order(self, client_order_id: str) -> None:
        row = (check_text("client_order_id", client_order_id),)
        self._db().execute("DELETE FROM order_events WHERE client_order_id = ?", row)

    def forget_position(self, position_id: str) -> None:
        row = (check_text("position_id", position_id),)
        self._db().execute("DELETE FROM position_fills WHERE position_id = ?", row)

    def put_account_state(self, account_id: str, payload: bytes) -> None:
        row = (check_text("account_id", account_id), check_bytes("payload", payload))
        self._db().execute("INSERT OR REPLACE INTO accounts (account_id, payload) VALUES (?, ?)", row)

    def put_strategy_state(self, strategy_id: str, state: Mapping[str, bytes]) -> None:
        sid = check_text("strategy_id", strategy_id)
        if not isinstance(state, Mapping):
            raise InvalidStateValueError(
                f"strategy state must be a dict[str, bytes], got {type(state).__name__}"
            )
        rows = [
            (sid, check_text("strategy state key", k), check_bytes(f"strategy state {k!r}", v))
            for k, v in state.items()
        ]
        db = self._db()
        db.execute("DELETE FROM strategy_state WHERE strategy_id = ?", (sid,))
        db.executemany("INSERT INTO strategy_state (strategy_id, key, value) VALUES (?, ?, ?)", rows)

    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        row = (check_text("namespace", namespace), check_text("key", key), check_bytes("value", value))
        self._db().execute("INSERT OR REPLACE INTO blobs (namespace, key, value) VALUES (?, ?, ?)", row)

    def delete_blob(self, namespace: str, key: str) -> None:
        row = (check_text("namespace", namespace), check_text("key", key))
        self._db().execute("DELETE FROM blobs WHERE namespace = ? AND key = ?", row)

    def set_counter(self, name: str, value: int) -> None:
        name = check_text("counter name", name)
        if name in RESERVED_COUNTERS:
            raise ReservedCounterError(
                f"counter {name!r} is managed by the store; use next_seq() / ack_outbox() to move it"
            )
        self._db().execute(UPSERT_COUNTER, (name, check_int64(f"counter {name!r}", value)))

    def _last_seq(self) -> int:
        """The last seq allocated (read from the store on first use)."""
        if self._seq is None:
            row = self._db().execute("SELECT value FROM counters WHERE name = ?", (SEQ_COUNTER,)).fetchone()
            self._seq = row[0] if row else 0
        return self._seq

    def next_seq(self) -> int:
        self._db()
        self._seq = seq = self._last_seq() + 1
        self._allocated.append(seq)
        self._unadded.add(seq)
        return seq

    def add_outbox(self, seq: int, topic: str, event_type: str, payload: bytes) -> None:
        self._db()
        if seq not in self._unadded:
            if seq in self._allocated:
                raise OutboxSequenceError(f"outbox seq {seq} added twice in one transaction")
            raise OutboxSequenceError(
                f"outbox seq {seq!r} was not allocated by this transaction's next_seq() "
                f"(allocated here: {self._allocated or 'none'})"
            )
        entry = (
            seq,
            check_text("topic", topic),
            check_text("event_type", event_type),
            check_bytes("payload", payload),
        )
        self._unadded.discard(seq)
        if self._columns is not None:
            self._unfold_columns()
        run = self._run
        if run and seq < run[-1][0]:
            self._ordered = False
        run.append(entry)

    def append_outbox(self, entries) -> None:
        """Checked as a run (see ``StateTransaction.append_outbox``) and kept as columns."""
        if type(entries) is not list:
            entries = list(entries)
        if not entries:
            return
        self._db()
        first = self._last_seq() + 1
        columns = _columns(entries, first)
        if columns is None:  # the fast checks failed: find the culprit, or normalise the values
            columns = _checked_columns(entries, first)
        self._add_columns(first, columns)

    def append_outbox_run(self, first_seq: int, topics, event_types, payloads) -> None:
        """The run as columns (see ``StateTransaction.append_outbox_run``), kept as they are.

        The common case, a commit whose whole outbox is one call (the recorder's), does no
        per-event work in Python: checking and packing the run are C calls.
        """
        # tuple(): a snapshot (the caller may reuse its lists); no copy if they are tuples already
        columns = (tuple(topics), tuple(event_types), tuple(payloads))
        n = len(columns[0])
        if len(columns[1]) != n or len(columns[2]) != n:
            raise InvalidStateValueError(
                f"outbox run columns of different lengths: {n}, {len(columns[1])}, {len(columns[2])}"
            )
        if not n:
            return
        self._db()
        first = self._last_seq() + 1
        if first_seq != first or type(first_seq) is not int:
            raise OutboxSequenceError(
                f"outbox seq {first_seq!r} does not continue the sequence (expected {first})"
            )
        if not _values_ok(*columns):
            columns = _checked_columns(list(zip(range(first, first + n), *columns, strict=True)), first)
        self._add_columns(first, columns)

    def _add_columns(self, first: int, columns: tuple) -> None:
        """Queue the checked run ``first..`` (its seqs are allocated here)."""
        n = len(columns[0])
        if self._run or self._columns is not None:
            self._unfold_columns()
            self._run.extend(zip(range(first, first + n), *columns, strict=True))
        else:
            self._columns = (first, *columns)
        self._seq = first + n - 1

    def _unfold_columns(self) -> None:
        if self._columns is not None:
            first, topics, event_types, payloads = self._columns
            self._columns = None
            self._run.extend(
                zip(range(first, first + len(topics)), topics, event_types, payloads, strict=True)
            )

    def ack_outbox(self, seq: int) -> None:
        seq = check_int64("ack seq", seq)
        self._db()
        if self._ack is None or seq > self._ack:
            self._ack = seq

    def _finish(self) -> None:
        """Before COMMIT: every allocated seq has its outbox entry; write the run; persist the last
        seq; apply the ack, if any."""
        if self._unadded:
            raise OutboxSequenceError(
                f"seq {sorted(self._unadded)} allocated but never added to the outbox; that would leave a "
                f"gap in the event sequence, so the transaction was rolled back"
            )
        if self._columns is not None:
            first, topics, event_types, payloads = self._columns
            last = first + len(topics) - 1
        elif self._run:
            run = self._run
            if not self._ordered:
                run.sort(key=_by_seq)
            first, last = run[0][0], run[-1][0]
            _, topics, event_types, payloads = zip(*run, strict=True)
        else:
            first = None
        if first is not None:
            # Every seq from the stored counter + 1 to self._seq was allocated here and is in the
            # run exactly once (add_outbox refuses the rest), so the run is contiguous.
            insert_run(self._conn, first, last, topics, event_types, payloads)
        if self._seq is not None:
            self._conn.execute(UPSERT_COUNTER, (SEQ_COUNTER, self._seq))
        if self._ack is not None:  # after the run: an ack may cover the seqs this commit issued
            apply_ack(self._conn, self._ack, self._path)


def apply_ack(conn: sqlite3.Connection, seq: int, path) -> None:
    """In the open write transaction: drop the outbox rows ``seq`` covers entirely.

    The acked counter rises to ``seq`` and hides the rest of a partly acked row. An ack of a seq
    never issued raises ``OutboxAckError`` (the caller rolls back); an older ack changes nothing.
    """
    values = dict(
        conn.execute("SELECT name, value FROM counters WHERE name IN (?, ?)", (SEQ_COUNTER, ACKED_COUNTER))
    )
    issued, acked = values.get(SEQ_COUNTER, 0), values.get(ACKED_COUNTER, 0)
    if seq > issued:
        raise OutboxAckError(
            f"ack of seq {seq} for state store {path}, but only {issued} events were ever "
            f"issued; the peer is acking another node's (or a newer store's) events"
        )
    if seq > acked:
        # first_seq <= seq bounds the scan by the primary key (rows never overlap, so last_seq
        # ascends with first_seq): only the rows deleted and one partly acked.
        conn.execute("DELETE FROM outbox WHERE first_seq <= ?1 AND last_seq <= ?1", (seq,))
        conn.execute(UPSERT_COUNTER, (ACKED_COUNTER, seq))


_by_seq = itemgetter(0)


def _columns(entries: list, first: int) -> tuple | None:
    """``(topics, event_types, payloads)`` of well-formed entries numbered from ``first``; else None.

    C calls only (zip, map, set): a run of hundreds of events costs a few microseconds.
    """
    try:
        seqs, topics, event_types, payloads = zip(*entries, strict=True)
    except (TypeError, ValueError):
        return None
    if seqs != tuple(range(first, first + len(seqs))) or not _values_ok(topics, event_types, payloads):
        return None
    return topics, event_types, payloads


def _values_ok(topics: tuple, event_types: tuple, payloads: tuple) -> bool:
    """Every topic and event type a non-empty plain str, every payload bytes (C calls, mostly)."""
    if len(set(map(type, payloads))) != 1 or type(payloads[0]) is not bytes:
        return False
    try:
        names = {*topics, *event_types}
    except TypeError:  # unhashable
        return False
    return all(type(name) is str and name for name in names)  # the distinct names: a handful


def _checked_columns(entries: list, first: int) -> tuple:
    """The columns of entries that failed :func:`_columns`: raises on the first bad one."""
    rows = []
    for i, entry in enumerate(entries):
        try:
            seq, topic, event_type, payload = entry
        except (TypeError, ValueError):
            raise InvalidStateValueError(
                f"an outbox entry is (seq, topic, event_type, payload), got {entry!r:.200}"
            ) from None
        if seq != first + i:
            raise OutboxSequenceError(
                f"outbox seq {seq!r} does not continue the sequence (expected {first + i})"
            )
        rows.append(
            (
                check_text("topic", topic),
                check_text("event_type", event_type),
                check_bytes("payload", payload),
            )
        )
    topics, event_types, payloads = zip(*rows, strict=True)
    return topics, event_types, payloads
