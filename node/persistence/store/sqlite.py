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
from node.persistence.store.schema import APPLICATION_ID, SCHEMA, SCHEMA_VERSION

SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")
WAL_AUTOCHECKPOINT_PAGES = 64
OUTBOX_PAGE = 512  # rows fetched per lock acquisition while iterating the outbox

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

    __slots__ = ("_conn", "_closed", "_seq", "_allocated", "_allocated_set", "_outboxed")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._closed = False
        self._seq: int | None = None  # last seq allocated here; None until next_seq is called
        self._allocated: list[int] = []
        self._allocated_set: set[int] = set()
        self._outboxed: set[int] = set()

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

    def next_seq(self) -> int:
        db = self._db()
        if self._seq is None:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (SEQ_COUNTER,)).fetchone()
            self._seq = row[0] if row else 0
        self._seq += 1
        self._allocated.append(self._seq)
        self._allocated_set.add(self._seq)
        return self._seq

    def add_outbox(self, seq: int, topic: str, event_type: str, payload: bytes) -> None:
        db = self._db()
        if seq not in self._allocated_set:
            raise OutboxSequenceError(
                f"outbox seq {seq!r} was not allocated by this transaction's next_seq() "
                f"(allocated here: {self._allocated or 'none'})"
            )
        if seq in self._outboxed:
            raise OutboxSequenceError(f"outbox seq {seq} added twice in one transaction")
        row = (seq, _text("topic", topic), _text("event_type", event_type), _bytes("payload", payload))
        db.execute("INSERT INTO outbox (seq, topic, event_type, payload) VALUES (?, ?, ?, ?)", row)
        self._outboxed.add(seq)

    def append_outbox(self, entries) -> None:
        """One INSERT for the lot; seqs checked as a range (see ``StateTransaction.append_outbox``)."""
        if not entries:
            return
        db = self._db()
        if self._seq is None:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (SEQ_COUNTER,)).fetchone()
            self._seq = row[0] if row else 0
        first = self._seq + 1
        rows = []
        for i, (seq, topic, event_type, payload) in enumerate(entries):
            if seq != first + i:
                raise OutboxSequenceError(
                    f"outbox seq {seq!r} does not continue the sequence (expected {first + i})"
                )
            if type(topic) is not str or type(event_type) is not str or type(payload) is not bytes:
                topic = _text("topic", topic)
                event_type = _text("event_type", event_type)
                payload = _bytes("payload", payload)
            elif not topic or not event_type:
                raise InvalidStateValueError(f"outbox entry {seq}: topic and event_type must be non-empty")
            rows.append((seq, topic, event_type, payload))
        db.executemany("INSERT INTO outbox (seq, topic, event_type, payload) VALUES (?, ?, ?, ?)", rows)
        self._seq = first + len(rows) - 1

    def _finish(self) -> None:
        """Before COMMIT: every allocated seq has its outbox entry; persist the last seq."""
        if len(self._outboxed) == len(self._allocated):
            missing = []
        else:
            missing = [s for s in self._allocated if s not in self._outboxed]
        if missing:
            raise OutboxSequenceError(
                f"seq {missing} allocated but never added to the outbox; that would leave a gap in the "
                f"event sequence, so the transaction was rolled back"
            )
        if self._seq is not None:
            self._conn.execute(_UPSERT_COUNTER, (SEQ_COUNTER, self._seq))


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
        if version != SCHEMA_VERSION:
            raise StateStoreSchemaError(
                self.path,
                f"schema version {version}, this node reads version {SCHEMA_VERSION}; a newer node wrote it",
            )

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
        """Entries above ``seq``, ascending, fetched a page at a time (the lock is not held between)."""
        last = _int64("seq", seq)
        while True:
            with self._lock:
                rows = (
                    self._db()
                    .execute(
                        "SELECT seq, topic, event_type, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                        (last, OUTBOX_PAGE),
                    )
                    .fetchall()
                )
            for row in rows:
                yield OutboxEntry(*row)
            if len(rows) < OUTBOX_PAGE:
                return
            last = rows[-1][0]

    def ack_outbox(self, seq: int) -> None:
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
                    conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
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
