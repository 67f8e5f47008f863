"""The SQLite schema of the node state store, and how a file is recognised as one.

Kept apart from the store so the layout can be read (and reviewed) in one place. A file is ours when
``PRAGMA application_id`` carries ``APPLICATION_ID``; ``PRAGMA user_version`` is the schema version, so
a newer file is refused instead of misread.

Tables:

* ``order_events``: every event of every order still in the node's state (a closed order is
  forgotten: its history lives in the orchestrator's journal), one row each; ``id`` (AUTOINCREMENT, never reused) gives the
  append order, which is the replay order.
* ``position_fills``: fills as applied to open positions (a closed one is forgotten), in node-wide order (netting may reuse a
  position id for successive round trips, so the order across orders matters).
* ``accounts``: the last AccountState per account (a state replaces the previous one).
* ``strategy_state``: ``on_save`` blobs, one row per (strategy, key).
* ``blobs``: opaque values by (namespace, key), e.g. the sandbox venue's own state.
* ``counters``: named integers; ``__seq__`` and ``__acked_seq__`` are reserved for the outbox.
* ``outbox``: events to stream, **one row per commit** (a run of consecutive sequence numbers
  ``first_seq..last_seq``), not one per event: under load a commit carries hundreds of events, and a
  row per event (4 values bound, a B-tree insert each) was most of what the store cost a streaming
  node. ``events`` holds the run (``OUTBOX_FORMAT``). An ack deletes the rows it covers entirely; a
  row it covers in part stays, and readers skip its acked events (``__acked_seq__``).

Outbox row format (``events`` BLOB): ``msgpack([topics, event_types, payloads])``, three parallel
arrays of ``last_seq - first_seq + 1`` items, item ``i`` being the event of seq ``first_seq + i``:
topic and event type as msgpack str, payload as msgpack bin (the bytes given to the store, as is).
Parallel arrays because the writer hands a run over as columns and msgpack packs them in one call,
with no per-event work in Python.

Versions: 1 had ``outbox(seq PRIMARY KEY, topic, event_type, payload)``, one row per event. Opening a
version 1 file converts its outbox to version 2 (``migrations.migrate_v1``) in the open's
transaction, and changes nothing else. A newer version is refused.
"""

from __future__ import annotations

import msgpack

APPLICATION_ID = 0x4E4F4445  # "NODE"
SCHEMA_VERSION = 2
OUTBOX_FORMAT = "msgpack([topics, event_types, payloads])"  # see the module docstring

SCHEMA = """
CREATE TABLE order_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL,
    strategy_id     TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         BLOB NOT NULL
);
CREATE INDEX order_events_by_order ON order_events (client_order_id, id);
CREATE TABLE position_fills (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    position_id TEXT NOT NULL,
    payload     BLOB NOT NULL
);
CREATE INDEX position_fills_by_position ON position_fills (position_id, id);
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    payload    BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE strategy_state (
    strategy_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       BLOB NOT NULL,
    PRIMARY KEY (strategy_id, key)
) WITHOUT ROWID;
CREATE TABLE blobs (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE outbox (
    first_seq INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL,
    events    BLOB NOT NULL
);
"""

OUTBOX_V2 = SCHEMA[SCHEMA.index("CREATE TABLE outbox") :].strip().rstrip(";")

MIGRATE_V1_RUN = 4096
"""Events per outbox row when a version 1 outbox is converted (a long backlog is not one huge row)."""


def pack_run(topics, event_types, payloads) -> bytes:
    """An outbox row's ``events`` from its three columns (sequences of equal length, checked by the caller)."""
    return msgpack.packb((topics, event_types, payloads), use_bin_type=True)


def insert_run(conn, first_seq: int, last_seq: int, topics, event_types, payloads) -> None:
    """Write the outbox row of the run ``first_seq..last_seq`` (its columns as for :func:`pack_run`)."""
    conn.execute(
        "INSERT INTO outbox (first_seq, last_seq, events) VALUES (?, ?, ?)",
        (first_seq, last_seq, pack_run(topics, event_types, payloads)),
    )


def unpack_run(events: bytes, count: int) -> tuple[tuple, tuple, tuple]:
    """The three columns of an outbox row of ``count`` events; ValueError if it is not one."""
    try:
        columns = msgpack.unpackb(events, raw=False, use_list=False)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise ValueError(f"not msgpack ({type(exc).__name__}: {exc})") from None
    if not (type(columns) is tuple and len(columns) == 3 and all(type(c) is tuple for c in columns)):
        raise ValueError(f"not {OUTBOX_FORMAT}")
    if not len(columns[0]) == len(columns[1]) == len(columns[2]) == count:
        raise ValueError(f"{', '.join(str(len(c)) for c in columns)} items for a run of {count} events")
    return columns
