"""The runtime dir removed under a running fleet is made again (real processes, real sockets)."""

from __future__ import annotations

import os
import shutil
import signal
import sys

import pytest
import trio

from orchestrator.control.client import ControlClient
from orchestrator.fleet.orchestrator import Orchestrator
from orchestrator.fleet.runtime_watch import RuntimeDirWatch
from orchestrator.fleet.state import NodeState
from tests.fleet_support import Subscriber, fleet, fleet_ready, node, start_with_control, wait_incarnation

TIMEOUT = 60  # bounds a broken test on a loaded 2-core machine; never a speed assertion


@pytest.mark.trio
async def test_a_fleet_whose_runtime_dir_is_removed_makes_it_again_and_restarts_nodes_warm(tmp_path):
    """As logind does at logout to $XDG_RUNTIME_DIR: the whole runtime dir goes while the fleet
    runs. It is made again with its sockets: the next spare connects, a node killed afterwards
    restarts on it, warm, twice; the node's log is written again; the CLI reaches the fleet.
    Before: every spare exited before its hello (no log file), the second kill left the node
    STARTING for good, and the CLI said no orchestrator was running."""
    orch = Orchestrator(fleet(tmp_path, node("a"), state_dir=tmp_path / "state"))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await start_with_control(nursery, orch)
            await fleet_ready(orch, "a")
            shutil.rmtree(orch.runtime_dir)
            await orch.wait_until(lambda: orch.runtime_watch.restored >= 1)
            assert oct(orch.runtime_dir.stat().st_mode & 0o777) == "0o700"
            for name in ("nodes.sock", "events.sock", "control.sock", "prepare.msgpack", "logs", "lifelines"):
                assert (orch.runtime_dir / name).exists(), name
            # The node's log was never in the lost dir: the restored link reaches it again.
            assert (orch.log_dir / "a.log").samefile(orch.state_dir / "logs" / "a.log")

            def status() -> list:
                with ControlClient(orch.runtime_dir) as client:
                    return client.call("status")

            assert [n["node"] for n in await trio.to_thread.run_sync(status)] == ["a"]

            sub = Subscriber(orch.event_endpoint)  # a subscriber connecting after the loss
            for incarnation in (2, 3):
                os.kill(orch.node_status("a").pid, signal.SIGKILL)
                await wait_incarnation(orch, "a", incarnation, NodeState.RUNNING)
                assert not orch.node_status("a").cold_start, "restarted on a spare started after the loss"
                await fleet_ready(orch, "a")
            await sub.events_of("a", 3)
            await sub.aclose()
            orch.shutdown()
    assert orch.clean_shutdown


def test_a_restore_that_fails_is_logged_once_and_tried_again(tmp_path, caplog):
    watch = RuntimeDirWatch(tmp_path / "run")
    made = []

    def flaky() -> None:
        if not made:
            made.append("failed")
            raise OSError("taken")
        (tmp_path / "run" / "thing").touch()

    watch.keep(tmp_path / "run" / "thing", "the thing", flaky)
    assert not watch.check()  # the dir is made; the thing is not, this time
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o700
    assert watch.check()  # tried again: made now
    assert (tmp_path / "run" / "thing").exists()
    assert watch.check() and watch.restored == 2  # nothing missing: nothing done
    errors = [r for r in caplog.records if "cannot restore the thing" in r.getMessage()]
    assert len(errors) == 1


def test_a_runtime_dir_made_again_by_someone_else_not_private_is_refused_not_fatal(tmp_path, caplog):
    """Someone made the dir again before us, open to others: it is not used (a socket planted in
    it could be taken for ours), the error is logged once, and the watch goes on."""
    run = tmp_path / "run"
    watch = RuntimeDirWatch(run)
    watch.keep(run / "thing", "the thing", (run / "thing").touch)
    run.mkdir(mode=0o755)
    run.chmod(0o755)
    assert not watch.check() and not watch.check()
    assert not (run / "thing").exists()
    errors = [r for r in caplog.records if "cannot make the runtime dir" in r.getMessage()]
    assert len(errors) == 1 and "0755" in errors[0].getMessage()
    run.chmod(0o700)  # fixed by its owner: the watch takes it from there
    assert watch.check() and (run / "thing").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="st_nlink of a removed file: Linux")
def test_a_node_log_removed_under_the_child_is_opened_again(tmp_path):
    import subprocess

    code = (
        "import os, sys, time\n"
        "from orchestrator.child.logfile import NodeLogFile\n"
        f"f = NodeLogFile({str(tmp_path / 'logs')!r}, 'n', 1 << 20, 2)\n"
        "f.open(); print('before', flush=True)\n"
        "os.unlink(f.path)\n"
        "assert f.reopen_if_removed() and not f.reopen_if_removed()\n"
        "print('after', flush=True)\n"
    )
    (tmp_path / "logs").mkdir()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "logs" / "n.log").read_text() == "after\n"


def test_a_detached_fleet_survives_its_runtime_dir_being_removed(tmp_path):
    """The user's case: `up --detach` over ssh, then a logout empties $XDG_RUNTIME_DIR. The CLI
    reaches the fleet again, and the orchestrator's output goes to its log made again."""
    import subprocess
    import time

    from tests.test_orchestrator_process import write_fleet

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, timeout=90
        )

    config, runtime = write_fleet(tmp_path, nodes=1)
    where = ["--runtime-dir", str(runtime)]
    up = cli("up", str(config), "--detach")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        shutil.rmtree(runtime)
        log = runtime / "logs" / "orchestrator.log"
        deadline = time.monotonic() + TIMEOUT
        while not (log.exists() and "was removed while the orchestrator ran" in log.read_text()):
            assert time.monotonic() < deadline, (
                "the runtime dir and the orchestrator's log were not made again"
            )
            time.sleep(0.05)  # another process writes it: nothing to wait on but the file
        status = cli("status", *where)
        assert status.returncode == 0 and "running" in status.stdout, status.stderr
        down = cli("down", *where)
        assert down.returncode == 0, down.stderr
        assert "stopped (clean)" in log.read_text()
    finally:
        if (runtime / "control.sock").exists():
            cli("down", *where)
        shutil.rmtree(runtime, ignore_errors=True)
