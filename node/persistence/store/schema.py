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
* ``outbox``: events to stream, keyed by their sequence number; acked rows are deleted.
"""

from __future__ import annotations

APPLICATION_ID = 0x4E4F4445  # "NODE"
SCHEMA_VERSION = 1

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
    seq        INTEGER PRIMARY KEY,
    topic      TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload    BLOB NOT NULL
);
"""
