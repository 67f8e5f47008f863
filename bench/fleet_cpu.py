"""What a running fleet costs: CPU of each node's child and of the orchestrator, idle and trading.

The fleet of ``bench/restart_latency.py`` (three sandbox nodes, quote mean reversion, a durable
state store each, one warm spare, the zygote), run for ``--window`` seconds at each quote rate of
``--rates`` (quotes per second per node; 1 is a fleet at rest, where the cost is the heartbeats:
50 ms each way, and the liveness tick). Per process, the CPU its threads ran in the window (the
kernel's scheduler counters, ``/proc/<pid>/task/*/schedstat``: ns, not clock ticks), as % of one
core, and the events each node relayed per second.

Baseline, in the same run: a bare trio process that wakes every 50 ms and does nothing, the
floor of what one heartbeat-paced loop costs on this machine (each wake-up of a process costs
the kernel and the hypervisor something, whatever Python does).

Run:  .venv/bin/python bench/fleet_cpu.py                       (about 30 s)
      .venv/bin/python bench/fleet_cpu.py --rates 1,50,200,1000 --window 10
      .venv/bin/python bench/fleet_cpu.py --rates 1 --heartbeat-interval 0.1   (what heartbeats cost)
      .venv/bin/python bench/fleet_cpu.py --rates 200 --node-state off         (what the store costs)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import restart_latency as fleet  # noqa: E402  (the same fleet, config and node documents)

from orchestrator.fleet.state import NodeState  # noqa: E402

SETTLE_S = 2.0
"""After every node is RUNNING: the start's own work is over before the window opens."""

BARE_LOOP = (
    "import trio\nasync def main():\n    while True:\n        await trio.sleep(0.05)\ntrio.run(main)\n"
)


def cpu_s(pid: int) -> float:
    """Seconds on a CPU so far, all threads of ``pid`` (0 if it is gone)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total / 1e9


async def measure(rate: float, window_s: float, heartbeat_s: float) -> dict:
    fleet.QUOTE_RATE["per_s"] = rate
    runtime = Path(tempfile.mkdtemp(prefix="fc-", dir="/tmp"))
    config = fleet.config(runtime, spares=1, heartbeat_timeout_s=max(0.3, 6 * heartbeat_s))
    orch = fleet.Orchestrator(dataclasses.replace(config, heartbeat_interval_s=heartbeat_s))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            with trio.fail_after(120):
                for node in fleet.NODES:
                    await orch.wait_for(node, NodeState.RUNNING)
                await orch.wait_until(lambda: orch.spares_ready >= 1)
            await trio.sleep(SETTLE_S)
            pids = {node: orch.node_status(node).pid for node in fleet.NODES}
            pids["spare"] = orch.spare_pids[0]
            pids["orchestrator"] = os.getpid()
            events0 = {node: orch.node_status(node).events for node in fleet.NODES}
            before = {name: cpu_s(pid) for name, pid in pids.items()}
            t0 = time.monotonic()
            await trio.sleep(window_s)  # the measured window itself
            elapsed = time.monotonic() - t0
            after = {name: cpu_s(pid) for name, pid in pids.items()}
            events = {node: (orch.node_status(node).events - events0[node]) / elapsed for node in fleet.NODES}
            restarts = sum(orch.node_status(node).restarts for node in fleet.NODES)
            orch.shutdown()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    share = {name: 100 * (after[name] - before[name]) / elapsed for name in pids}
    return {"rate": rate, "share": share, "events": events, "restarts": restarts}


def bare_loop(window_s: float) -> float:
    """% of a core a bare trio process waking every 50 ms uses over ``window_s``."""
    proc = subprocess.Popen([sys.executable, "-c", BARE_LOOP])
    try:
        time.sleep(1.0)  # its interpreter start and imports are not the loop's cost
        before, t0 = cpu_s(proc.pid), time.monotonic()
        time.sleep(window_s)  # the measured window itself
        return 100 * (cpu_s(proc.pid) - before) / (time.monotonic() - t0)
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="1,200", help="quotes/s per node, comma-separated (default 1,200)")
    parser.add_argument("--window", type=float, default=8.0, help="measured seconds per rate (default 8)")
    parser.add_argument(
        "--node-state",
        choices=("full", "normal", "off"),
        default="full",
        help="the nodes' state store (default full, the fleet default; off: what the store costs)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=0.05,
        help="seconds between heartbeats, each way (default 0.05, the fleet default; the timeout "
        "stays 0.3 s or 6 intervals)",
    )
    args = parser.parse_args()
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates must be numbers separated by commas, got {args.rates!r}")
    if not rates or any(r <= 0 for r in rates) or args.window <= 0 or args.heartbeat_interval <= 0:
        parser.error("need --rates > 0, --window > 0 and --heartbeat-interval > 0")

    fleet.NODE_STATE["mode"] = args.node_state
    results = [trio.run(measure, rate, args.window, args.heartbeat_interval) for rate in rates]
    floor = bare_loop(args.window)
    load = os.getloadavg()
    print(
        f"\nfleet CPU: 3 sandbox nodes (node_state = {fleet.NODE_STATE['mode']!r}), one spare, the "
        f"zygote; heartbeats every {args.heartbeat_interval * 1000:g} ms; {args.window:g} s per rate; "
        "% of one core\n"
    )
    print("| quotes/s per node | node (each)         | orchestrator | spare | events/s per node |")
    print("|-------------------|---------------------|--------------|-------|-------------------|")
    for r in results:
        share, events = r["share"], r["events"]
        nodes = " ".join(f"{share[n]:5.1f}" for n in fleet.NODES)
        rate_events = " ".join(f"{events[n]:.0f}" for n in fleet.NODES)
        print(
            f"| {r['rate']:>17g} | {nodes:<19} | {share['orchestrator']:>12.1f} | {share['spare']:>5.1f} "
            f"| {rate_events:>17} |"
        )
    print(f"\nbaseline: a bare trio process waking every 50 ms: {floor:.2f}% of a core")
    restarts = sum(r["restarts"] for r in results)
    print(f"restarts during the runs: {restarts} (a node restarted mid-window would spoil its figure)")
    print(f"load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
