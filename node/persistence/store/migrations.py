"""Bringing an SQLite file to the current schema (schema module) as the store opens it.

A new (empty) file gets the schema; a file of ours at version 1 is converted; a file of another
application, or of a newer or unknown version, is refused. Everything runs inside the open's
transaction, so a crash midway leaves the file as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.persistence.store.errors import StateStoreCorruptError, StateStoreSchemaError
from node.persistence.store.schema import (
    APPLICATION_ID,
    MIGRATE_V1_RUN,
    OUTBOX_V2,
    SCHEMA,
    SCHEMA_VERSION,
    insert_run,
)


def ensure_schema(conn: sqlite3.Connection, path: Path, v1_run: int = MIGRATE_V1_RUN) -> None:
    """Make the file at ``path`` (open on ``conn``, in a transaction) one of the current schema.

    ``v1_run``: events per outbox row when converting a version 1 file (see ``migrate_v1``).
    """
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
            path, f"an SQLite file of another application (application_id {app_id:#x})"
        )
    if version == 1:
        migrate_v1(conn, v1_run)
    elif version > SCHEMA_VERSION:
        raise StateStoreSchemaError(
            path,
            f"schema version {version}, this node reads version {SCHEMA_VERSION}; a newer node wrote it",
        )
    elif version != SCHEMA_VERSION:
        raise StateStoreSchemaError(
            path, f"schema version {version}, this node reads versions 1 to {SCHEMA_VERSION}"
        )


def migrate_v1(conn: sqlite3.Connection, max_run: int = MIGRATE_V1_RUN) -> None:
    """Version 1 -> 2: the outbox's one row per event becomes one row per run (schema module).

    Runs of consecutive seqs, at most ``max_run`` events each. Inside the open's
    transaction: a crash midway leaves the version 1 file as it was.
    """
    conn.execute("ALTER TABLE outbox RENAME TO outbox_v1")
    conn.execute(OUTBOX_V2)
    run: list[tuple] = []

    def flush() -> None:
        _, topics, event_types, payloads = zip(*run, strict=True)
        insert_run(conn, run[0][0], run[-1][0], topics, event_types, payloads)
        run.clear()

    rows = conn.cursor()
    for row in rows.execute("SELECT seq, topic, event_type, payload FROM outbox_v1 ORDER BY seq"):
        if run and (row[0] != run[-1][0] + 1 or len(run) >= max_run):
            flush()
        run.append(row)
    if run:
        flush()
    rows.close()
    conn.execute("DROP TABLE outbox_v1")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
