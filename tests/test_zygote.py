"""Children forked by the zygote: adopted by the orchestrator, replaced when it dies (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
import trio
import zmq

from orchestrator.fleet.orchestrator import Orchestrator
from orchestrator.fleet.prepare_file import PREPARE_FILE
from orchestrator.fleet.slots import child_argv
from orchestrator.fleet.state import NodeState
from orchestrator.fleet.zygote import Zygote
from orchestrator.process.pdeathsig import PARENT_PID_ENV, become_child_subreaper
from orchestrator.process.spawn import ChildProcess, _Adopted
from orchestrator.protocol import codec, messages
from tests.fleet_support import fleet, fleet_ready, node, wait_incarnation

pytestmark = pytest.mark.trio

TIMEOUT = 60  # bounds a broken test on a loaded 2-core machine; never a speed assertion


def children_of_this_thread() -> set[int]:
    """Pids whose parent is the calling thread (the kernel's per-thread list; see test_process_control)."""
    path = f"/proc/self/task/{threading.get_native_id()}/children"
    if not os.path.exists(path):
        pytest.skip("kernel without /proc/<pid>/task/<tid>/children")
    with open(path) as f:
        return {int(p) for p in f.read().split()}


async def test_a_child_needed_at_once_is_forked_by_the_zygote_and_adopted_by_the_trio_thread(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a"), spares=0))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.RUNNING)
            status = orch.node_status("a")
            assert status.cold_start and orch._children._zygote.forks == 1
            # Adopted by the thread that runs trio: the parent-death signal of the child is bound
            # to it, and the orchestrator reaps the child and reads its exit status.
            assert status.pid in children_of_this_thread()
            os.kill(status.pid, signal.SIGKILL)
            await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
            assert "SIGKILL" in status.last_exit
            assert status.cold_start and orch._children._zygote.forks == 2
            assert status.pid in children_of_this_thread()
            orch.shutdown()
    assert orch.clean_shutdown


async def test_spares_are_forked_by_the_zygote_rehearse_prepare_and_restarts_take_them(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a"), node("b", seed=2)))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await fleet_ready(orch, "a")
            spare = orch._children.spares[0]
            # A fork of the zygote (its command line is the zygote's), not a program of its own.
            assert "orchestrator.child.zygote" in open(f"/proc/{spare.pid}/cmdline").read()
            assert spare.pid in children_of_this_thread()
            os.kill(orch.node_status("a").pid, signal.SIGKILL)
            await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
            status = orch.node_status("a")
            assert status.pid == spare.pid and not status.cold_start
            child = (await orch.command("a", "status"))["child"]
            assert child["rehearsal_ms"] > 0 and child["late_imports"] == []
            # Built ahead from the fleet's prepare file (orchestrator.child.prepared) and taken
            # by the assign, whose config is the very one the spare prepared it from.
            assert child["prepared"] is True
            prepare_file = orch.runtime_dir / PREPARE_FILE
            assert prepare_file.stat().st_mode & 0o777 == 0o600
            orch.shutdown()
    assert orch.clean_shutdown
    assert not prepare_file.exists()


async def test_a_killed_zygote_is_replaced_and_the_nodes_are_unaffected(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a"), node("b", seed=2), spares=0))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.RUNNING)
            await orch.wait_for("b", NodeState.RUNNING)
            first = orch._children._zygote
            b_pid = orch.node_status("b").pid
            os.kill(first.process.pid, signal.SIGKILL)
            await orch.wait_until(
                lambda: orch._children._zygote is not None and orch._children._zygote is not first
            )
            second = orch._children._zygote
            assert second.process.pid != first.process.pid
            # Children of the dead zygote were never its children: they run on, untouched.
            assert orch.node_status("b").pid == b_pid and orch.node_status("b").incarnation == 1
            os.kill(orch.node_status("a").pid, signal.SIGKILL)
            await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
            assert second.forks == 1, "restarted by the new zygote"
            orch.shutdown()
    assert orch.clean_shutdown


async def test_a_stopped_zygote_does_not_hold_up_restarts(tmp_path):
    """A zygote that cannot answer (SIGSTOPped here) is killed after FORK_REPLY_TIMEOUT_S; the
    node needing a child gets one by fork+exec meanwhile, and a new zygote takes over. Before
    that bound, the node stayed STARTING for as long as the zygote was stopped."""
    orch = Orchestrator(fleet(tmp_path, node("a"), spares=0))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.RUNNING)
            stopped = orch._children._zygote
            os.kill(stopped.process.pid, signal.SIGSTOP)
            os.kill(orch.node_status("a").pid, signal.SIGKILL)
            await wait_incarnation(orch, "a", 2, NodeState.RUNNING)
            status = orch.node_status("a")
            assert status.cold_start
            # The id of the fork given up is remembered, and the replacement has an id of its own:
            # a child the zygote forked all the same must not take the replacement's place.
            (given_up,) = orch._children.abandoned
            assert orch._node_slot["a"].identity != given_up
            cmdline = open(f"/proc/{status.pid}/cmdline").read()
            assert "orchestrator.child" in cmdline and "zygote" not in cmdline, "started by fork+exec"
            assert (await stopped.process.wait()).signal == signal.SIGKILL
            await orch.wait_until(
                lambda: orch._children._zygote is not None and orch._children._zygote is not stopped
            )
            os.kill(status.pid, signal.SIGKILL)  # the next cold start is the new zygote's
            await wait_incarnation(orch, "a", 3, NodeState.RUNNING)
            assert orch._children._zygote.forks == 1
            orch.shutdown()
    assert orch.clean_shutdown


async def test_a_child_forked_for_a_fork_given_up_is_killed_and_reaped(tmp_path):
    """A zygote killed for answering a fork too late may have forked all the same: that child says
    hello under the id of the fork given up (remembered by the pool, as the test above checks).
    Here a real child program says hello under such an id: the orchestrator kills it and reaps it
    (no zombie), and the fleet goes on. Before, it was refused and left to stop itself after
    parent_timeout, then stayed a zombie for as long as the orchestrator ran."""
    orch = Orchestrator(fleet(tmp_path, node("a"), spares=0))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.RUNNING)
            running = orch.node_status("a").pid
            orch._children.abandoned.add(b"s900")  # what ChildPool records for an unanswered fork
            argv = child_argv(sys.executable, "s900", orch.node_endpoint, 0.05, 30.0)
            stray = subprocess.Popen(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
            )
            # It is our child: the orchestrator (this process) kills it and reaps it; the
            # parent_timeout of 30 s rules out its own exit for lack of heartbeats.
            while os.path.exists(f"/proc/{stray.pid}"):
                await trio.sleep(0.01)
            assert b"s900" not in orch._children.abandoned
            assert orch.node_status("a").state is NodeState.RUNNING
            assert orch.node_status("a").pid == running
            orch.shutdown()
    assert orch.clean_shutdown


async def test_a_hello_under_a_given_up_id_naming_a_process_not_ours_is_refused_and_harms_nothing(
    tmp_path,
):
    """The pid a hello names is only signalled if it is this process's child: a rogue peer naming
    another process (here, this test's parent) gets the unknown-peer error and nothing else."""
    orch = Orchestrator(fleet(tmp_path, node("a"), spares=0))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.RUNNING)
            orch._children.abandoned.add(b"s901")
            ctx = zmq.Context()
            rogue = ctx.socket(zmq.DEALER)
            rogue.setsockopt(zmq.IDENTITY, b"s901")
            rogue.setsockopt(zmq.LINGER, 0)
            try:
                rogue.connect(orch.node_endpoint)
                rogue.send(codec.encode(messages.hello("s901", os.getppid(), True)))
                reply = await trio.to_thread.run_sync(rogue.recv)
            finally:
                rogue.close()
                ctx.term()
            assert codec.decode(reply)["code"] == "unknown_peer"
            assert os.path.exists(f"/proc/{os.getppid()}")
            assert b"s901" in orch._children.abandoned, "still waiting for the real stray"
            assert orch.node_status("a").state is NodeState.RUNNING
            orch.shutdown()
    assert orch.clean_shutdown


async def test_with_zygote_false_children_are_started_by_fork_exec(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a"), zygote=False))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            await orch.wait_for("a", NodeState.RUNNING)
            assert orch._children._zygote is None
            assert "orchestrator.child" in open(f"/proc/{orch.node_status('a').pid}/cmdline").read()
            orch.shutdown()
    assert orch.clean_shutdown


async def test_the_zygote_answers_a_bad_request_with_an_error_and_keeps_serving(tmp_path):
    become_child_subreaper()  # as the orchestrator does: the zygote's children become ours
    with trio.fail_after(TIMEOUT):
        zygote = await Zygote.start(sys.executable, tmp_path / "zygote.log", TIMEOUT)
        try:
            for bad in (b"not json\n", b'{"args": "no list", "log": "x"}\n', b'{"args": []}\n'):
                await zygote._in.send_all(bad)
                reply = await zygote._reply()
                assert set(reply) == {"error"}, reply
            # Still serving: a real child, whose bad command line it reports in its own log.
            child = await zygote.fork(["--no-such-option"], tmp_path / "child.log")
            status = await child.wait()
            assert (
                status.exit_code == 2
                and "usage: python -m orchestrator.child" in (tmp_path / "child.log").read_text()
            )
        finally:
            await zygote.aclose()
        assert zygote.process.poll() is not None, "end of its stdin ends the zygote"


async def test_an_adopted_child_reaped_elsewhere_is_reported_ended_with_its_status_lost():
    # Not our child at all (waitpid: ECHILD): the supervisor must still learn that it ended.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped here, as a foreign reaper in the same process would
    handle = ChildProcess.adopt(proc.pid, ["orchestrator.child"])
    status = handle.poll()
    assert status is not None and status.exit_code == _Adopted.STATUS_LOST
