"""Chaos proof of issue #5, the harness: run a fleet and kill -9 its nodes (and the orchestrator) at random.

**The harness** (:func:`run_chaos`) runs the fleet of ``configs/chaos.toml`` (three sandbox nodes
trading several times a second) under a real ``python -m orchestrator up`` process, as an operator
would. A seeded RNG picks when (random delays: the test's input) and whom to kill; each kill is a
SIGKILL of the node's current child (pid from the control socket's ``status``), then a wait for
that node to be RUNNING again in a new incarnation. The waits are on the orchestrator's own state
change events (its PUB socket, topic ``orchestrator``), with a ``status`` poll as the fallback for
a change published before the subscription took effect; never a fixed sleep. Once or more in the
middle the orchestrator itself is killed -9: its children must die with it (``PR_SET_PDEATHSIG``)
before it is started again on the same runtime dir, which must pick up every journal where it
stopped. At the end ``orchestrator down`` stops everything gracefully and the checker runs.

Restart latency is kill -> the orchestrator's ``running`` event for the new incarnation, both on
the wall clock (the event carries the orchestrator's ``time.time_ns()``): what the fleet's
supervision costs under load, including the node's recovery (store load, reconciliation).
"""

from __future__ import annotations

import copy
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import trio

from orchestrator.control.cli_support import wait_pid_exit
from orchestrator.control.client import ControlClient, NotRunning, RequestFailed
from orchestrator.exception_groups import leaves as exception_leaves
from orchestrator.fleet.subscriber import EventSubscriber
from orchestrator.transport.runtime_dir import ipc_endpoint
from tests.chaos_check import (
    CHAOS_FLEET,
    ROOT,
    CheckResult,
    NodeCheck,
    check_fleet,
    check_node,
    instruments_of,
    state_path,
)
from tests.test_orchestrator_process import _toml, children_of


class ChaosError(Exception):
    """The fleet did not do what the harness waited for (within its bound); the message says what."""


@dataclass(frozen=True)
class ChaosPlan:
    """The input of a chaos run; the same plan and seed give the same kill schedule."""

    kills: int = 30
    seed: int = 1
    nodes: int = 3
    orchestrator_kills: int = 1  # spread evenly through the run
    orchestrator_stalls: int = 0  # SIGSTOP of the orchestrator for stall_s, spread evenly too
    stall_s: float = 0.5  # longer than the heartbeat timeout: every deadline passes meanwhile
    min_delay_s: float = 0.2  # between kills (after the previous restart)
    max_delay_s: float = 0.8
    quick_kill_share: float = 0.2  # this share of kills comes 0-50 ms after the restart
    spares: int | None = None  # None: as in configs/chaos.toml
    journal_fsync: str | None = None
    rate: float | None = None  # quotes/s per node; None: as in configs/chaos.toml
    wait_timeout_s: float = 30.0  # bound on any one wait (a broken fleet, never a speed assertion)
    template: Path = CHAOS_FLEET


@dataclass
class Kill:
    """One SIGKILL of a node's child and how the fleet answered it."""

    node: str
    pid: int
    incarnation: int  # killed
    t_kill_ns: int
    lifetime: int = 1  # which orchestrator process supervised it (1 = the first)
    new_incarnation: int = 0
    crashed_ns: int | None = None  # the orchestrator's "crashed" event
    assigned_ns: int | None = None  # its "starting" event for the new incarnation (given to a child)
    running_ns: int | None = None  # its "running" event for the new incarnation (or first poll seeing it)
    from_event: bool = False
    cold: bool | None = None
    open_orders: int = 0  # working orders at the instant of the kill (from the journal, after the run)
    open_positions: int = 0

    @property
    def restart_ms(self) -> float:
        return (self.running_ns - self.t_kill_ns) / 1e6


@dataclass
class OrchestratorKill:
    pid: int
    children: int
    t_kill_ns: int
    children_dead_ms: float = 0.0  # kill -> the last child ended (PR_SET_PDEATHSIG)
    all_running_ms: float = 0.0  # kill -> a new orchestrator with every node RUNNING


@dataclass
class ChaosRun:
    """Everything a chaos run did and what the checker found."""

    plan: ChaosPlan
    runtime_dir: Path
    fleet_path: Path
    node_ids: list[str]
    kills: list[Kill] = field(default_factory=list)
    orchestrator_kills: list[OrchestratorKill] = field(default_factory=list)
    orchestrator_stalls: int = 0  # SIGSTOP/SIGCONT of the orchestrator done
    up_exit_codes: list[int | None] = field(default_factory=list)  # -9 for the killed ones
    down_exit_code: int | None = None
    unexpected_exits: list[str] = field(default_factory=list)  # crashes/hang kills the harness did not cause
    elapsed_s: float = 0.0
    check: CheckResult | None = None

    @property
    def restart_ms(self) -> list[float]:
        return [k.restart_ms for k in self.kills if k.running_ns is not None]

    def percentile(self, q: float) -> float:
        values = sorted(self.restart_ms)
        if not values:
            return math.nan
        return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

    @property
    def kills_with_open_orders(self) -> int:
        return sum(1 for k in self.kills if k.open_orders)

    @property
    def kills_with_open_positions(self) -> int:
        return sum(1 for k in self.kills if k.open_positions)

    def summary(self) -> str:
        ms = self.restart_ms
        lat = (
            f"restart p50 {statistics.median(ms):.1f} ms, p99 {self.percentile(0.99):.1f} ms, max {max(ms):.1f} ms"
            if ms
            else "no restart measured"
        )
        return (
            f"{len(self.kills)} node kills ({self.kills_with_open_orders} with orders working, "
            f"{self.kills_with_open_positions} with positions open), "
            f"{len(self.orchestrator_kills)} orchestrator kills, {lat}; "
            f"final down {'clean' if self.up_exit_codes[-1:] == [0] else 'NOT clean'}; "
            f"{len(self.unexpected_exits)} exits the harness did not cause"
            + "".join(f"\n  {u}" for u in self.unexpected_exits[:10])
            + f"\nruntime dir {self.runtime_dir}"
        )


def write_chaos_fleet(path: Path, runtime_dir: Path, plan: ChaosPlan) -> tuple[Path, list[str]]:
    """Write the fleet file of a run: the template's nodes (cycled with new ids/seeds past its count)."""
    with open(plan.template, "rb") as f:
        doc = tomllib.load(f)
    settings = dict(doc.get("orchestrator", {}), runtime_dir=str(runtime_dir), state_dir=str(runtime_dir))
    if plan.spares is not None:
        settings["spares"] = plan.spares
    if plan.journal_fsync is not None:
        settings["journal_fsync"] = plan.journal_fsync
    templates = doc["nodes"]
    nodes = []
    for i in range(plan.nodes):
        entry = copy.deepcopy(templates[i % len(templates)])
        if i >= len(templates):  # another copy of a template: its own id, trader and prices
            entry["id"] = f"{entry['id']}-{i}"
            entry["node"]["trader_id"] = f"{entry['node']['trader_id']}-{i}"
            for client in entry.get("data_clients", []):
                client["seed"] = client.get("seed", 42) + 100 * i
        if plan.rate is not None:
            for client in entry.get("data_clients", []):
                client["rate"] = plan.rate
        nodes.append(entry)
    path.write_text(_toml({"orchestrator": settings, "nodes": nodes}))
    return path, [n["id"] for n in nodes]


class _Fleet:
    """One ``orchestrator up`` process and what the harness sees of it (state changes, status)."""

    POLL_S = 0.1  # re-read status this often while waiting, in case a state change was not seen

    CRASH_LOOP = 3  # a node this many incarnations past what the harness caused is crash-looping
    EVENT_GRACE_S = 1.0  # how long a state change may trail the status that already shows it

    def __init__(self, fleet_path: Path, runtime_dir: Path, log_path: Path, timeout_s: float) -> None:
        self.fleet_path = fleet_path
        self.runtime_dir = runtime_dir
        self.log_path = log_path
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None
        self.changes: list[dict] = []  # this orchestrator's state change events, as received
        self.lifetime = 0  # how many orchestrator processes were started (incarnations restart at 1)
        self.history: list[tuple[int, dict]] = []  # (lifetime, change) over every orchestrator
        self._changed = trio.Event()
        self._client: ControlClient | None = None
        self._cancel: trio.CancelScope | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        """Subscribe to state changes, start ``up``, wait until every node is RUNNING."""
        self.changes = []
        self.lifetime += 1
        # Subscribe first: a SUB may connect before the PUB binds (zmq retries); what it still
        # misses before its subscription takes effect, the status poll of _wait covers.
        sub = EventSubscriber(ipc_endpoint(self.runtime_dir, "events"), nodes=[])
        await nursery.start(self._listen, sub)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "up", str(self.fleet_path)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await self.wait(
            lambda rows: all(r["state"] == "running" for r in rows.values()), "every node RUNNING", {}
        )

    async def _listen(self, sub: EventSubscriber, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._cancel = scope
            task_status.started()
            try:
                async for item in sub:
                    self.changes.append(item.message)
                    self.history.append((self.lifetime, item.message))
                    self._changed.set()
                    self._changed = trio.Event()
            finally:
                with trio.CancelScope(shield=True):
                    await sub.aclose()

    def stop_listening(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
        if self._client is not None:
            self._client.close()
            self._client = None

    def status(self) -> dict[str, dict] | None:
        """node -> status row, or None while no orchestrator answers (starting, or gone)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ChaosError(
                f"the orchestrator exited with status {self.proc.returncode}; see {self.log_path}"
            )
        try:
            if self._client is None:
                self._client = ControlClient(self.runtime_dir)
            return {r["node"]: r for r in self._client.call("status")}
        except (NotRunning, RequestFailed):
            if self._client is not None:
                self._client.close()
                self._client = None
            return None

    async def wait(self, predicate, what: str, expected: dict[str, int] | None) -> dict[str, dict]:
        """Until ``predicate(status rows)``: woken by each state change, re-polled every POLL_S.

        A node FAILED ends the wait at once with its last exit, and so does a node CRASH_LOOP
        incarnations past what ``expected`` accounts for (node -> incarnation, default 1; None:
        no such check) without running: waiting out the timeout would only hide the reason.
        """
        deadline = trio.current_time() + self.timeout_s
        while True:
            changed = self._changed
            rows = self.status()
            if rows is not None and predicate(rows):
                return rows
            for row in (rows or {}).values():
                want = None if expected is None else expected.get(row["node"], 1)
                looping = want is not None and row["incarnation"] > want + self.CRASH_LOOP
                if row["state"] == "failed" or (looping and row["state"] != "running"):
                    raise ChaosError(
                        f"{what}: node {row['node']} is {row['state']} at incarnation {row['incarnation']} "
                        f"(the harness expected {want}); its last exit: "
                        f"{row['last_exit']}; see {self.runtime_dir}/logs/{row['node']}.log"
                    )
            if trio.current_time() > deadline:
                raise ChaosError(f"{what}: not within {self.timeout_s:g} s; last status: {rows}")
            with trio.move_on_after(self.POLL_S):
                await changed.wait()

    async def event(self, node: str, state: str, min_incarnation: int, since: int) -> dict | None:
        """The state change ``find`` looks for, waiting (bounded) for it to arrive.

        Status may say RUNNING before the listener task has read the event published at the same
        moment; a change published before the subscription took effect never comes (None).
        """
        with trio.move_on_after(self.EVENT_GRACE_S):
            while True:
                changed = self._changed
                found = self.find(node, state, min_incarnation, since)
                if found is not None:
                    return found
                await changed.wait()
        return None

    def find(self, node: str, state: str, min_incarnation: int, since: int) -> dict | None:
        """The first state change ``node -> state`` at or above ``min_incarnation`` from ``since``."""
        for event in self.changes[since:]:
            if event["node"] == node and event["state"] == state and event["incarnation"] >= min_incarnation:
                return event
        return None


async def _kill_node(fleet: _Fleet, rng: random.Random, node_ids: list[str]) -> Kill:
    """SIGKILL one random node's child; wait until it is RUNNING again in a new incarnation."""
    rows = await fleet.wait(
        lambda r: all(x["state"] == "running" for x in r.values()), "every node RUNNING", None
    )
    node = rng.choice(node_ids)
    row = rows[node]
    pid, incarnation = row["pid"], row["incarnation"]
    if pid not in children_of(fleet.proc.pid):  # never signal a pid that is not (or no longer) ours
        raise ChaosError(f"{node}: pid {pid} from status is not a child of the orchestrator {fleet.proc.pid}")
    since = len(fleet.changes)
    kill = Kill(node, pid, incarnation, time.time_ns(), lifetime=fleet.lifetime)
    expected = {n: r["incarnation"] + (n == node) for n, r in rows.items()}
    os.kill(pid, signal.SIGKILL)
    rows = await fleet.wait(
        lambda r: r[node]["incarnation"] > incarnation and r[node]["state"] == "running",
        f"{node} RUNNING again after kill -9 of pid {pid} (incarnation {incarnation})",
        expected,
    )
    polled = time.time_ns()
    kill.new_incarnation = rows[node]["incarnation"]
    running = await fleet.event(node, "running", incarnation + 1, since)
    crashed = fleet.find(node, "crashed", incarnation, since)
    assigned = fleet.find(node, "starting", incarnation + 1, since)
    kill.crashed_ns = crashed["ts"] if crashed else None
    kill.assigned_ns = assigned["ts"] if assigned else None
    if running is not None:
        kill.running_ns, kill.from_event, kill.cold = running["ts"], True, bool(running.get("cold"))
    else:  # published before our subscription saw it: the poll's time is an upper bound
        kill.running_ns = polled
    return kill


async def _kill_orchestrator(fleet: _Fleet, nursery: trio.Nursery) -> OrchestratorKill:
    """kill -9 the orchestrator; its children must die with it; start it again on the same dir."""
    proc = fleet.proc
    kids = children_of(proc.pid)
    record = OrchestratorKill(proc.pid, len(kids), time.time_ns())
    fleet.stop_listening()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=fleet.timeout_s)
    deadline = time.monotonic() + fleet.timeout_s
    for pid in kids:  # a pidfd per child: each wait ends the moment that child is gone
        if not wait_pid_exit(pid, max(0.0, deadline - time.monotonic())):
            raise ChaosError(
                f"child {pid} still alive {fleet.timeout_s:g} s after the orchestrator was killed"
            )
    record.children_dead_ms = (time.time_ns() - record.t_kill_ns) / 1e6
    await fleet.start(nursery)
    record.all_running_ms = (time.time_ns() - record.t_kill_ns) / 1e6
    return record


async def _stall_orchestrator(fleet: _Fleet, stall_s: float) -> None:
    """SIGSTOP the orchestrator for ``stall_s``, then SIGCONT: a supervisor held up (by the
    hypervisor, a long pause) must not kill its healthy nodes as hung meanwhile; any node exit
    it causes is an ``unexpected_exit`` of the run."""
    pid = fleet.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        await trio.sleep(stall_s)  # the stall itself: what is being survived, not a synchronisation
    finally:
        os.kill(pid, signal.SIGCONT)


async def _down(fleet: _Fleet) -> int:
    """``orchestrator down``: a graceful stop of everything; waits until ``up`` has exited."""
    fleet.stop_listening()
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "orchestrator", "down", "--runtime-dir", str(fleet.runtime_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=fleet.timeout_s + 30,
        )
    )
    if done.returncode != 0:
        raise ChaosError(f"orchestrator down failed ({done.returncode}): {done.stdout}{done.stderr}")
    return fleet.proc.wait(timeout=fleet.timeout_s)


def _schedule(plan: ChaosPlan) -> set[int]:
    """Before which node kills (by index) the orchestrator is killed: evenly spread, never first."""
    m = plan.orchestrator_kills
    return {max(1, round(plan.kills * (j + 1) / (m + 1))) for j in range(m)}


def _stall_schedule(plan: ChaosPlan, kills_before: set[int]) -> set[int]:
    """After which node kills (by count) the orchestrator is stalled: evenly spread, each in the
    middle of its share of the run, moved on by one where an orchestrator kill falls (a stall
    right before a restart of the orchestrator would test the restart, not the stall)."""
    m = plan.orchestrator_stalls
    out: set[int] = set()
    for j in range(m):
        at = max(1, round(plan.kills * (j + 0.5) / m))
        while at in kills_before or at in out:
            at += 1
        out.add(at)
    return out


async def run_chaos(plan: ChaosPlan, workdir: Path, progress=None) -> ChaosRun:
    """Run the plan against a fresh fleet; return what happened and the checker's result.

    ``workdir`` receives the fleet file and the ``up`` processes' output; the runtime dir is a new
    short dir under /tmp (ipc socket paths are limited to ~107 bytes); the caller removes it.
    ``progress(run)`` is called after each kill, if given.
    """
    started = time.monotonic()
    rng = random.Random(plan.seed)
    runtime_dir = Path(tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))
    fleet_path, node_ids = write_chaos_fleet(Path(workdir) / "chaos-fleet.toml", runtime_dir, plan)
    run = ChaosRun(plan, runtime_dir, fleet_path, node_ids)
    fleet = _Fleet(fleet_path, runtime_dir, Path(workdir) / "orchestrator-up.log", plan.wait_timeout_s)
    orchestrator_kills_before = _schedule(plan) if plan.orchestrator_kills else set()
    stalls_after = _stall_schedule(plan, orchestrator_kills_before)
    try:
        async with trio.open_nursery() as nursery:
            await fleet.start(nursery)
            for i in range(plan.kills):
                if i in orchestrator_kills_before:
                    old = fleet.proc
                    run.orchestrator_kills.append(await _kill_orchestrator(fleet, nursery))
                    run.up_exit_codes.append(old.returncode)
                quick = rng.random() < plan.quick_kill_share
                await trio.sleep(
                    rng.uniform(0, 0.05) if quick else rng.uniform(plan.min_delay_s, plan.max_delay_s)
                )
                run.kills.append(await _kill_node(fleet, rng, node_ids))
                if i + 1 in stalls_after:
                    await _stall_orchestrator(fleet, plan.stall_s)
                    run.orchestrator_stalls += 1
                if progress is not None:
                    progress(run)
            run.up_exit_codes.append(await _down(fleet))
            run.down_exit_code = 0
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # trio wraps; a ChaosError alone is re-raised as itself
        leaves = exception_leaves(group)
        if leaves and all(isinstance(e, ChaosError) for e in leaves):
            raise ChaosError(f"{leaves[0]}\n(fleet {fleet_path}, runtime dir {runtime_dir})") from group
        raise
    finally:
        fleet.stop_listening()
        if fleet.proc is not None and fleet.proc.poll() is None:  # a failed run: leave nothing behind
            fleet.proc.kill()  # its children follow it (PR_SET_PDEATHSIG)
            fleet.proc.wait()
    ours = {(k.lifetime, k.node, k.incarnation) for k in run.kills}
    for lifetime, change in fleet.history:
        if change["state"] == "crashed" and (lifetime, change["node"], change["incarnation"]) not in ours:
            run.unexpected_exits.append(
                f"{change['node']} incarnation {change['incarnation']} (orchestrator #{lifetime}): "
                f"{change.get('reason')}"
            )
    run.check = check_fleet(runtime_dir, node_ids, instruments_of(fleet_path))
    for kill in run.kills:
        kill.open_orders, kill.open_positions = run.check.nodes[kill.node].open_at(kill.t_kill_ns)
    run.elapsed_s = time.monotonic() - started
    return run


__all__ = [
    "CHAOS_FLEET",
    "ChaosError",
    "ChaosPlan",
    "ChaosRun",
    "CheckResult",
    "Kill",
    "NodeCheck",
    "OrchestratorKill",
    "check_fleet",
    "check_node",
    "instruments_of",
    "run_chaos",
    "state_path",
    "write_chaos_fleet",
]
