"""What crosses the pipe between the sweep parent and a worker (pickled, both ways).

Why plain documents and not built configs: a ``Task`` carries the run's TOML-shaped dict, and
the worker builds the ``BacktestRunConfig`` itself. Plain data pickles the same on every
version of the node's classes, and the parent has already validated it, so a worker-side
error means something changed underneath (a data file edited mid-sweep) and is reported as
that run's failure. An ``Outcome`` carries the statistics only, never the orders, fills and
events of a run: those stay in the worker and are freed with the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
FAILED = "failed"
CRASHED = "crashed"
STATUSES = (OK, FAILED, CRASHED)


@dataclass(frozen=True)
class Task:
    run_id: str
    attempt: int
    doc: dict
    base_dir: str


@dataclass(frozen=True)
class Ready:
    """Sent once by a worker when its imports are done and it can take tasks."""

    pid: int


@dataclass(frozen=True)
class Outcome:
    run_id: str
    attempt: int
    status: str
    stats: dict | None
    error: str | None
    traceback: str | None
    elapsed_s: float | None  # None for a crash: the run's start was not seen
    worker_pid: int
    rss_kb: int | None
