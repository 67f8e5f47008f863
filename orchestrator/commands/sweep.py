"""``orchestrator sweep CONFIG``: run a grid or list of backtests in parallel worker processes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from orchestrator import exit_codes

HELP = "run a parameter sweep of backtests in parallel worker processes"
DESCRIPTION = """\
Run many backtests from one sweep config: a base backtest config plus [sweep.grid]
(cartesian product over dotted key paths) and/or [[sweep.runs]] (explicit parameter sets).
Each run has a stable id (a short hash of its resolved config). Runs execute in worker
processes (spawned, one run after another, the node disposed between runs, each worker
replaced every --recycle-every runs); a run that raises is recorded as failed, a worker that
dies is replaced and its run retried (--crash-retries). Every finished run is committed at
once to OUT/results.sqlite, so an interrupted sweep continues with --resume. At the end:
a table ranked by --metric, OUT/results.csv, and for a two-parameter grid of at most 40 x 40
values a heatmap OUT/heatmap_<metric>.png -- only when matplotlib is installed (pip install
-e '.[plot]'); without it the heatmap is skipped silently, and a larger grid gets a one-line
note instead. A sweep holds OUT/sweep.lock while it runs: a second sweep on the same OUT is
refused (exit 2, naming the pid of the first). A sweep of more than --max-runs runs (default
100,000) is refused before it is planned.

--resume keeps the runs that succeeded, runs again the runs that failed (the cause may be
fixed) and retries the crashed ones. Each stored run records a digest of the data files it
read; if a data file has changed since, the resume is refused (exit 2): start afresh with
another --out, or add --discard-stale to run those runs again on the current data. Runs in
the store that are no longer part of the sweep (its base or grid changed) are counted and
left out of the table.

sweep config:
  base = "backtest_ema_cross.toml"          # relative to this file; or inline backtest tables
  [sweep]
  metric = "sharpe"                         # optional default for --metric
  [sweep.grid]
  "strategies.0.config.fast_ema_period" = [5, 10, 15]
  "strategies.0.config.slow_ema_period" = [20, 30, 40]
  [[sweep.runs]]                            # optional extra parameter sets
  "strategies.0.config.fast_ema_period" = 3
  "strategies.0.config.slow_ema_period" = 60

example:
  orchestrator sweep configs/sweep_example.toml --workers 2 --out /tmp/ema-sweep
  orchestrator sweep configs/sweep_example.toml --out /tmp/ema-sweep --resume --metric pnl
  orchestrator sweep configs/sweep_example.toml --out /tmp/ema-json --json | jq .ranking[0]

metrics: total_return, pnl, sharpe, max_drawdown (lower is better), trades, win_rate.
exit status: 0 every run ok; 1 some run failed or crashed, or the sweep was interrupted
(SIGINT/SIGTERM; finished runs are kept, --resume continues); 2 invalid config or usage
(the message names the file, the key path and the reason; nothing has run), or another sweep
holds OUT, or --resume found nothing to resume or stale runs; 130 Ctrl-C before the runs
started or after they ended (while planning or writing the report). A closed stdout (| head)
does not stop the sweep: it runs to the end, stores every result, prints nothing more and
exits with the status above.
"""
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process that Ctrl-C killed


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("config", help="path to the sweep TOML file")
    p.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="worker processes (default: the number of cores)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="results directory (default: sweeps/<config name> under the current directory)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in DIR: keep the runs that succeeded, run the failed and crashed ones again",
    )
    p.add_argument(
        "--discard-stale",
        action="store_true",
        help="with --resume: run again the stored runs whose data files changed since they ran",
    )
    p.add_argument(
        "--max-runs",
        type=_positive,
        default=None,
        metavar="N",
        help="refuse a sweep of more than N runs before planning it (default: 100000)",
    )
    p.add_argument(
        "--recycle-every",
        type=_positive,
        default=None,
        metavar="K",
        help="replace each worker after K runs to keep memory flat (default: 50)",
    )
    p.add_argument(
        "--crash-retries",
        type=_non_negative,
        default=None,
        metavar="R",
        help="re-run a run whose worker died up to R more times (default: 1)",
    )
    p.add_argument(
        "--metric",
        default=None,
        metavar="NAME",
        help="statistic to rank by (default: [sweep].metric, else sharpe)",
    )
    p.add_argument(
        "--top", type=_positive, default=20, metavar="N", help="rows of the ranked table (default: 20)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="no progress; print one JSON object (runs, ranking, counts) at the end",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    """Ctrl-C outside the scheduler's loop (planning, the report) is one line and exit 130."""
    from orchestrator.commands.closed_output import GuardedStdout

    out = GuardedStdout()
    try:
        return _run(args, out)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def _run(args, out) -> int:
    from orchestrator.commands.closed_output import GuardedStdout
    from orchestrator.configfile import load_or_report
    from orchestrator.sweep.lock import SweepLock, SweepLockedError
    from orchestrator.sweep.metrics import UnknownMetricError, check_metric
    from orchestrator.sweep.progress import PlanningNotice
    from orchestrator.sweep.scheduler import DEFAULT_CRASH_RETRIES, DEFAULT_RECYCLE_EVERY
    from orchestrator.sweep.spec import MAX_RUNS, load_sweep
    from orchestrator.sweep.store import FILENAME, ResultsStore, ResultsStoreError

    if args.discard_stale and not args.resume:
        print(
            "error: --discard-stale only applies to a resumed sweep: add --resume (a fresh sweep has no stored runs)",
            file=sys.stderr,
        )
        return exit_codes.BAD_USAGE
    path = Path(args.config)
    notice = PlanningNotice(GuardedStdout(sys.stderr))
    max_runs = args.max_runs or MAX_RUNS
    spec = load_or_report(path, lambda p: load_sweep(p, max_runs=max_runs, on_progress=notice))
    if spec is None:
        return exit_codes.BAD_USAGE
    try:
        metric = check_metric(args.metric or spec.metric)
    except UnknownMetricError as exc:
        print(f"error: --metric: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    out_dir = args.out if args.out is not None else Path("sweeps") / path.stem
    if args.resume and not (out_dir / FILENAME).is_file():
        print(
            f"error: nothing to resume in {out_dir} (no {FILENAME} there); "
            "run without --resume to start the sweep",
            file=sys.stderr,
        )
        return exit_codes.BAD_USAGE
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = SweepLock.acquire(out_dir)
    except SweepLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    except OSError as exc:
        print(f"error: {out_dir}: cannot use the results directory: {exc.strerror}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    try:
        try:
            store = ResultsStore.open(out_dir, resume=args.resume)
        except ResultsStoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exit_codes.BAD_USAGE
        try:
            return _execute(
                args,
                out,
                spec,
                metric,
                out_dir,
                store,
                notice,
                workers=args.workers or os.cpu_count() or 1,
                recycle_every=args.recycle_every or DEFAULT_RECYCLE_EVERY,
                crash_retries=DEFAULT_CRASH_RETRIES if args.crash_retries is None else args.crash_retries,
            )
        finally:
            store.close()
    finally:
        lock.release()


def _execute(
    args, out, spec, metric, out_dir, store, notice, *, workers, recycle_every, crash_retries
) -> int:
    from orchestrator.sweep import report
    from orchestrator.sweep.heatmap import skip_reason, write_heatmap
    from orchestrator.sweep.progress import Progress
    from orchestrator.sweep.scheduler import Scheduler, SweepAborted

    plan = spec.plan
    try:
        digests, prints = _data_digests(spec, store, notice)
    except OSError as exc:
        print(f"error: {exc.filename}: cannot read a data file of the sweep: {exc.strerror}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    resumed = None
    if args.resume:
        resumed = _resume(args, out_dir, store, digests, prints)
        if isinstance(resumed, str):
            print(f"error: {resumed}", file=sys.stderr)
            return exit_codes.BAD_USAGE
    store.save_data_files(prints)
    progress = None if args.json else Progress(out)
    if not args.json:
        dup = f" ({plan.duplicates} duplicate parameter set(s) merged)" if plan.duplicates else ""
        out.print(
            f"sweep {spec.path}: {len(plan.runs)} runs{dup}, up to {workers} worker(s), results in {out_dir}"
        )
        if resumed is not None:
            out.print(resumed[2])
    scheduler = Scheduler(
        plan.runs,
        store,
        spec.base_dir,
        workers=workers,
        recycle_every=recycle_every,
        crash_retries=crash_retries,
        on_progress=progress,
        data_digests=digests,
    )
    aborted = None
    try:
        result = scheduler.run()
    except SweepAborted as exc:
        aborted, result = str(exc), None
    finally:
        if progress is not None:
            progress.finish()
    rows = report.collect(plan, store.rows())
    csv_path = report.write_csv(out_dir / report.CSV_NAME, rows, plan)
    skipped_heatmap = skip_reason(plan)
    heatmap = write_heatmap(out_dir, plan, rows, metric) if result is not None else None
    counts = _counts(plan, rows, result)
    interrupted = result.interrupted_by if result is not None else None
    if args.json:
        doc = report.json_doc(
            sweep_path=spec.path,
            out_dir=out_dir,
            metric=metric,
            rows=rows,
            plan=plan,
            counts=counts,
            interrupted_by=interrupted,
            files={"store": store.path, "csv": csv_path, "heatmap": heatmap},
        )
        if resumed is not None:
            doc["resume"] = resumed[1]
        if skipped_heatmap:
            doc["heatmap_skipped"] = skipped_heatmap
        if aborted:
            doc["aborted"] = aborted
        out.print(report.dumps(doc))
    else:
        out.print(report.ranked_table(rows, plan, metric, args.top))
        out.print(f"results: {store.path}  {csv_path}" + (f"  {heatmap}" if heatmap else ""))
        if skipped_heatmap:
            out.print(skipped_heatmap)
    if aborted:
        print(f"error: sweep aborted: {aborted}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    if interrupted:
        print(
            f"interrupted by {interrupted}: {counts['pending']} run(s) not finished; "
            f"continue with: orchestrator sweep {spec.path} --out {out_dir} --resume",
            file=sys.stderr,
        )
        return exit_codes.JOB_FAILED
    return exit_codes.OK if counts["failed"] == 0 and counts["crashed"] == 0 else exit_codes.JOB_FAILED


def _data_digests(spec, store, notice) -> tuple[dict[str, str], dict]:
    """(run id -> digest of the data it reads, path -> fingerprint of each data file)."""
    from orchestrator.sweep import fingerprint

    files = {run.run_id: fingerprint.data_files(run.doc, spec.base_dir) for run in spec.plan.runs}
    prints = fingerprint.fingerprints(
        (f for fs in files.values() for f in fs),
        store.data_files(),
        lambda done, total: notice("data files read", done, total),
    )
    return {run_id: fingerprint.run_digest(fs, prints) for run_id, fs in files.items()}, prints


def _resume(args, out_dir, store, digests, prints):
    """(state, json, line) for a resume that may go on, or the error message that stops it."""
    from orchestrator.sweep import resume

    state = resume.assess(digests, store.stored())
    discarded = 0
    if state.stale:
        if not args.discard_stale:
            return resume.stale_error(out_dir, state, resume.changed_files(prints, store.data_files()))
        store.discard(state.stale)
        discarded = len(state.stale)
    return state, resume.as_json(state, discarded), resume.describe(state, discarded)


def _counts(plan, rows, result) -> dict:
    by_status = {"ok": 0, "failed": 0, "crashed": 0}
    for r in rows:
        by_status[r.status] += 1
    return {
        "total": len(plan.runs),
        **by_status,
        "pending": len(plan.runs) - len(rows),
        "skipped": result.counts.skipped if result is not None else 0,
        "retried": result.counts.retried if result is not None else 0,
    }
