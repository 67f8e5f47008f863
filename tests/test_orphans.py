"""Orphans adopted by a child subreaper: reaped unless someone here watches them (real processes)."""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys

import pytest
import trio

from orchestrator.process.orphans import OrphanReaper, own_children
from orchestrator.process.pdeathsig import become_child_subreaper
from orchestrator.process.spawn import spawn

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="child subreapers and /proc: Linux")


def orphan(seconds: float) -> int:
    """A process left behind by its parent and adopted by this one (a subreaper): its pid."""
    shell = subprocess.run(
        ["sh", "-c", f"sleep {seconds} </dev/null >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid = int(shell.stdout)
    assert pid in own_children(), "adopted by this process"
    return pid


def state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[0].decode()


def exited(pid: int) -> None:
    """Until process ``pid`` has exited (a zombie, not reaped): its pidfd becomes readable."""
    fd = os.pidfd_open(pid)
    try:
        assert select.select([fd], [], [], 30)[0], f"process {pid} did not exit"
    finally:
        os.close(fd)


def test_an_adopted_orphan_is_reaped_once_it_exits_and_told_while_it_runs(caplog):
    assert become_child_subreaper()
    reaper = OrphanReaper(grace_s=0)
    gone, lingering = orphan(0), orphan(30)
    try:
        exited(gone)
        with caplog.at_level(logging.INFO, logger="orchestrator"):
            reaper.scan(0.0)
            reaper.scan(1.0)  # told once, not at every scan
        assert state(gone) is None and reaper.reaped >= 1, "the zombie is reaped"
        told = [r.getMessage() for r in caplog.records if f"process {lingering} " in r.getMessage()]
        assert len(told) == 1 and f"process {lingering} (sleep 30) was left behind" in told[0]
    finally:
        os.kill(lingering, 9)
    exited(lingering)
    reaped = reaper.reaped
    reaper.scan(2.0)
    assert state(lingering) is None and reaper.reaped == reaped + 1


def test_a_watched_child_and_a_new_orphan_are_left_to_their_watchers():
    """A child with a handle here keeps its exit status for its handle; an unknown zombie first
    seen less than the grace ago is left for now (a fork's answer may be on its way)."""
    assert become_child_subreaper()

    async def main() -> None:
        child = await spawn([sys.executable, "-c", "raise SystemExit(7)"])
        exited(child.pid)
        reaper = OrphanReaper(grace_s=5.0)
        fresh = orphan(0)
        exited(fresh)
        reaper.scan(100.0)  # both first seen: within the grace
        assert state(child.pid) == "Z" and state(fresh) == "Z", "nothing reaped yet"
        reaper.scan(106.0)  # past it: the orphan goes, the watched child stays for its watcher
        assert state(fresh) is None and state(child.pid) == "Z"
        assert (await child.wait()).exit_code == 7, "its own watcher got its status"

    trio.run(main)
