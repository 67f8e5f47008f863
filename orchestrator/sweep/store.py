"""The durable results store: one SQLite file per sweep, one row per run, one commit per run.

Why SQLite in WAL mode with ``synchronous=FULL``: every finished run must be on disk before the
parent goes on, so that killing the sweep at any instant loses at most the runs that were in
flight, and ``--resume`` can skip the rest. A commit here costs ~0.2 ms (measured), nothing
next to a backtest, and WAL lets a person read the table (``sqlite3 results.sqlite``) while the
sweep writes it. Only the parent writes; workers never open the file, so there is no locking
between processes to get wrong.

Three tables: ``runs`` holds each run's latest outcome (what the report and ``--resume`` read);
``attempts`` keeps every attempt, so a crash that a retry papered over is still on record;
``data_files`` holds the fingerprint of each data file as the sweep last read it. Each run row
carries ``data_digest``, a digest of the contents of the data files it read (``fingerprint``):
a run id names a data file by path, not by content, so without it a ``--resume`` after a data
file changed would rank results computed on two different data sets together. Version 1 stores
(no digest) are upgraded in place; their runs' digests are unknown (NULL).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from orchestrator.sweep.messages import CRASHED, FAILED, OK, Outcome
from orchestrator.sweep.metrics import STAT_NAMES

SCHEMA_VERSION = 2
FILENAME = "results.sqlite"
_STAT_TYPES = {"trades": "INTEGER"}
RUN_COLUMNS = (
    ("run_id", "TEXT PRIMARY KEY"),
    ("params", "TEXT NOT NULL"),
    ("status", f"TEXT NOT NULL CHECK (status IN ('{OK}', '{FAILED}', '{CRASHED}'))"),
    ("error", "TEXT"),
    *((name, _STAT_TYPES.get(name, "REAL")) for name in STAT_NAMES),
    ("elapsed_s", "REAL"),
    ("worker_pid", "INTEGER"),
    ("attempt", "INTEGER NOT NULL"),
    ("rss_kb", "INTEGER"),
    ("finished_at", "TEXT NOT NULL"),
    ("data_digest", "TEXT"),  # last: a version 1 table gains it by ALTER TABLE ... ADD COLUMN
)
ATTEMPT_COLUMNS = (
    ("run_id", "TEXT NOT NULL"),
    ("attempt", "INTEGER NOT NULL"),
    ("status", "TEXT NOT NULL"),
    ("error", "TEXT"),
    ("traceback", "TEXT"),
    ("elapsed_s", "REAL"),
    ("worker_pid", "INTEGER"),
    ("rss_kb", "INTEGER"),
    ("finished_at", "TEXT NOT NULL"),
)
# Columns that differ between two runs of the same sweep; everything else must be equal.
NONDETERMINISTIC = frozenset({"elapsed_s", "worker_pid", "rss_kb", "finished_at"})
DATA_FILE_COLUMNS = (
    ("path", "TEXT PRIMARY KEY"),
    ("size", "INTEGER NOT NULL"),
    ("mtime_ns", "INTEGER NOT NULL"),
    ("digest", "TEXT NOT NULL"),
)


class ResultsStoreError(Exception):
    """The results file cannot be used (another schema, not a results store, corrupt)."""


class ResultsExistError(ResultsStoreError):
    """Results are already there and neither --resume nor another --out was asked for."""


class ResultsStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._con = sqlite3.connect(self.path, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.execute("PRAGMA busy_timeout=5000")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise ResultsStoreError(f"{self.path}: not a usable results store: {exc}") from None

    @classmethod
    def open(cls, out_dir: Path, resume: bool) -> ResultsStore:
        """The store under ``out_dir``; refuses to mix a new sweep into existing results."""
        out_dir = Path(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsStoreError(
                f"{out_dir}: cannot create the results directory: {exc.strerror}"
            ) from None
        store = cls(out_dir / FILENAME)
        existing = store.count()
        if not resume and existing > 0:
            store.close()
            raise ResultsExistError(
                f"{out_dir / FILENAME} already holds {existing} run(s); "
                "use --resume to continue that sweep or --out for a new directory"
            )
        return store

    def _init_schema(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            with _transaction(con):
                con.execute(f"CREATE TABLE runs ({', '.join(f'{n} {t}' for n, t in RUN_COLUMNS)})")
                con.execute(
                    f"CREATE TABLE attempts ({', '.join(f'{n} {t}' for n, t in ATTEMPT_COLUMNS)}, "
                    "PRIMARY KEY (run_id, attempt))"
                )
                con.execute(_create("data_files", DATA_FILE_COLUMNS))
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif row[0] == "1":
            with _transaction(con):
                con.execute("ALTER TABLE runs ADD COLUMN data_digest TEXT")
                con.execute(_create("data_files", DATA_FILE_COLUMNS))
                con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise ResultsStoreError(
                f"{self.path}: schema version {row[0]}, this orchestrator writes {SCHEMA_VERSION}"
            )

    def count(self) -> int:
        return self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def record(self, outcome: Outcome, params: dict, data_digest: str | None = None) -> None:
        """Write one run's outcome and commit: after this returns it survives a kill -9 or a power cut.

        ``data_digest`` is the digest of the data the run read (``fingerprint.run_digest``).
        """
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        stats = outcome.stats or {}
        run_row = (
            outcome.run_id,
            json.dumps(params, sort_keys=True, separators=(",", ":"), default=str),
            outcome.status,
            outcome.error,
            *(stats.get(name) for name in STAT_NAMES),
            outcome.elapsed_s,
            outcome.worker_pid,
            outcome.attempt,
            outcome.rss_kb,
            now,
            data_digest,
        )
        attempt_row = (
            outcome.run_id,
            outcome.attempt,
            outcome.status,
            outcome.error,
            outcome.traceback,
            outcome.elapsed_s,
            outcome.worker_pid,
            outcome.rss_kb,
            now,
        )
        with _transaction(self._con):
            self._con.execute(
                f"INSERT OR REPLACE INTO runs VALUES ({', '.join('?' * len(RUN_COLUMNS))})", run_row
            )
            self._con.execute(
                f"INSERT OR REPLACE INTO attempts VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})",
                attempt_row,
            )

    def statuses(self) -> dict[str, tuple[str, int]]:
        """run id -> (status, attempt) for every recorded run."""
        return {r[0]: (r[1], r[2]) for r in self._con.execute("SELECT run_id, status, attempt FROM runs")}

    def last_attempts(self) -> dict[str, int]:
        """run id -> its highest attempt number on record (a discarded run's too)."""
        return dict(self._con.execute("SELECT run_id, MAX(attempt) FROM attempts GROUP BY run_id"))

    def stored(self) -> dict[str, tuple[str, str | None]]:
        """run id -> (status, data digest) for every recorded run (what ``--resume`` checks)."""
        return {r[0]: (r[1], r[2]) for r in self._con.execute("SELECT run_id, status, data_digest FROM runs")}

    def discard(self, run_ids) -> None:
        """Forget these runs' outcomes (their attempts stay on record), so they run again."""
        with _transaction(self._con):
            self._con.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in run_ids])

    def data_files(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, digest) of each data file as the sweep last read it."""
        return {r[0]: (r[1], r[2], r[3]) for r in self._con.execute("SELECT * FROM data_files")}

    def save_data_files(self, prints: dict[str, tuple[int, int, str]]) -> None:
        with _transaction(self._con):
            self._con.executemany(
                "INSERT OR REPLACE INTO data_files VALUES (?, ?, ?, ?)",
                [(path, *fp) for path, fp in prints.items()],
            )

    def rows(self) -> list[dict]:
        """Every run row as a dict keyed by column name, ordered by run id."""
        cur = self._con.execute(f"SELECT {', '.join(n for n, _ in RUN_COLUMNS)} FROM runs ORDER BY run_id")
        names = [n for n, _ in RUN_COLUMNS]
        return [dict(zip(names, r, strict=True)) for r in cur]

    def attempts(self, run_id: str) -> list[dict]:
        names = [n for n, _ in ATTEMPT_COLUMNS]
        cur = self._con.execute(
            f"SELECT {', '.join(names)} FROM attempts WHERE run_id = ? ORDER BY attempt", (run_id,)
        )
        return [dict(zip(names, r, strict=True)) for r in cur]

    def close(self) -> None:
        self._con.close()


def _create(table: str, columns) -> str:
    return f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in columns)})"


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error) on an autocommit connection."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con

    def __enter__(self) -> None:
        self._con.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._con.execute("COMMIT" if exc_type is None else "ROLLBACK")
