"""Lifelines: a child's death seen as it begins, from real processes holding a real robust mutex."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio

from orchestrator.child.cli import parse_args
from orchestrator.child.log import ChildLog
from orchestrator.child.main import hold_lifeline
from orchestrator.process.exit_status import ExitStatus
from orchestrator.process.lifeline import (
    WATCH_POLL_S,
    Lifeline,
    LifelineEnd,
    dying_status,
    lifelines_supported,
)

pytestmark = pytest.mark.skipif(not lifelines_supported(), reason="no robust process-shared mutexes")

ROOT = Path(__file__).resolve().parent.parent
FUTEX_WAITERS = 0x8000_0000

HOLDER = """
import os, sys
from pathlib import Path
from orchestrator.process.lifeline import HeldLifeline
ballast = b"\\x01" * (int(sys.argv[2]) << 20)  # owned pages: a teardown that takes a while
held = HeldLifeline(Path(sys.argv[1]))
held.hold()
print("held", flush=True)
action = sys.stdin.readline().strip()
if action == "release":
    held.release()
    os._exit(0)
if action == "exit3":
    os._exit(3)  # an exit the child did not announce: no release
"""


def holder(path: Path, ballast_mb: int = 0) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(ballast_mb)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def tell(proc: subprocess.Popen, action: str) -> None:
    """What the holder does next (see HOLDER): ``release`` then exit, or ``exit3`` without it."""
    proc.stdin.write(action + "\n")
    proc.stdin.flush()


def test_a_killed_holder_is_seen_dying_before_its_exit_with_its_signal(tmp_path):
    lifeline = Lifeline.create(tmp_path / "a.lifeline")
    proc = holder(lifeline.path, ballast_mb=300)  # ~50 ms of teardown on the project's machine
    # The kill once the watch is parked on the mutex: the wake-up by the kernel is what is tested.
    killer = threading.Thread(target=_kill_once_parked, args=(lifeline.path, proc.pid))
    killer.start()
    try:
        assert lifeline.watch() is LifelineEnd.LOST
        # Not exited yet: the kernel is still tearing it down (WNOWAIT: it stays unreaped).
        assert os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        assert dying_status(proc.pid) == ExitStatus(-signal.SIGKILL)
    finally:
        killer.join()
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_an_unannounced_exit_is_a_lost_lifeline_with_its_exit_code(tmp_path):
    lifeline = Lifeline.create(tmp_path / "a.lifeline")
    proc = holder(lifeline.path)
    tell(proc, "exit3")
    assert lifeline.watch() is LifelineEnd.LOST
    assert dying_status(proc.pid) == ExitStatus(3)
    assert proc.wait() == 3


def test_a_released_lifeline_is_a_deliberate_exit(tmp_path):
    lifeline = Lifeline.create(tmp_path / "a.lifeline")
    proc = holder(lifeline.path)
    tell(proc, "release")
    assert lifeline.watch() is LifelineEnd.RELEASED
    assert proc.wait() == 0


def test_stop_ends_a_watch_on_a_live_holder_and_removes_the_file(tmp_path):
    lifeline = Lifeline.create(tmp_path / "a.lifeline")
    proc = holder(lifeline.path)
    try:
        ends = []
        watcher = threading.Thread(target=lambda: ends.append(lifeline.watch()))
        watcher.start()
        _wait_until_a_waiter_is_parked(lifeline.path)
        lifeline.stop()
        watcher.join(timeout=WATCH_POLL_S * 10)
        assert ends == [LifelineEnd.STOPPED]
        assert not lifeline.path.exists()
        assert proc.poll() is None  # the holder is not affected
    finally:
        proc.kill()
        proc.wait()


def _wait_until_a_waiter_is_parked(path: Path) -> None:
    """Until the mutex's futex word has its waiters bit (glibc sets it as a locker goes to sleep)."""
    deadline = time.monotonic() + 5
    while not int.from_bytes(path.read_bytes()[:4], "little") & FUTEX_WAITERS:
        assert time.monotonic() < deadline, "the watch never parked on the mutex"
        time.sleep(0.001)  # a condition in another process's view of a file: polled, bounded


def _kill_once_parked(path: Path, pid: int) -> None:
    _wait_until_a_waiter_is_parked(path)
    os.kill(pid, signal.SIGKILL)


def test_a_lifeline_left_behind_is_replaced_by_a_fresh_unlocked_one(tmp_path):
    path = tmp_path / "a.lifeline"
    first = Lifeline.create(path)
    proc = holder(first.path)
    proc.kill()
    proc.wait()  # it died holding the old one
    second = Lifeline.create(path)
    again = holder(second.path)  # locks at once: the mutex is new, not "owner died"
    tell(again, "release")
    assert second.watch() is LifelineEnd.RELEASED
    assert again.wait() == 0


def test_a_child_that_cannot_hold_its_lifeline_runs_on_without_it(tmp_path, capsys):
    options = parse_args(["--slot", "s1", "--endpoint", "ipc:///x", "--lifeline", str(tmp_path / "none")])
    assert hold_lifeline(options, ChildLog("s1")) is None
    assert "cannot hold the lifeline" in capsys.readouterr().err
    assert hold_lifeline(parse_args(["--slot", "s1", "--endpoint", "ipc:///x"]), ChildLog("s1")) is None


@pytest.mark.trio
async def test_a_watch_that_fails_is_reported_and_leaves_the_orchestrator_running(tmp_path, caplog):
    # Its file gone before the watch began (and not by stop()): the watch fails. The orchestrator
    # says so and goes on; that child's death is then seen from its exit, as without a lifeline.
    from orchestrator.fleet.orchestrator import Orchestrator
    from orchestrator.fleet.slots import Slot
    from tests.fleet_support import fleet, node

    orch = Orchestrator(fleet(tmp_path, node("a")))
    lifeline = Lifeline.create(tmp_path / "s9.lifeline")
    lifeline.path.unlink()
    slot = Slot("s9", b"s9", process=None, lifeline=lifeline)
    slot.ready.set()
    with caplog.at_level(logging.WARNING, logger="orchestrator"), trio.fail_after(5):
        await orch._watch_lifeline(slot)  # returns: no exception escapes to the orchestrator
    assert "lifeline lost from sight" in caplog.text and "is gone" in caplog.text
    assert not slot.handed_over


@pytest.mark.trio
async def test_a_child_that_cannot_be_started_leaves_no_lifeline_file(tmp_path):
    from orchestrator.fleet.slots import start_slot

    with pytest.raises(OSError):
        await start_slot(
            "s1",
            "ipc:///nowhere",
            tmp_path,
            python=str(tmp_path / "no-such-python"),
            heartbeat_s=0.05,
            parent_timeout_s=1.0,
            lifeline_dir=tmp_path,
        )
    assert not (tmp_path / "s1.lifeline").exists()
