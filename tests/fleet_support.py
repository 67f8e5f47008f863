"""Shared set-up for orchestrator tests: small, fast sandbox nodes and an event subscriber."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack
import trio

from orchestrator.fleet.config import NodeSpec, OrchestratorConfig
from orchestrator.fleet.state import NodeState
from orchestrator.fleet.subscriber import EventSubscriber
from orchestrator.journal import journal_path, read_journal
from orchestrator.supervision.policy import RestartPolicy

ROOT = Path(__file__).resolve().parent.parent


def fast_node_doc(seed: int = 1, *, instrument: str = "EUR/USD.SIM") -> dict:
    """A sandbox node that trades within a second: mean reversion on 200 quotes/s."""
    return {
        "node": {"trader_id": f"T-{seed}", "log_level": "ERROR"},
        "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
        "instruments": [{"id": instrument}],
        "data_clients": [{"type": "random_walk", "rate": 200.0, "seed": seed}],
        "strategies": [
            {
                "path": "node.strategies.quote_mean_reversion:QuoteMeanReversion",
                "config": {
                    "instrument_id": instrument,
                    "trade_size": 1000,
                    "window": 5,
                    "entry_ticks": 1,
                    "use_limit_orders": False,
                },
            }
        ],
    }


def fleet(tmp_path: Path, *specs: NodeSpec, **settings) -> OrchestratorConfig:
    # ipc paths must stay short (unix socket limit): use a short dir under /tmp.
    runtime = Path("/tmp") / f"orch-test-{os.getpid()}-{tmp_path.name[-12:]}"
    settings.setdefault("spares", 1)
    settings.setdefault("state_dir", runtime)  # journals and state stores beside the sockets here
    return OrchestratorConfig(runtime_dir=runtime, nodes=specs, **settings)


def node(node_id: str, seed: int = 1, **policy) -> NodeSpec:
    return NodeSpec(node_id, fast_node_doc(seed), str(ROOT / "configs"), RestartPolicy(**policy))


class Subscriber(EventSubscriber):
    """The public EventSubscriber plus a helper that collects one node's relayed events."""

    async def events_of(self, node_id: str, count: int) -> list:
        """The next ``count`` relayed node events of ``node_id`` (each [seq, ts, topic, type, data])."""
        got: list = []
        want = f"evt.{node_id}"
        while len(got) < count:
            item = await self.next_event()
            if item.topic == want:
                got.extend(item.message["events"])
        return got

    async def orchestrator_event(self, where) -> dict:
        """The next node state change announced by the orchestrator that satisfies ``where``."""
        while True:
            item = await self.next_event()
            if item.topic == "orchestrator" and where(item.message):
                return item.message


async def start_with_control(nursery: trio.Nursery, orch):
    """Run ``orch`` and its control server in ``nursery``, as `up` does: the server ends with the
    orchestrator's run (the nursery is cancelled then). Returns the server once both serve."""
    from orchestrator.control.server import ControlServer

    control = ControlServer(orch)

    async def run_orchestrator(task_status=trio.TASK_STATUS_IGNORED) -> None:
        await orch.run(task_status=task_status)
        nursery.cancel_scope.cancel()

    await nursery.start(run_orchestrator)
    await nursery.start(control.serve)
    return control


def journaled(orch, node_id: str) -> list[list]:
    """Every journaled event of ``node_id``: each record is one relayed evt frame, keyed by its last seq."""
    events = []
    for record in read_journal(journal_path(orch.state_dir, node_id)):
        frame = msgpack.unpackb(record.payload, raw=False)
        assert record.seq == frame["events"][-1][0]
        events.extend(frame["events"])
    return events


def assert_complete(events: list[list]) -> None:
    seqs = [e[0] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "journal seqs are 1..N, no gap, no duplicate"


async def fleet_ready(orch, *node_ids: str) -> None:
    """Until each of ``node_ids`` is RUNNING and the spare pool is full."""
    for node_id in node_ids:
        await orch.wait_for(node_id, NodeState.RUNNING)
    await orch.wait_until(lambda: orch.spares_ready == orch.config.spares)


async def wait_incarnation(orch, node_id: str, incarnation: int, state) -> None:
    status = orch.node_status(node_id)
    await orch.wait_until(lambda: status.incarnation >= incarnation and status.state is state)


__all__ = [
    "Subscriber",
    "assert_complete",
    "fast_node_doc",
    "fleet",
    "fleet_ready",
    "journaled",
    "start_with_control",
    "node",
    "wait_incarnation",
    "trio",
]
