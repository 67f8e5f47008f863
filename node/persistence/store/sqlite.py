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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.persistence.store.base import (
    ACKED_COUNTER,
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
from node.persistence.store.checks import check_int64
from node.persistence.store.errors import (
    InvalidStateValueError,
    NestedTransactionError,
    StateStoreClosedError,
    StateStoreCorruptError,
    StateStoreLockedError,
    StateStoreOpenError,
    StateStoreWriteError,
)
from node.persistence.store.migrations import ensure_schema
from node.persistence.store.schema import MIGRATE_V1_RUN, unpack_run
from node.persistence.store.sqlite_transaction import SqliteTransaction, apply_ack

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


def _classify(path: Path, exc: sqlite3.Error) -> Exception:
    """Map a sqlite3 error met while opening to the store's specific error."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StateStoreLockedError(path)
    if "unable to open" in lowered or "readonly" in lowered or "permission" in lowered:
        return StateStoreOpenError(path, text)
    return StateStoreCorruptError(path, text)


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
        self._tx: SqliteTransaction | None = None
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
            # MIGRATE_V1_RUN read here, at each open: a knob of this module (tests shrink it)
            ensure_schema(conn, self.path, MIGRATE_V1_RUN)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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
            tx = self._tx = SqliteTransaction(conn, self.path)
            try:
                yield tx
                tx._finish()
                conn.execute("COMMIT")
            except sqlite3.Error as exc:  # SQLite or the disk under it: say which file
                self._roll_back(conn)
                raise StateStoreWriteError(self.path, f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                self._roll_back(conn)
                raise
            finally:
                tx._closed = True
                self._tx = None

    @staticmethod
    def _roll_back(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolls back by itself what it could not commit; the error is the first one

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
        floor = check_int64("seq", seq)
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
        seq = check_int64("ack seq", seq)
        with self._lock:
            conn = self._db()
            self._no_open_transaction("ack_outbox() called")
            conn.execute("BEGIN IMMEDIATE")
            try:
                apply_ack(conn, seq, self.path)
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
