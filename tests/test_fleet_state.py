"""Crash-only nodes under the orchestrator (issue #5): state survives kill -9, bad state fails fast."""

from __future__ import annotations

import os
import signal

import msgpack
import pytest
import trio

from orchestrator.fleet.config import NodeSpec, state_path
from orchestrator.fleet.orchestrator import Orchestrator
from orchestrator.fleet.state import NodeState
from orchestrator.journal import journal_path, read_journal
from orchestrator.supervision.policy import RestartPolicy
from tests.fleet_support import ROOT, Subscriber, fleet, node, wait_incarnation

pytestmark = pytest.mark.trio

TIMEOUT = 60  # bounds a broken test on a loaded machine; never a speed assertion


def journaled(state_dir, node_id: str) -> list[list]:
    events = []
    for record in read_journal(journal_path(state_dir, node_id)):
        events.extend(msgpack.unpackb(record.payload, raw=False)["events"])
    return events


async def test_a_node_killed_9_comes_back_with_its_state_and_loses_no_event(tmp_path):
    config = fleet(tmp_path, node("a"), node_state="normal")
    orch = Orchestrator(config)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            sub = Subscriber(orch.event_endpoint)
            try:
                await orch.wait_for("a", NodeState.RUNNING)
                for incarnation in (2, 3):  # killed while trading, twice
                    seen = await sub.events_of("a", 40)
                    assert any(e[3] == "OrderFilled" for e in seen) or incarnation == 3
                    os.kill(orch.node_status("a").pid, signal.SIGKILL)
                    await wait_incarnation(orch, "a", incarnation, NodeState.RUNNING)
                status = await orch.command("a", "status")
                restored = status["durable_state"]["restored"]
                assert restored["last_seq"] > 0 and restored["accounts"] == 1 and restored["venues"] == 1
                assert status["durable_state"]["path"] == str(state_path(orch.state_dir, "a"))
                await sub.events_of("a", 20)
            finally:
                await sub.aclose()
            orch.shutdown()
    events = journaled(orch.state_dir, "a")
    assert [e[0] for e in events] == list(range(1, len(events) + 1)), "no gap, no duplicate"
    submitted = [e[4]["client_order_id"] for e in events if e[3] == "OrderSubmitted"]
    assert submitted and len(submitted) == len(set(submitted)), "no client order id used twice"
    assert not [e for e in events if e[3] == "OrderRejected"]


async def test_a_corrupt_state_file_fails_the_node_at_once_naming_the_file(tmp_path):
    config = fleet(tmp_path, node("bad"), node("good", seed=2), node_state="normal")
    path = state_path(config.state_dir, "bad")
    config.runtime_dir.mkdir(mode=0o700)
    path.parent.mkdir()
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    orch = Orchestrator(config)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("bad", NodeState.FAILED)
            await orch.wait_for("good", NodeState.RUNNING)
            bad = orch.node_status("bad")
            assert bad.restarts == 0, "a restart would meet the same file"
            assert str(path) in bad.last_exit and "corrupt" in bad.last_exit.lower()
            orch.shutdown()


async def test_a_state_file_older_than_the_journal_is_refused(tmp_path):
    config = fleet(tmp_path, node("a"), node_state="normal")
    with trio.fail_after(TIMEOUT):
        for attempt in (1, 2):
            orch = Orchestrator(config)
            async with trio.open_nursery() as nursery:
                await nursery.start(orch.run)
                if attempt == 1:
                    sub = Subscriber(orch.event_endpoint)
                    try:
                        await orch.wait_for("a", NodeState.RUNNING)
                        await sub.events_of("a", 10)
                    finally:
                        await sub.aclose()
                else:
                    await orch.wait_for("a", NodeState.FAILED)
                    last_exit = orch.node_status("a").last_exit
                orch.shutdown()
            if attempt == 1:  # the node's state is lost; its journal is not
                state_path(config.state_dir, "a").unlink()
    assert "older than the node's event history" in last_exit
    assert str(state_path(config.state_dir, "a")) in last_exit


async def test_a_stop_slower_than_the_heartbeat_timeout_is_not_taken_for_a_hang(tmp_path):
    doc = {
        "node": {"trader_id": "SLOW", "log_level": "ERROR"},
        "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
        "instruments": [{"id": "EUR/USD.SIM"}],
        "strategies": [{"path": "tests.slow_stop:SlowStop", "config": {"stop_delay_s": 1.0}}],
    }
    spec = NodeSpec("slow", doc, str(ROOT / "configs"), RestartPolicy())
    config = fleet(tmp_path, spec, node_state="normal", heartbeat_timeout_s=0.3)
    orch = Orchestrator(config)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("slow", NodeState.RUNNING)
            status = await orch.stop_node("slow")
            assert status.state is NodeState.STOPPED, status.last_exit
            assert "heartbeat" not in status.last_exit and "exit code 0" in status.last_exit
            # No process, so no heartbeat age or event rate (not its last process's, growing).
            row = status.to_dict(trio.current_time() + 60)
            assert row["heartbeat_age_ms"] is None and row["events_per_s"] is None
            assert row["events"] > 0 and row["last_exit"] == status.last_exit
            orch.shutdown()
