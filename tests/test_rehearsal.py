"""A spare's rehearsal (orchestrator.child.rehearsal): it trades, recovers, cleans up, never raises."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile

import pytest

from orchestrator.child.rehearsal import DIR_PREFIX, rehearse


@pytest.fixture
def own_tempdir(tmp_path, monkeypatch):
    """The rehearsal's temporary files go under this test's own directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path
    gc.unfreeze()  # the rehearsal froze this test process's objects; give them back to the collector


@pytest.mark.trio
async def test_the_rehearsal_trades_and_recovers_then_leaves_no_file(own_tempdir):
    report = await rehearse(0.05)
    assert report.problem is None
    assert report.traded  # the first node filled an order, so the second restored a position
    assert report.seconds > 0
    assert list(own_tempdir.iterdir()) == []
    assert gc.get_freeze_count() > 0  # what the warm-up made is out of the collector's way


@pytest.mark.trio
async def test_a_failed_rehearsal_is_reported_not_raised(own_tempdir):
    missing = own_tempdir / "gone"
    tempfile.tempdir = str(missing)  # restored by monkeypatch
    report = await rehearse(0.05)
    assert report.problem is not None and "FileNotFoundError" in report.problem
    assert not report.traded
    assert not missing.exists()


@pytest.mark.trio
async def test_a_rehearsal_removes_what_a_killed_one_left_and_nothing_of_a_live_one(own_tempdir):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process
    orphan = own_tempdir / f"{DIR_PREFIX}{gone.pid}-x1"
    live = own_tempdir / f"{DIR_PREFIX}{os.getpid()}-x2"  # a rehearsal of a live process
    other = own_tempdir / "orch-rehearsal-notapid"
    for path in (orphan, live, other):
        path.mkdir()
        (path / "state.sqlite").write_bytes(b"x")
    report = await rehearse(0.05)
    assert report.problem is None
    assert sorted(own_tempdir.iterdir()) == sorted([live, other])
