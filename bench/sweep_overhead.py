"""Sweep overhead, parallel speed-up and worker memory (issue #7).

Workload: tiny backtests -- EMA cross 3/10 on 1-minute mid bars from 3,000 generated EUR/USD
quotes (50 bars, a handful of trades, ~10 ms of work each); the generator's seed varies, so
every run has its own data and its own id. Everything goes through the real sweep machinery
(``orchestrator.sweep.scheduler.Scheduler``: spawned workers, pipes, the SQLite store with a
commit per run), in-process, with a fresh results store per measurement.

  (a) warm worker: one worker runs 200 runs one after another. Per-run overhead = (wall -
      sum of the runs' own elapsed) / runs, wall from the first task sent to the last outcome
      (the worker's start-up is excluded from the wall and reported on its own). A run's own
      elapsed is measured in the worker around config parsing + BacktestNode.run_one
      (build, run, dispose).
  (b) fresh process per run (baseline, same invocation): each run in a newly spawned process
      (multiprocessing spawn: interpreter start + imports + run + exit), one after another.
  (c) 1 vs 2 workers: the wall of the 200 runs with 1 and with 2 workers; speed-up = w1 / w2.
      (a) and (c) take the best of --repeat sweeps each (the machine may be shared; the load
      average is printed with the results).
  (d) a long sweep (1,000 runs, --runs): 2 workers replaced every 50 runs; each outcome carries
      the worker's RSS read from /proc/self/statm right after the run. Printed: the RSS curve
      per worker lifetime (run 1..50 of each worker) and per 100 runs of the sweep; and, for
      comparison, the same sweep without recycling.

Targets: (a) <= 5 ms per run; (c) speed-up >= 1.8x on 2 cores.

Run:  .venv/bin/python bench/sweep_overhead.py                 (about two minutes)
      .venv/bin/python bench/sweep_overhead.py --fresh-runs 50 --runs 400   (quicker)
      .venv/bin/python bench/sweep_overhead.py --fresh-runs 0 --runs 0      ((a) and (c) only)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.sweep.plan import build_plan  # noqa: E402
from orchestrator.sweep.pool import spawn_context  # noqa: E402
from orchestrator.sweep.scheduler import Scheduler  # noqa: E402
from orchestrator.sweep.store import ResultsStore  # noqa: E402

SEED = "data.0.generator.seed"
BASE = {
    "backtest": {"log_level": "ERROR", "equity_sample_interval_s": 600},
    "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
    "instruments": [{"id": "EUR/USD.SIM"}],
    "data": [{"instrument_id": "EUR/USD.SIM", "generator": {"count": 3000, "seed": 1}}],
    "strategies": [
        {
            "path": "node.strategies.ema_cross:EMACross",
            "config": {
                "instrument_id": "EUR/USD.SIM",
                "bar_type": "EUR/USD.SIM-1-MINUTE-MID-INTERNAL",
                "trade_size": 100000,
                "fast_ema_period": 3,
                "slow_ema_period": 10,
            },
        }
    ],
}


def plan_of(runs: int):
    return build_plan(BASE, {SEED: list(range(1, runs + 1))}, [])


def sweep(runs: int, workers: int, recycle_every: int) -> tuple:
    """Run a sweep through the Scheduler; returns (SweepResult, seconds until the first task)."""
    plan = plan_of(runs)
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "results.sqlite")
        scheduler = Scheduler(plan.runs, store, tmp, workers=workers, recycle_every=recycle_every)
        started = time.monotonic()
        result = scheduler.run()
        total = time.monotonic() - started
        store.close()
    bad = [o for o in result.outcomes if o.status != "ok"]
    if bad:
        raise SystemExit(f"{len(bad)} run(s) failed, e.g. {bad[0].error}")
    return result, total - result.wall_s


def fresh_process_run(conn, doc: dict) -> None:
    """Body of the baseline's per-run process: import, run once, report, exit."""
    from node.backtest.config import BacktestRunConfig
    from node.backtest.node import BacktestNode

    started = time.perf_counter()
    config = BacktestRunConfig.from_dict(doc, base_dir=".")
    BacktestNode([], log_sink=lambda _line: None).run_one(config)
    conn.send(time.perf_counter() - started)
    conn.close()


def fresh_processes(runs: int) -> tuple[float, float]:
    """(wall per run, own elapsed per run) with a newly spawned process for every run."""
    ctx = spawn_context()
    walls, elapsed = [], []
    for run in plan_of(runs).runs:
        parent, child = ctx.Pipe(duplex=False)
        started = time.perf_counter()
        process = ctx.Process(target=fresh_process_run, args=(child, run.doc))
        process.start()
        child.close()
        elapsed.append(parent.recv())
        process.join()
        walls.append(time.perf_counter() - started)
        parent.close()
    return statistics.mean(walls), statistics.mean(elapsed)


def rss_report(result, recycle_every: int) -> list[str]:
    lifetimes: dict[int, list[int]] = {}
    for outcome in result.outcomes:  # completion order; a worker's runs are in its own order
        lifetimes.setdefault(outcome.worker_pid, []).append(outcome.rss_kb)
    full = [life for life in lifetimes.values() if len(life) >= min(recycle_every, 10)]
    lines = [
        f"  worker lifetimes: {len(lifetimes)} (runs each: {sorted({len(v) for v in lifetimes.values()})})"
    ]
    marks = [i for i in (1, 2, 5, 10, 20, 30, 40, 50, 100, 200, 500, 1000) if i <= max(len(v) for v in full)]
    cells = []
    for i in marks:
        values = [life[i - 1] for life in full if len(life) >= i]
        cells.append(f"run {i}: {statistics.median(values) / 1024:.1f}")
    lines.append("  RSS MB by run number within a worker's life (median over workers): " + ", ".join(cells))
    growth = [(life[-1] - life[min(4, len(life) - 1)]) for life in full]
    lines.append(
        f"  growth from a worker's 5th run to its last: median {statistics.median(growth):+,} KB, "
        f"max {max(growth):+,} KB"
    )
    per_block = []
    rss = [o.rss_kb for o in result.outcomes]
    for start in range(0, len(rss), 100):
        block = rss[start : start + 100]
        per_block.append(f"{min(block) / 1024:.1f}-{max(block) / 1024:.1f}")
    lines.append("  RSS MB min-max per 100 runs of the sweep: " + " | ".join(per_block))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--overhead-runs", type=int, default=200, help="runs for (a) and (c) (default 200)")
    parser.add_argument("--fresh-runs", type=int, default=200, help="runs for the baseline (b); 0 skips it")
    parser.add_argument("--runs", type=int, default=1000, help="runs of the long sweep (d); 0 skips it")
    parser.add_argument("--recycle-every", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="sweeps of (a) and (c), best taken (default 3)")
    args = parser.parse_args()
    n = args.overhead_runs
    load_before = os.getloadavg()[0]

    ones, twos = [], []
    for _ in range(args.repeat):  # interleaved, so a change in the machine's load hits both
        ones.append(sweep(n, workers=1, recycle_every=n))
        twos.append(sweep(n, workers=2, recycle_every=n)[0])
    one, one_startup = min(ones, key=lambda pair: pair[0].wall_s)
    two = min(twos, key=lambda r: r.wall_s)
    own = sum(o.elapsed_s for o in one.outcomes)
    warm_overhead = (one.wall_s - own) / n
    fresh_wall, fresh_own = fresh_processes(args.fresh_runs) if args.fresh_runs else (math.nan, math.nan)

    print(f"\nsweep overhead: {n} tiny backtests (EMA cross, 3,000 quotes each), mean per run\n")
    print(f"| {'case':<52} | {'wall/run ms':>11} | {'own run ms':>10} | {'overhead ms':>11} |")
    print(f"|{'-' * 54}|{'-' * 13}|{'-' * 12}|{'-' * 13}|")
    print(
        f"| {'(a) warm worker (1 worker, runs back to back)':<52} | {one.wall_s / n * 1e3:>11.2f} | "
        f"{own / n * 1e3:>10.2f} | {warm_overhead * 1e3:>11.2f} |"
    )
    print(
        f"| {f'(b) fresh spawned process per run ({args.fresh_runs} runs)':<52} | {fresh_wall * 1e3:>11.2f} | "
        f"{fresh_own * 1e3:>10.2f} | {(fresh_wall - fresh_own) * 1e3:>11.2f} |"
    )
    print(f"\nworker start-up (spawn + imports, before the first task): {one_startup * 1e3:.0f} ms")
    speedup = one.wall_s / two.wall_s
    print(
        f"(c) {n} runs: 1 worker {one.wall_s:.3f}s, 2 workers {two.wall_s:.3f}s -> speed-up {speedup:.2f}x "
        f"(target >= 1.8x)"
    )
    print(f"(a) warm overhead {warm_overhead * 1e3:.2f} ms per run (target <= 5 ms)")
    print(f"load average (1 min) before: {load_before:.2f}, after (a)-(c): {os.getloadavg()[0]:.2f}")

    if not args.runs:
        return
    long_recycled, _ = sweep(args.runs, workers=2, recycle_every=args.recycle_every)
    print(
        f"\n(d) {args.runs} runs, 2 workers, recycled every {args.recycle_every} runs: {long_recycled.wall_s:.1f}s"
    )
    print("\n".join(rss_report(long_recycled, args.recycle_every)))
    long_plain, _ = sweep(args.runs, workers=2, recycle_every=args.runs)
    print(f"\n    the same {args.runs} runs without recycling: {long_plain.wall_s:.1f}s")
    print("\n".join(rss_report(long_plain, args.runs)))


if __name__ == "__main__":
    main()
