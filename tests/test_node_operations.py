"""Operators' start/stop/restart of one node at once, and a shutdown meeting one under way.

Two operators (or a script and a human) restarting the same node at the same moment used to meet
half-way: the second found the node STOPPING, the invalid transition escaped into the
orchestrator's nursery and the whole fleet went down. A `down` during a node's slow stop cut that
stop short with SIGKILL (its ``on_stop`` is where positions are flattened). Real processes.
"""

from __future__ import annotations

import pytest
import trio
from fleet_support import ROOT, fleet, fleet_ready, node, start_with_control

from orchestrator.control.client import ControlClient, RequestFailed
from orchestrator.fleet.config import NodeSpec
from orchestrator.fleet.orchestrator import Orchestrator
from orchestrator.fleet.state import NodeState
from orchestrator.supervision.policy import RestartPolicy

pytestmark = pytest.mark.trio

TIMEOUT = 60  # bounds a broken test on a loaded 2-core machine; never a speed assertion


def slow_stopping_node(node_id: str, stop_delay_s: float) -> NodeSpec:
    doc = {
        "node": {"trader_id": "SLOW", "log_level": "ERROR"},
        "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
        "instruments": [{"id": "EUR/USD.SIM"}],
        "strategies": [{"path": "tests.slow_stop:SlowStop", "config": {"stop_delay_s": stop_delay_s}}],
    }
    return NodeSpec(node_id, doc, str(ROOT / "configs"), RestartPolicy())


async def test_concurrent_operations_on_one_node_take_turns_and_the_fleet_runs_on(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a", 1), node("b", 2), node_state="off"))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await fleet_ready(orch, "a", "b")
            a, b = orch.node_status("a"), orch.node_status("b")
            b_pid = b.pid
            async with trio.open_nursery() as operators:
                operators.start_soon(orch.restart_node, "a")
                operators.start_soon(orch.restart_node, "a")
            await orch.wait_for("a", NodeState.RUNNING)
            assert a.incarnation == 3  # both restarts done, one after the other

            async with trio.open_nursery() as operators:
                operators.start_soon(orch.restart_node, "a")
                operators.start_soon(orch.stop_node, "a")
            # Whichever came second decided; neither met the other half-way.
            await orch.wait_for("a", NodeState.STOPPED, NodeState.RUNNING)
            assert (a.state, a.incarnation) in ((NodeState.STOPPED, 4), (NodeState.RUNNING, 4))
            assert (b.state, b.pid) == (NodeState.RUNNING, b_pid)
            orch.shutdown()
    assert orch.clean_shutdown


async def test_a_shutdown_waits_for_a_stop_under_way_and_the_waiting_client_is_answered(tmp_path):
    """`down` while `restart slow` is stopping it: the stop runs to its end (clean, exit 0), the
    restart's start is refused as the fleet is closing, and its client hears so at once."""
    orch = Orchestrator(fleet(tmp_path, slow_stopping_node("slow", 1.0), node_state="off"))
    answers: list = []

    def restart_over_the_control_socket() -> None:
        with ControlClient(orch.runtime_dir) as client:
            try:
                answers.append(client.call("restart", node="slow", timeout=TIMEOUT))
            except RequestFailed as exc:
                answers.append(exc)

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await start_with_control(nursery, orch)
            await fleet_ready(orch, "slow")
            nursery.start_soon(trio.to_thread.run_sync, restart_over_the_control_socket)
            await orch.wait_for("slow", NodeState.STOPPING)
            orch.shutdown()
    status = orch.node_status("slow")
    assert status.state is NodeState.STOPPED and "exit code 0" in status.last_exit, status.last_exit
    assert orch.clean_shutdown
    (answer,) = answers
    assert isinstance(answer, RequestFailed), answer
    assert "the orchestrator is shutting down" in str(answer) or "shut down before" in str(answer), answer
