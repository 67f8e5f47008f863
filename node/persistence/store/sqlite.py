"""SqliteStateStore: the embedded default backend, one SQLite file per node, no server.

Choices and why:

* **WAL journal**: a commit appends to the write-ahead log, so a kill -9 at any instant leaves either
  the whole transaction or none of it; readers never see half a write.
* **synchronous=FULL by default**: every commit is fsynced, so it also survives a power cut. NORMAL
  (configurable) survives a process crash but may lose the last commits on power loss; it is several
  times faster. OFF is refused: it gives up the guarantee this store exists for.
* **locking_mode=EXCLUSIVE**: the file stays locked while the store is open, so a second node (or a
  second store in this process) on the same state dir fails at once with ``StateStoreLockedError``
  rather than interleaving writes. The OS drops the lock when a process dies, so a restart after
  kill -9 is not blocked. It also keeps the WAL index in process memory (no -shm file).
* **quick_check on open**: fail fast on a damaged file; the node must not start on half its state.
* **One connection per store, guarded by a lock**: stores share nothing (no module-level state), and
  a relay thread may read the outbox while the kernel thread writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path

from node.persistence.store.base import (
    ACKED_COUNTER,
    INT64_MAX,
    RESERVED_COUNTERS,
    SEQ_COUNTER,
    LoadedState,
    OutboxEntry,
    StateStore,
    StateTransaction,
    StoredEvent,
    StoredFill,
    StoredOrder,
)
from node.persistence.store.errors import (
    InvalidStateValueError,
    NestedTransactionError,
    OutboxAckError,
    OutboxSequenceError,
    ReservedCounterError,
    StateStoreClosedError,
    StateStoreCorruptError,
    StateStoreLockedError,
    StateStoreOpenError,
    StateStoreSchemaError,
    TransactionClosedError,
)
from node.persistence.store.schema import (
    APPLICATION_ID,
    MIGRATE_V1_RUN,
    OUTBOX_V2,
    SCHEMA,
    SCHEMA_VERSION,
    pack_run,
    unpack_run,
)

SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
WAL_AUTOCHECKPOINT_PAGES = 64
OUTBOX_PAGE = 64  # rows (runs of events) fetched per lock acquisition while iterating the outbox

# The rows holding events above ?1, by first_seq: from the last row starting at or below ?1 (it may
# reach above), found by the primary key, so nothing before it is scanned.
_OUTBOX_PAGE_QUERY = (
    "SELECT first_seq, last_seq, events FROM outbox WHERE first_seq >= coalesce("
    "(SELECT first_seq FROM outbox WHERE first_seq <= ?1 ORDER BY first_seq DESC LIMIT 1), 0) "
    "AND last_seq > ?1 ORDER BY first_seq LIMIT ?2"
)

_UPSERT_COUNTER = (
    "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


# -- value checks (at the boundary, so a bad value fails where it is written, not at load) ----------


def _text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidStateValueError(f"{what} must be a non-empty str, got {type(value).__name__} {value!r}")
    return str.__str__(value)  # identifiers are str subclasses: store the plain string


def _bytes(what: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidStateValueError(f"{what} must be bytes, got {type(value).__name__}; encode it first")


def _int64(what: str, value: object, minimum: int = 0) -> int:
    if type(value) is not int or not minimum <= value <= INT64_MAX:
        raise InvalidStateValueError(f"{what} must be an int in {minimum}..2**63-1, got {value!r}")
    return value


def _classify(path: Path, exc: sqlite3.Error) -> Exception:
    """Map a sqlite3 error met while opening to the store's specific error."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StateStoreLockedError(path)
    if "unable to open" in lowered or "readonly" in lowered or "permission" in lowered:
        return StateStoreOpenError(path, text)
    return StateStoreCorruptError(path, text)


class _SqliteTransaction(StateTransaction):
    """One open write transaction; the store commits or rolls it back."""

    __slots__ = ("_conn", "_closed", "_seq", "_allocated", "_unadded", "_run", "_ordered", "_columns")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
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
            _text("client_order_id", client_order_id),
            _text("strategy_id", strategy_id),
            _text("event_type", event_type),
            _bytes("payload", payload),
        )
        self._db().execute(
            "INSERT INTO order_events (client_order_id, strategy_id, event_type, payload) VALUES (?, ?, ?, ?)",
            row,
        )

    def append_position_fill(self, position_id: str, payload: bytes) -> None:
        row = (_text("position_id", position_id), _bytes("payload", payload))
        self._db().execute("INSERT INTO position_fills (position_id, payload) VALUES (?, ?)", row)

    def forget_order(self, client_order_id: str) -> None:
        row = (_text("client_order_id", client_order_id),)
        self._db().execute("DELETE FROM order_events WHERE client_order_id = ?", row)

    def forget_position(self, position_id: str) -> None:
        row = (_text("position_id", position_id),)
        self._db().execute("DELETE FROM position_fills WHERE position_id = ?", row)

    def put_account_state(self, account_id: str, payload: bytes) -> None:
        row = (_text("account_id", account_id), _bytes("payload", payload))
        self._db().execute("INSERT OR REPLACE INTO accounts (account_id, payload) VALUES (?, ?)", row)

    def put_strategy_state(self, strategy_id: str, state: Mapping[str, bytes]) -> None:
        sid = _text("strategy_id", strategy_id)
        if not isinstance(state, Mapping):
            raise InvalidStateValueError(
                f"strategy state must be a dict[str, bytes], got {type(state).__name__}"
            )
        rows = [
            (sid, _text("strategy state key", k), _bytes(f"strategy state {k!r}", v))
            for k, v in state.items()
        ]
        db = self._db()
        db.execute("DELETE FROM strategy_state WHERE strategy_id = ?", (sid,))
        db.executemany("INSERT INTO strategy_state (strategy_id, key, value) VALUES (?, ?, ?)", rows)

    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        row = (_text("namespace", namespace), _text("key", key), _bytes("value", value))
        self._db().execute("INSERT OR REPLACE INTO blobs (namespace, key, value) VALUES (?, ?, ?)", row)

    def delete_blob(self, namespace: str, key: str) -> None:
        row = (_text("namespace", namespace), _text("key", key))
        self._db().execute("DELETE FROM blobs WHERE namespace = ? AND key = ?", row)

    def set_counter(self, name: str, value: int) -> None:
        name = _text("counter name", name)
        if name in RESERVED_COUNTERS:
            raise ReservedCounterError(
                f"counter {name!r} is managed by the store; use next_seq() / ack_outbox() to move it"
            )
        self._db().execute(_UPSERT_COUNTER, (name, _int64(f"counter {name!r}", value)))

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
        entry = (seq, _text("topic", topic), _text("event_type", event_type), _bytes("payload", payload))
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

    def _finish(self) -> None:
        """Before COMMIT: every allocated seq has its outbox entry; write the run; persist the last seq."""
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
            self._conn.execute(
                "INSERT INTO outbox (first_seq, last_seq, events) VALUES (?, ?, ?)",
                (first, last, pack_run(topics, event_types, payloads)),
            )
        if self._seq is not None:
            self._conn.execute(_UPSERT_COUNTER, (SEQ_COUNTER, self._seq))


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
        rows.append((_text("topic", topic), _text("event_type", event_type), _bytes("payload", payload)))
    topics, event_types, payloads = zip(*rows, strict=True)
    return topics, event_types, payloads


class SqliteStateStore(StateStore):
    """A node's state in one SQLite file (created on first use, with its parent directory).

    ``synchronous``: ``"FULL"`` (default, survives power loss), ``"EXTRA"`` or ``"NORMAL"`` (survives a
    process crash only). ``check_integrity``: run ``PRAGMA quick_check`` on open (default True).
    ``lock_timeout``: seconds to wait for a file another store holds before ``StateStoreLockedError``.

    Raises on open: ``StateStoreOpenError``, ``StateStoreCorruptError`` (``StateStoreSchemaError``),
    ``StateStoreLockedError``.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "FULL",
        check_integrity: bool = True,
        lock_timeout: float = 1.0,
    ) -> None:
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS_MODES:
            raise InvalidStateValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous!r}"
            )
        self.path = Path(path)
        self.synchronous = mode
        self._lock = threading.RLock()
        self._tx: _SqliteTransaction | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(check_integrity, lock_timeout)

    # -- opening --------------------------------------------------------------------------------

    def _open(self, check_integrity: bool, lock_timeout: float) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise StateStoreOpenError(path, "it is a directory")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateStoreOpenError(path, f"cannot create its directory: {exc}") from exc
        try:
            conn = sqlite3.connect(path, timeout=lock_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _classify(path, exc) from exc
        try:
            self._configure(conn, check_integrity)
        except sqlite3.Error as exc:
            conn.close()
            raise _classify(path, exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection, check_integrity: bool) -> None:
        # Order matters: EXCLUSIVE before WAL keeps the WAL index in process memory (no -shm).
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateStoreOpenError(self.path, f"cannot switch to WAL journal mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        # A short WAL: opening after a crash re-reads the whole WAL to rebuild its index (it lives in
        # process memory under EXCLUSIVE), and that is on a node's restart path. 64 pages (256 KiB)
        # instead of 1000 made the open of a crashed store ~1 ms faster; the checkpoints it costs
        # run in the recorder's writer thread.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        # Take the write lock now, so a second opener fails here and not on its first write.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if check_integrity:
                problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise StateStoreCorruptError(self.path, "integrity check failed: " + "; ".join(problems))
            self._ensure_schema(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and version == 0 and tables == 0:  # a new (or empty) file: make it ours
            # statement by statement: executescript() would COMMIT the open transaction first
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        if app_id != APPLICATION_ID:
            raise StateStoreCorruptError(
                self.path, f"an SQLite file of another application (application_id {app_id:#x})"
            )
        if version == 1:
            self._migrate_v1(conn)
        elif version > SCHEMA_VERSION:
            raise StateStoreSchemaError(
                self.path,
                f"schema version {version}, this node reads version {SCHEMA_VERSION}; a newer node wrote it",
            )
        elif version != SCHEMA_VERSION:
            raise StateStoreSchemaError(
                self.path, f"schema version {version}, this node reads versions 1 to {SCHEMA_VERSION}"
            )

    @staticmethod
    def _migrate_v1(conn: sqlite3.Connection) -> None:
        """Version 1 -> 2: the outbox's one row per event becomes one row per run (schema module).

        Runs of consecutive seqs, at most ``MIGRATE_V1_RUN`` events each. Inside the open's
        transaction: a crash midway leaves the version 1 file as it was.
        """
        conn.execute("ALTER TABLE outbox RENAME TO outbox_v1")
        conn.execute(OUTBOX_V2)
        run: list[tuple] = []

        def flush() -> None:
            _, topics, event_types, payloads = zip(*run, strict=True)
            conn.execute(
                "INSERT INTO outbox (first_seq, last_seq, events) VALUES (?, ?, ?)",
                (run[0][0], run[-1][0], pack_run(topics, event_types, payloads)),
            )
            run.clear()

        rows = conn.cursor()
        for row in rows.execute("SELECT seq, topic, event_type, payload FROM outbox_v1 ORDER BY seq"):
            if run and (row[0] != run[-1][0] + 1 or len(run) >= MIGRATE_V1_RUN):
                flush()
            run.append(row)
        if run:
            flush()
        rows.close()
        conn.execute("DROP TABLE outbox_v1")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- writing --------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateStoreClosedError(f"state store {self.path} is closed")
        return self._conn

    def _no_open_transaction(self, what: str) -> None:
        if self._tx is not None:
            raise NestedTransactionError(
                f"{what} while a transaction of {self.path} is open; finish it first"
            )

    @contextmanager
    def transaction(self) -> Iterator[StateTransaction]:
        with self._lock:
            conn = self._db()
            self._no_open_transaction("transaction() entered")
            conn.execute("BEGIN IMMEDIATE")
            tx = self._tx = _SqliteTransaction(conn)
            try:
                yield tx
                tx._finish()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                tx._closed = True
                self._tx = None

    # -- reading --------------------------------------------------------------------------------

    def load(self) -> LoadedState:
        with self._lock:
            conn = self._db()
            self._no_open_transaction("load() called")
            conn.execute("BEGIN")  # one consistent snapshot across tables
            try:
                orders: dict[str, tuple[str, list[StoredEvent]]] = {}
                for coid, sid, etype, payload in conn.execute(
                    "SELECT client_order_id, strategy_id, event_type, payload FROM order_events ORDER BY id"
                ):
                    entry = orders.get(coid)
                    if entry is None:
                        entry = orders[coid] = (sid, [])
                    entry[1].append(StoredEvent(etype, payload))
                fills = tuple(
                    StoredFill(pid, payload)
                    for pid, payload in conn.execute(
                        "SELECT position_id, payload FROM position_fills ORDER BY id"
                    )
                )
                accounts = dict(conn.execute("SELECT account_id, payload FROM accounts ORDER BY account_id"))
                strategies: dict[str, dict[str, bytes]] = {}
                for sid, key, value in conn.execute(
                    "SELECT strategy_id, key, value FROM strategy_state ORDER BY strategy_id, key"
                ):
                    strategies.setdefault(sid, {})[key] = value
                blobs: dict[str, dict[str, bytes]] = {}
                for ns, key, value in conn.execute(
                    "SELECT namespace, key, value FROM blobs ORDER BY namespace, key"
                ):
                    blobs.setdefault(ns, {})[key] = value
                counters = dict(conn.execute("SELECT name, value FROM counters ORDER BY name"))
            finally:
                conn.execute("COMMIT")
        return LoadedState(
            orders={c: StoredOrder(c, sid, tuple(evs)) for c, (sid, evs) in orders.items()},
            position_fills=fills,
            accounts=accounts,
            strategy_states=strategies,
            blobs=blobs,
            counters={k: v for k, v in counters.items() if k not in RESERVED_COUNTERS},
            last_seq=counters.get(SEQ_COUNTER, 0),
            acked_seq=counters.get(ACKED_COUNTER, 0),
        )

    def outbox_after(self, seq: int) -> Iterator[OutboxEntry]:
        """Entries above ``seq`` and above the acked seq, ascending, one per event.

        Rows are runs (schema module): the first row may start at or below ``seq`` or below what
        was acked (a partly acked row stays); its events up to there are skipped. Fetched a page of
        rows at a time (the lock is not held between pages).
        """
        floor = _int64("seq", seq)
        while True:
            with self._lock:
                db = self._db()
                acked = db.execute("SELECT value FROM counters WHERE name = ?", (ACKED_COUNTER,)).fetchone()
                if acked is not None and acked[0] > floor:
                    floor = acked[0]
                rows = db.execute(_OUTBOX_PAGE_QUERY, (floor, OUTBOX_PAGE)).fetchall()
            for first, last, events in rows:
                try:
                    topics, event_types, payloads = unpack_run(events, last - first + 1)
                except ValueError as exc:
                    raise StateStoreCorruptError(self.path, f"outbox row {first}..{last}: {exc}") from None
                for i in range(max(0, floor + 1 - first), last - first + 1):
                    yield OutboxEntry(first + i, topics[i], event_types[i], payloads[i])
            if len(rows) < OUTBOX_PAGE:
                return
            floor = rows[-1][1]

    def ack_outbox(self, seq: int) -> None:
        """Deletes the rows ``seq`` covers entirely; the acked counter hides the rest (``outbox_after``)."""
        seq = _int64("ack seq", seq)
        with self._lock:
            conn = self._db()
            self._no_open_transaction("ack_outbox() called")
            conn.execute("BEGIN IMMEDIATE")
            try:
                values = dict(
                    conn.execute(
                        "SELECT name, value FROM counters WHERE name IN (?, ?)", (SEQ_COUNTER, ACKED_COUNTER)
                    )
                )
                issued, acked = values.get(SEQ_COUNTER, 0), values.get(ACKED_COUNTER, 0)
                if seq > issued:
                    raise OutboxAckError(
                        f"ack of seq {seq} for state store {self.path}, but only {issued} events were ever "
                        f"issued; the peer is acking another node's (or a newer store's) events"
                    )
                if seq > acked:
                    # first_seq <= seq bounds the scan by the primary key (rows never overlap, so
                    # last_seq ascends with first_seq): only the rows deleted and one partly acked.
                    conn.execute("DELETE FROM outbox WHERE first_seq <= ?1 AND last_seq <= ?1", (seq,))
                    conn.execute(_UPSERT_COUNTER, (ACKED_COUNTER, seq))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"synchronous={self.synchronous}"
        return f"SqliteStateStore({str(self.path)!r}, {state})"
