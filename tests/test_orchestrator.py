"""The orchestrator with real child processes, real sockets and real signals (issue #4)."""

from __future__ import annotations

import os
import signal
import time

import pytest
import trio
import zmq

from orchestrator.fleet.orchestrator import Orchestrator
from orchestrator.fleet.slots import SlotLogs, slot_log_path
from orchestrator.fleet.state import NodeState, Transition
from orchestrator.protocol import codec, messages
from orchestrator.protocol.limits import MAX_FRAME_BYTES
from orchestrator.supervision.exit_reason import Intent
from orchestrator.transport.trio_socket import TrioSocket
from tests.fleet_support import (
    Subscriber,
    assert_complete,
    fleet,
    fleet_ready,
    journaled,
    node,
    wait_incarnation,
)

pytestmark = pytest.mark.trio

TIMEOUT = 60  # generous: bounds a broken test on a loaded 2-core machine; never a speed assertion


async def start(config):
    orch = Orchestrator(config)
    return orch


@pytest.fixture
async def running(tmp_path, nursery):
    """Start an orchestrator for a config; shut it down (and check it stopped) at the end."""
    started = []

    async def _run(config):
        orch = Orchestrator(config)
        await nursery.start(orch.run)
        started.append(orch)
        return orch

    yield _run
    for orch in started:
        orch.shutdown()


async def test_kill9_restarts_on_a_new_incarnation_and_events_keep_flowing(tmp_path, running):
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("a")))
        sub = Subscriber(orch.event_endpoint)
        await orch.wait_for("a", NodeState.RUNNING)
        before = await sub.events_of("a", 3)
        pid = orch.node_status("a").pid
        os.kill(pid, signal.SIGKILL)
        await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
        status = orch.node_status("a")
        assert status.pid != pid and status.restarts == 1
        assert "SIGKILL" in status.last_exit
        after = await sub.events_of("a", 3)
        assert after[0][0] > before[-1][0], "sequence numbers keep growing across the restart"
        await sub.aclose()


async def test_a_restarted_node_s_old_child_leaves_no_empty_log_behind(tmp_path, running):
    """A child's own log holds what it said as a spare; one that ran a node and was killed said
    nothing there (its output went to the node's log), so its file goes when its exit is seen.
    Before, every restart left one more empty file for as long as the runtime dir lasted."""
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("a")))
        await orch.wait_for("a", NodeState.RUNNING)
        for incarnation in (2, 3):
            old = orch._node_slot["a"]
            assert slot_log_path(orch.log_dir, old.slot_id).exists()
            os.kill(old.pid, signal.SIGKILL)
            await wait_incarnation(orch, "a", incarnation, NodeState.RUNNING)
            await old.exited.wait()  # its exit seen: the pool has been told (ChildPool.discard)
            assert not slot_log_path(orch.log_dir, old.slot_id).exists()
        assert slot_log_path(orch.log_dir, orch._node_slot["a"].slot_id).exists()
        assert (orch.log_dir / "a.log").exists()  # where the node's output went


async def test_slot_logs_keep_what_says_something_the_newest_first(tmp_path):
    logs = SlotLogs(keep=2)
    paths = {name: tmp_path / f"{name}.log" for name in ("empty", "said", "early", "said2", "said3")}
    for name, path in paths.items():
        path.write_text("" if name in ("empty", "early") else f"{name}: something\n")
    logs.ended(paths["empty"], said_hello=True)
    assert not paths["empty"].exists(), "said hello, ran, said nothing: nothing to keep"
    logs.ended(paths["early"], said_hello=False)
    assert paths["early"].exists(), "never said hello: the message about it names this file"
    logs.ended(paths["said"], said_hello=True)
    logs.ended(paths["said2"], said_hello=True)  # three kept, two allowed: the oldest goes
    assert not paths["early"].exists() and paths["said"].exists() and paths["said2"].exists()
    logs.ended(paths["said3"], said_hello=True)
    assert not paths["said"].exists() and paths["said3"].exists()
    logs.ended(tmp_path / "gone.log", said_hello=True)  # removed meanwhile: nothing to do


async def test_the_spare_pool_refills_only_once_the_restarted_node_runs(tmp_path, running):
    # A new spare costs CPU (a fork and a rehearsal): started during a restart, it would compete
    # with the spare recovering the node (see Orchestrator._refill_after_start).
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("a")))
        await fleet_ready(orch, "a")
        spare = orch._children.spares[0]
        assert orch.spare_pids == (spare.pid,)  # the next spare to be taken comes first
        os.kill(orch.node_status("a").pid, signal.SIGKILL)
        await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
        status = orch.node_status("a")
        assert status.pid == spare.pid and not status.cold_start
        await orch.wait_until(lambda: orch.spares_ready == 1)
        refill = orch._children.spares[0]
        assert refill is not spare
        assert refill.process.started_at >= status.started_at, "the refill did not wait for the restart"


async def through_a_restart(orch, disrupt) -> None:
    """Run ``orch`` until node ``a`` relays, ``await disrupt(sub, its_slot)``, then check that its
    events go on after the restart, exactly once, in the journal and on the PUB."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            sub = Subscriber(orch.event_endpoint)
            await fleet_ready(orch, "a")
            before = await sub.events_of("a", 3)
            await disrupt(sub, orch._node_slot["a"])
            after = await sub.events_of("a", 3)
            await sub.aclose()
            orch.shutdown()
    assert after[0][0] > before[-1][0], "sequence numbers keep growing across the restart"
    stored = journaled(orch, "a")
    assert_complete(stored)
    assert stored[-1][0] >= after[-1][0]


async def restarted_after(sub, old_pid: int) -> dict:
    """The orchestrator's STARTING event of incarnation 2, which must name the old pid (0: none,
    the old process being gone when the node was assigned)."""
    start = await sub.orchestrator_event(
        lambda e: e["state"] == NodeState.STARTING.value and e["incarnation"] == 2
    )
    # The new child waits for the old one's end before it takes the store.
    assert start.get("after_pid", 0) == old_pid
    return start


async def test_a_hung_node_is_replaced_at_once_and_its_events_stay_exactly_once(tmp_path):
    # Found hung, a child is SIGKILLed and its node assigned to a spare at once, without waiting
    # for the kernel to finish off the old process (Orchestrator._on_hang): the new child's start
    # overlaps that teardown and waits for the old one's state-store lock. Nothing may be lost
    # or doubled across the overlap.
    orch = Orchestrator(fleet(tmp_path, node("a")))

    async def hang(sub, hung) -> None:
        os.kill(hung.pid, signal.SIGSTOP)
        await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
        status = orch.node_status("a")
        assert status.pid != hung.pid and not status.cold_start
        assert "heartbeat" in status.last_exit and "SIGKILL" in status.last_exit
        await hung.exited.wait()
        assert hung.handed_over, "the node went to a spare at the kill, not at the hung child's exit"
        reassigned = [t for t, _old, tr, _new in status.history if tr is Transition.START][-1]
        if reassigned < hung.exit_seen_at:  # the usual case: the new child overlapped the teardown
            await restarted_after(sub, hung.pid)
        else:  # a loaded machine: the kernel finished the old process before our next turn came
            await restarted_after(sub, 0)

    await through_a_restart(orch, hang)


async def test_a_crash_is_handled_as_the_process_begins_to_die_not_once_it_is_torn_down(tmp_path):
    # The node holds 300 MB (a big cache): the kernel takes tens of ms to tear it down after a
    # SIGKILL. Its lifeline tells the orchestrator as that teardown begins, with the signal, and
    # the node is reassigned at once; the new child waits for the old pid's end only before it
    # takes the state store. Nothing may be lost or doubled across the overlap.
    spec = node("a")
    spec.doc["strategies"].append({"path": "tests.ballast:Ballast", "config": {"ballast_mb": 300}})
    orch = Orchestrator(fleet(tmp_path, spec))

    async def crash(sub, crashed) -> None:
        assert crashed.lifeline is not None
        os.kill(crashed.pid, signal.SIGKILL)
        await wait_incarnation(orch, "a", 2, NodeState.STARTING)
        assert "killed by SIGKILL" in orch.node_status("a").last_exit
        assert not crashed.exited.is_set(), "the crash was seen only from the exit"
        await restarted_after(sub, crashed.pid)
        await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
        await crashed.exited.wait()
        assert not crashed.lifeline.path.exists(), "its lifeline file outlived it"

    await through_a_restart(orch, crash)


async def test_a_held_up_orchestrator_does_not_kill_its_healthy_nodes_as_hung(tmp_path, running):
    """SIGSTOP of the orchestrator itself for longer than the heartbeat timeout: the nodes' beats
    wait unread meanwhile, and on waking every deadline has passed. Before the monitor's hold-up
    rule, this killed every node of the fleet; now none may be restarted."""
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("a", seed=1), node("b", seed=2)))
        await fleet_ready(orch, "a", "b")
        pids = {n: orch.node_status(n).pid for n in ("a", "b")}
        stop = 2 * orch.config.heartbeat_timeout_s  # every deadline passes while we are stopped
        me = os.getpid()
        await trio.run_process(["sh", "-c", f"kill -STOP {me}; sleep {stop}; kill -CONT {me}"])
        resumed = trio.current_time()
        # Judged by now: each node has beaten again after the look the watcher took once held up.
        judged = resumed + orch._heartbeats.settle_s
        while not all((orch.node_status(n).last_heartbeat or 0) > judged for n in pids):
            await trio.sleep(orch.config.heartbeat_interval_s)
        assert orch._heartbeats.held_up >= 1  # the watcher saw that it woke late
        for node_id, pid in pids.items():
            status = orch.node_status(node_id)
            assert (status.incarnation, status.pid, status.state) == (1, pid, NodeState.RUNNING)
            assert status.last_exit is None


async def test_a_wedged_spare_is_found_by_its_unanswered_assign_not_the_start_up_timeout(tmp_path, running):
    """A spare that cannot run (SIGSTOPped here) gets a node: it never answers the assign, and is
    killed as hung within the heartbeat timeout, not the start-up's (here longer than this test's
    bound, so only the assign's deadline can save the node); the node runs on another child."""
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("a"), startup_timeout_s=10 * TIMEOUT))
        await fleet_ready(orch, "a")
        wedged = orch._children.spares[0]
        os.kill(wedged.pid, signal.SIGSTOP)
        os.kill(orch.node_status("a").pid, signal.SIGKILL)
        await wait_incarnation(orch, "a", 3, NodeState.RUNNING)
        status = orch.node_status("a")
        assert status.pid != wedged.pid and status.restarts == 2
        assert "did not answer its assign within 300 ms" in status.last_exit  # incarnation 2's end
        assert wedged.intent is Intent.HANG_KILL
        await wedged.exited.wait()


async def test_a_spare_gone_before_its_assign_passes_the_node_on_instead_of_failing_it(tmp_path, running):
    """A spare dead since its hello, its exit not seen yet (the orchestrator busy, say), is taken
    for a node: the assign finds no such peer, and the node goes to another child. It used to be
    marked FAILED for good."""
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("a")))
        await fleet_ready(orch, "a")
        await orch.stop_node("a")
        spare = orch._children.spares[0]
        os.kill(spare.pid, signal.SIGKILL)
        # From here until start_node, this task does not yield: the orchestrator cannot see the
        # spare's exit, as if its loop were held up. Dead (not reaped), and the ROUTER's I/O
        # thread has seen it leave once a send to it is refused.
        os.waitid(os.P_PID, spare.pid, os.WEXITED | os.WNOWAIT)
        probe = codec.encode(messages.hb(0, "orchestrator", {}))
        deadline = time.monotonic() + 10  # bounds a broken test; the loop does not yield
        while True:
            try:
                orch._router.socket.send_multipart([spare.identity, probe], zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                if exc.errno == zmq.EHOSTUNREACH:  # the ROUTER knows it is gone
                    break
            assert time.monotonic() < deadline, "the ROUTER never saw the dead spare leave"
            time.sleep(0.001)  # the I/O thread's turn; this task must not yield to the loop
        orch._router.has_unread()  # the re-check after a raw operation (TrioSocket's rule)
        assert spare in orch._children.spares and not spare.exited.is_set()
        await orch.start_node("a")
        await orch.wait_for("a", NodeState.RUNNING)
        status = orch.node_status("a")
        assert status.incarnation == 2 and status.cold_start and status.pid != spare.pid
        await spare.exited.wait()


async def test_transient_node_that_exits_cleanly_is_not_restarted(tmp_path, running):
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("t", restart_type="transient")))
        await orch.wait_for("t", NodeState.RUNNING)
        await orch.command("t", "stop")  # the node ends by itself, as far as supervision knows
        await orch.wait_for("t", NodeState.STOPPED)
        status = orch.node_status("t")
        assert status.restarts == 0 and status.incarnation == 1
        assert status.last_reason == "clean"


async def test_permanent_node_that_exits_cleanly_is_restarted(tmp_path, running):
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("p")))
        await orch.wait_for("p", NodeState.RUNNING)
        await orch.command("p", "stop")
        await wait_incarnation(orch, "p", 2, NodeState.RUNNING)


async def test_restart_intensity_exceeded_fails_the_node_and_others_carry_on(tmp_path, running):
    from orchestrator.fleet.config import NodeSpec
    from orchestrator.supervision.policy import RestartPolicy
    from tests.fleet_support import ROOT, fast_node_doc

    # The strategy's start fails every time (its config is valid: the node is built each time).
    doc = fast_node_doc(2)
    doc["strategies"] = [{"path": "tests.failing_start:FailsToStart"}]
    broken = NodeSpec(
        "broken",
        doc,
        str(ROOT / "configs"),
        RestartPolicy(max_restarts=2, window_s=60, backoff_initial_s=0.01, backoff_max_s=0.02),
    )
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("healthy"), broken, spares=2))
        await orch.wait_for("broken", NodeState.FAILED)
        status = orch.node_status("broken")
        assert status.restarts == 2
        assert orch.node_status("healthy").state is NodeState.RUNNING
        assert orch.node_status("healthy").incarnation == 1
        assert await orch.command("healthy", "ping") == "pong"
        # An operator's stop of the given-up node keeps it down, as `stop --help` says: STOPPED.
        assert (await orch.stop_node("broken")).state is NodeState.STOPPED
        assert "the venue refused the session" in orch.node_status("broken").last_exit


async def test_garbage_truncated_and_oversized_frames_leave_everything_running(tmp_path, running):
    with trio.fail_after(TIMEOUT):
        orch = await running(fleet(tmp_path, node("a")))
        await orch.wait_for("a", NodeState.RUNNING)
        ctx = zmq.Context()
        raw = ctx.socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(orch.node_endpoint)
        rogue = TrioSocket(raw)
        good = codec.encode({"k": "hb", "v": 1, "ts": 1, "state": "RUNNING", "counters": {}})
        for frame in (b"\xc1garbage", good[: len(good) // 2], b"", good):
            await rogue.send_multipart([frame])
        # Every one is refused with an error (invalid, or unknown peer); none crashes anything.
        errors = [codec.decode((await rogue.recv_multipart())[0]) for _ in range(4)]
        assert {e["k"] for e in errors} == {"error"}
        assert {e["code"] for e in errors} == {"malformed", "unknown_peer"}
        await rogue.send_multipart([b"x" * (MAX_FRAME_BYTES + 1)])  # refused by the socket (MAXMSGSIZE)
        assert orch.invalid_messages >= 4
        sub = Subscriber(orch.event_endpoint)
        assert len(await sub.events_of("a", 2)) >= 2
        assert await orch.command("a", "ping") == "pong"
        assert orch.node_status("a").incarnation == 1
        await rogue.aclose()
        ctx.term()
        await sub.aclose()


async def test_shutdown_stops_every_node_and_spare_cleanly(tmp_path):
    with trio.fail_after(TIMEOUT):
        orch = Orchestrator(fleet(tmp_path, node("a"), node("b", seed=2), spares=2))
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.RUNNING)
            await orch.wait_for("b", NodeState.RUNNING)
            await orch.wait_until(lambda: orch.spares_ready == 2)
            pids = [orch.node_status(n).pid for n in ("a", "b")]
            orch.shutdown()
        assert orch.clean_shutdown is True
        for name in ("a", "b"):
            assert orch.node_status(name).state is NodeState.STOPPED
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert not (orch.runtime_dir / "nodes.sock").exists()
        assert not (orch.runtime_dir / "lifelines").exists()  # as the docs say: only while it runs


async def test_a_child_that_cannot_be_started_fails_its_node_and_the_orchestrator_carries_on(tmp_path):
    with trio.fail_after(TIMEOUT):
        orch = Orchestrator(fleet(tmp_path, node("a"), spares=1, python="/nonexistent/python3"))
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.FAILED)
            status = orch.node_status("a")
            assert "could not start a child" in status.last_exit and "nonexistent" in status.last_exit
            assert orch.status()[0]["state"] == "failed"
            orch.shutdown()
        assert orch.clean_shutdown is False


async def test_a_cancelled_run_kills_its_children_and_cleans_up_for_the_next_one(tmp_path):
    config = fleet(tmp_path, node("a"))
    orch = Orchestrator(config)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await fleet_ready(orch, "a")
            pids = [orch.node_status("a").pid, *orch.spare_pids]
            nursery.cancel_scope.cancel()  # the host ends: no shutdown() first
        for pid in pids:  # killed and reaped, not left running until their parent timeout
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        for endpoint in (orch.node_endpoint, orch.event_endpoint):
            assert not os.path.exists(endpoint.removeprefix("ipc://"))
        again = Orchestrator(config)  # the same runtime dir is free for the next one
        async with trio.open_nursery() as nursery:
            await nursery.start(again.run)
            await again.wait_for("a", NodeState.RUNNING)
            again.shutdown()
