"""The worker child: runs the tasks it is sent one after another, one fresh node per run.

Started by the parent with multiprocessing's ``spawn`` context (never fork: DESIGN §5), so it
begins with a clean interpreter and inherits no sockets, threads or locks. It pays its imports
once, says ``Ready``, then loops: receive a ``Task``, build the run's config, run it with
``BacktestNode.run_one`` (which disposes the engine before returning) and send an ``Outcome``.
A run that raises is an outcome with status ``failed`` (a config mistake that only the running
node could see is reported as ``bad config: <key>: <reason>``, without its traceback on stderr:
``config_faults``); anything that kills the process is
seen by the parent as a crash. The parent decides when a worker retires (after K runs) by
sending ``None``; a closed pipe means the parent is gone, and so does the worker.

SIGINT is ignored here: Ctrl-C reaches the whole foreground process group, and the parent
alone decides how a sweep stops (it terminates workers after recording what finished). A
worker's standard output is pointed at its standard error: the parent's stdout carries the
progress, the table or the ``--json`` object, and a strategy's stray ``print`` must not land in
the middle of them.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback

from orchestrator.sweep.messages import FAILED, OK, Outcome, Ready, Task
from orchestrator.sweep.parentdeath import die_with_parent


def worker_main(conn, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    sys.stdout.flush()
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the parent for the start
    from node.backtest.config import BacktestRunConfig
    from node.backtest.node import BacktestNode

    pid = os.getpid()
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    conn.send(Ready(pid))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task is None:
            return
        outcome = execute(task, pid, page_kb, BacktestRunConfig, BacktestNode)
        try:
            conn.send(outcome)
        except OSError:
            return


def execute(task: Task, pid: int, page_kb: int, config_cls, node_cls) -> Outcome:
    """Run one task; never raises for what the run itself does wrong."""
    from orchestrator.sweep.config_faults import HeldTracebacks, as_config_error

    started = time.perf_counter()
    sink = HeldTracebacks(_prefixed_sink(task.run_id))
    config = None
    try:
        config = config_cls.from_dict(task.doc, base_dir=task.base_dir)
        result = node_cls([], log_sink=sink).run_one(config)
    except Exception as exc:
        elapsed = time.perf_counter() - started
        bad = as_config_error(exc, config) if config is not None else None
        if bad is not None:
            sink.drop()
        else:
            sink.release()
        return Outcome(
            task.run_id,
            task.attempt,
            FAILED,
            None,
            f"bad config: {bad}" if bad is not None else f"{type(exc).__name__}: {exc}",
            traceback.format_exc(),
            elapsed,
            pid,
            rss_kb(page_kb),
        )
    sink.release()
    elapsed = time.perf_counter() - started
    return Outcome(
        task.run_id, task.attempt, OK, dict(result.stats), None, None, elapsed, pid, rss_kb(page_kb)
    )


def rss_kb(page_kb: int) -> int | None:
    """Resident set size of this process from /proc/self/statm (None where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * page_kb
    except (OSError, IndexError, ValueError):
        return None


def _prefixed_sink(run_id: str):
    def sink(line: str) -> None:
        sys.stderr.write(f"[run {run_id}] {line}\n")

    return sink
