"""Chaos at scale (issue #5): hundreds of kill -9 of trading nodes, a few of the orchestrator; count losses.

The same harness and checker as ``tests/test_chaos.py`` (``tests/chaos_harness.py``, ``tests/chaos_check.py``), with more
kills: the fleet of ``configs/chaos.toml`` (three sandbox nodes trading several times a second)
runs under a real ``orchestrator up``; a seeded RNG picks the instants (random delays) and the
victims; every kill is a SIGKILL of the node's current child, waited out until the node is
RUNNING again in a new incarnation. ``--orchestrator-kills`` times, spread evenly, the
orchestrator itself is killed -9 and started again on the same runtime dir, and
``--orchestrator-stalls`` times it is SIGSTOPped for ``--stall`` seconds (longer than the heartbeat
timeout) and continued: no node may then be killed as hung. Then ``orchestrator
down`` and the checker: lost and duplicate events (journal seqs 1..N), client order ids sent to
the venue twice, orders that vanished, positions that disagree between the journal's fills, the
node's own position events and its state store.

Restart latency is the kill (wall clock, just before the signal) to the orchestrator's ``running``
event for the new incarnation (its wall clock when it saw the node's RUNNING heartbeat): the
whole restart path under load, including the node's recovery from its store.

Run from the repository root; one command, no setup beyond the venv (~2-3 minutes for 200 kills):

    .venv/bin/python bench/chaos.py
    .venv/bin/python bench/chaos.py --kills 500 --seed 7 --nodes 6 --orchestrator-kills 5 --orchestrator-stalls 10

Exit status: 0 when the checker found nothing, 1 otherwise (the problems are printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from tests.chaos_harness import ChaosPlan, ChaosRun, run_chaos  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def latency_row(name: str, values: list[float]) -> str:
    if not values:
        return f"| {name:<46} | {0:>5} | {'-':>8} | {'-':>8} | {'-':>8} |"
    return (
        f"| {name:<46} | {len(values):>5} | {statistics.median(values):>8.1f} | {pct(values, 0.99):>8.1f} "
        f"| {max(values):>8.1f} |"
    )


def report(run: ChaosRun) -> None:
    check = run.check
    kills = run.kills
    fills = sum(c.fills for c in check.nodes.values())
    orders = sum(c.submitted for c in check.nodes.values())
    rows = [
        ("node kills (kill -9)", f"{len(kills)}"),
        ("  of which with an order working at the venue", f"{run.kills_with_open_orders}"),
        ("  of which with a position open", f"{run.kills_with_open_positions}"),
        ("orchestrator kills -9 and restarts", f"{len(run.orchestrator_kills)}"),
        (f"orchestrator held up (SIGSTOP {run.plan.stall_s:g} s, SIGCONT)", f"{run.orchestrator_stalls}"),
        (
            "exits the harness did not cause (e.g. healthy nodes killed as hung)",
            f"{len(run.unexpected_exits)}",
        ),
        (
            "final `down` clean (every node stopped on request)",
            "yes" if run.up_exit_codes[-1:] == [0] else "NO",
        ),
        ("events journaled", f"{check.events:,}"),
        ("orders submitted / fills", f"{orders:,} / {fills:,}"),
        ("lost events (missing seqs, stored but never journaled)", f"{check.lost_events}"),
        ("duplicate events", f"{check.duplicate_events}"),
        ("duplicate client order ids (resubmits + venue rejections)", f"{check.duplicate_client_order_ids}"),
        ("lost orders (submitted, never heard of again)", f"{check.lost_orders}"),
        ("duplicate fills", f"{check.duplicate_fills}"),
        ("position mismatches (journal fills vs node events vs store)", f"{check.position_mismatches}"),
        ("fills in only one of journal / store", f"{check.store_fill_mismatches}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"\nchaos: {len(run.node_ids)} sandbox nodes trading, seed {run.plan.seed}, {run.elapsed_s:.0f} s\n"
    )
    print(f"| {'what':<{width}} | {'count':>9} |")
    print(f"|{'-' * (width + 2)}|{'-' * 11}|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value:>9} |")

    restart = run.restart_ms
    detect = [(k.crashed_ns - k.t_kill_ns) / 1e6 for k in kills if k.crashed_ns is not None]
    assign = [(k.assigned_ns - k.crashed_ns) / 1e6 for k in kills if k.assigned_ns and k.crashed_ns]
    start = [(k.running_ns - k.assigned_ns) / 1e6 for k in kills if k.assigned_ns and k.from_event]
    warm = [k.restart_ms for k in kills if k.from_event and k.cold is False]
    cold = [k.restart_ms for k in kills if k.from_event and k.cold]
    print(f"\n| {'restart latency under load (ms)':<46} | {'n':>5} | {'p50':>8} | {'p99':>8} | {'max':>8} |")
    print(f"|{'-' * 48}|{'-' * 7}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    print(latency_row("kill -9 -> RUNNING again (all)", restart))
    print(latency_row("  warm spare", warm))
    print(latency_row("  cold start (no spare ready)", cold))
    print(latency_row("  of which kill -> crash seen (lifeline)", detect))
    print(latency_row("  of which crash seen -> given to a child", assign))
    print(latency_row("  of which given -> node RUNNING (recovery)", start))
    # Recovery must not grow with the node's history (a store that only grows would make it so).
    quarter = max(1, len(kills) // 4)
    for name, part in (("first", kills[:quarter]), ("last", kills[-quarter:])):
        recov = [(k.running_ns - k.assigned_ns) / 1e6 for k in part if k.assigned_ns and k.from_event]
        print(latency_row(f"    recovery, {name} {len(part)} kills", recov))
    orch = run.orchestrator_kills
    print(latency_row("orchestrator kill -9 -> its children gone", [o.children_dead_ms for o in orch]))
    print(latency_row("orchestrator kill -9 -> restarted, all RUNNING", [o.all_running_ms for o in orch]))
    measured = sum(1 for k in kills if k.from_event)
    print(f"\n{measured} of {len(kills)} restarts timed from the orchestrator's own events", end="")
    print(
        "; the rest (published before the subscription took effect) from the status poll that saw them."
        if measured < len(kills)
        else "."
    )
    load = os.getloadavg()
    print(f"load average after the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    for line in run.unexpected_exits[:20]:
        print(f"  unexpected exit: {line}")
    if check.problems:
        print(f"\nPROBLEMS ({len(check.problems)}):")
        for line in check.problems[:60]:
            print(f"  {line}")
    else:
        print("\nchecker: no problem found (every journal 1..N, no duplicate order, positions agree)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=200, help="node kills (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument(
        "--orchestrator-kills", type=int, default=None, help="default: one per 100 node kills, at least 1"
    )
    parser.add_argument(
        "--orchestrator-stalls",
        type=int,
        default=None,
        help="SIGSTOPs of the orchestrator for --stall seconds (default: one per 40 node kills); "
        "a node it then kills as hung shows as an exit the harness did not cause",
    )
    parser.add_argument("--stall", type=float, default=0.5, help="seconds each stall lasts (default 0.5)")
    parser.add_argument("--min-delay", type=float, default=0.2, help="seconds between kills, at least")
    parser.add_argument("--max-delay", type=float, default=0.8, help="seconds between kills, at most")
    parser.add_argument("--keep", action="store_true", help="keep the runtime dir (journals, stores, logs)")
    parser.add_argument("--quiet", action="store_true", help="no progress line per 10 kills")
    args = parser.parse_args()
    if args.kills < 1 or args.nodes < 1 or not 0 <= args.min_delay <= args.max_delay:
        parser.error("need --kills >= 1, --nodes >= 1 and 0 <= --min-delay <= --max-delay")
    plan = ChaosPlan(
        kills=args.kills,
        seed=args.seed,
        nodes=args.nodes,
        orchestrator_kills=args.orchestrator_kills
        if args.orchestrator_kills is not None
        else max(1, args.kills // 100),
        orchestrator_stalls=args.orchestrator_stalls
        if args.orchestrator_stalls is not None
        else args.kills // 40,
        stall_s=args.stall,
        min_delay_s=args.min_delay,
        max_delay_s=args.max_delay,
    )
    workdir = Path(tempfile.mkdtemp(prefix="chaos-bench-"))
    started = time.monotonic()

    def progress(run: ChaosRun) -> None:
        n = len(run.kills)
        if not args.quiet and n % 10 == 0:
            kill = run.kills[-1]
            print(
                f"[{time.monotonic() - started:6.1f} s] kill {n}/{args.kills}: {kill.node} "
                f"RUNNING again after {kill.restart_ms:.1f} ms",
                file=sys.stderr,
                flush=True,
            )

    run = trio.run(run_chaos, plan, workdir, progress)
    report(run)
    if args.keep:
        print(f"\nkept: runtime dir {run.runtime_dir}, fleet file and `up` output in {workdir}")
    else:
        shutil.rmtree(run.runtime_dir, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if run.check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
