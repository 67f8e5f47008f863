"""The state dir: journals and state stores apart from the volatile runtime dir (real processes)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
import trio

from orchestrator.fleet.loader import fleet_from_dict
from orchestrator.fleet.orchestrator import Orchestrator
from orchestrator.fleet.state import NodeState
from orchestrator.fleet.state_dir import (
    StateDirError,
    default_state_dir,
    file_system_type,
    state_path,
)
from orchestrator.journal import Journal, JournalLockedError, journal_path
from tests.fleet_support import Subscriber, assert_complete, fleet, journaled, node

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # bounds a broken test on a loaded 2-core machine; never a speed assertion


def test_the_default_state_dir_follows_the_xdg_spec(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    assert default_state_dir() == tmp_path / "state-home" / "orchestrator"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the spec: a relative path is invalid
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "orchestrator"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "orchestrator"


def test_the_fleet_file_s_state_dir_is_relative_to_it_and_defaults_to_the_xdg_one(tmp_path):
    config = fleet_from_dict({"orchestrator": {"state_dir": "data/fleet"}}, tmp_path)
    assert config.state_dir == (tmp_path / "data" / "fleet").resolve()
    home = fleet_from_dict({"orchestrator": {"state_dir": "~/trading/fleet"}}, tmp_path)
    assert home.state_dir == Path.home() / "trading" / "fleet"
    assert fleet_from_dict({}, tmp_path).state_dir == default_state_dir()
    # A node's store goes where the state dir says, not under the runtime dir.
    config = fleet_from_dict(
        {
            "orchestrator": {"state_dir": "data"},
            "nodes": [{"id": "n1", "config": str(ROOT / "configs/sandbox.toml")}],
        },
        tmp_path,
    )
    doc = config.assign_config(config.nodes[0])["doc"]
    assert doc["state"]["path"] == str((tmp_path / "data").resolve() / "state" / "n1.sqlite")


@pytest.mark.trio
async def test_journals_and_stores_outlive_the_runtime_dir(tmp_path):
    """The runtime dir is lost (a logout empties $XDG_RUNTIME_DIR, a reboot a tmpfs): a fleet
    started again on a new one resumes every node from the state dir, its sequence continued."""
    state = tmp_path / "state"
    config = fleet(tmp_path, node("a"), state_dir=state, spares=0)
    orch = await _run_until_events(config, "a", 20)
    first_run = journaled(orch, "a")
    assert len(first_run) >= 20 and state_path(state, "a").is_file()
    assert journal_path(state, "a").is_file()
    assert not (config.runtime_dir / "journal").exists() and not (config.runtime_dir / "state").exists()
    # The logs too live in the state dir; the runtime dir only links to them.
    assert (config.runtime_dir / "logs").resolve() == state / "logs"
    assert (state / "logs" / "a.log").is_file()

    shutil.rmtree(config.runtime_dir)
    assert (state / "logs" / "a.log").is_file(), "what the node wrote outlives the runtime dir"
    again = await _run_until_events(config, "a", 5)
    events = journaled(again, "a")
    assert events[: len(first_run)] == first_run and len(events) > len(first_run)
    assert_complete(events)  # one sequence across both runs: no restart from 1, no gap


async def _run_until_events(config, node_id: str, count: int) -> Orchestrator:
    """Run a fleet until ``count`` events of ``node_id`` were relayed, then stop it cleanly."""
    orch = Orchestrator(config)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(orch.run)
            sub = Subscriber(orch.event_endpoint)
            await sub.events_of(node_id, count)
            await sub.aclose()
            orch.shutdown()
    assert orch.clean_shutdown
    return orch


def test_a_logs_dir_left_in_the_runtime_dir_joins_the_state_dir_s(tmp_path):
    config = fleet(tmp_path, node("a"), state_dir=tmp_path / "state")
    config.runtime_dir.mkdir(mode=0o700)
    old = config.runtime_dir / "logs"
    old.mkdir()
    (old / "a.log").write_text("from before\n")
    (tmp_path / "state" / "logs").mkdir(parents=True)
    (tmp_path / "state" / "logs" / "zygote.log").write_text("already here\n")
    (old / "zygote.log").write_text("also from before\n")
    Orchestrator(config)
    assert old.is_symlink() and old.resolve() == tmp_path / "state" / "logs"
    assert (old / "a.log").read_text() == "from before\n"
    assert (old / "zygote.log").read_text() == "already here\n"
    assert (old / "zygote.log.from-runtime-dir").read_text() == "also from before\n"


def test_logs_cli_finds_a_node_s_log_in_the_state_dir_once_the_runtime_dir_is_gone(tmp_path):
    """After a reboot the runtime dir is gone, the logs are not: `logs` reads them from the
    fleet file's state dir, or from the default one."""
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text('[orchestrator]\nruntime_dir = "gone"\nstate_dir = "state"\n')
    (tmp_path / "state" / "logs").mkdir(parents=True)
    (tmp_path / "state" / "logs" / "n1.log").write_text("line 1\nline 2\n")
    default_logs = default_state_dir() / "logs"  # this test's own $XDG_STATE_HOME (conftest)
    default_logs.mkdir(parents=True)
    (default_logs / "n2.log").write_text("from the default state dir\n")

    def logs(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", "logs", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    by_config = logs("n1", "--lines", "1", "--config", str(fleet_file))
    assert by_config.returncode == 0 and by_config.stdout == "line 2\n", by_config.stderr
    by_default = logs("n2", "--runtime-dir", str(tmp_path / "gone"))
    assert by_default.returncode == 0 and by_default.stdout == "from the default state dir\n"
    missing = logs("n3", "--config", str(fleet_file))
    assert (
        missing.returncode == 1
        and "n1" in missing.stderr
        and str(tmp_path / "state" / "logs") in missing.stderr
    )


def _journal_with_one_event(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True)
    with Journal(path, fsync="never") as journal:
        journal.append(1, msgpack.packb({"seq": 1}))


def test_a_node_s_files_left_in_the_runtime_dir_refuse_the_start_saying_what_to_move(tmp_path):
    config = fleet(tmp_path, node("a"), node("b", seed=2), state_dir=tmp_path / "state")
    config.runtime_dir.mkdir(mode=0o700)
    _journal_with_one_event(journal_path(config.runtime_dir, "a"))
    with pytest.raises(StateDirError) as info:
        Orchestrator(config)
    message = str(info.value)
    assert "'a'" in message and "'b'" not in message
    assert str(config.runtime_dir) in message and str(tmp_path / "state") in message
    assert "mv " in message and "state_dir" in message
    assert not (tmp_path / "state").exists(), "nothing started, nothing created"

    # Once the node's files are in the state dir (moved as the message says), it starts.
    (tmp_path / "state").mkdir()
    shutil.move(config.runtime_dir / "journal", tmp_path / "state" / "journal")
    Orchestrator(config)
    # And a state dir that is the runtime dir (the old layout, chosen on purpose) is never refused.
    _journal_with_one_event(journal_path(config.runtime_dir, "b"))
    Orchestrator(fleet(tmp_path, node("b"), state_dir=config.runtime_dir))


def test_up_with_a_node_s_files_left_in_the_runtime_dir_exits_1_with_the_advice(tmp_path):
    runtime = Path("/tmp") / f"orch-sd-{os.getpid()}-{tmp_path.name[-8:]}"  # short: ipc path limit
    runtime.mkdir(mode=0o700)
    try:
        _journal_with_one_event(journal_path(runtime, "n1"))
        path = tmp_path / "fleet.toml"
        path.write_text(
            f'[orchestrator]\nruntime_dir = "{runtime}"\nstate_dir = "state"\n'
            f'[[nodes]]\nid = "n1"\nconfig = "{ROOT}/configs/sandbox.toml"\n'
        )
        for detach in ([], ["--detach"]):  # detached: the launcher repeats the refusal it logged
            proc = subprocess.run(
                [sys.executable, "-m", "orchestrator", "up", str(path), *detach],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert proc.returncode == 1, proc.stderr
            assert "Traceback" not in proc.stderr
            assert "'n1'" in proc.stderr and str(tmp_path / "state") in proc.stderr
            assert f"mv {runtime / 'journal'} " in proc.stderr, "only what is there to move"
            assert not (runtime / "nodes.sock").exists(), "refused before anything started"
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.trio
async def test_two_fleets_cannot_share_a_state_dir(tmp_path):
    """Their fleet-wide logs are named alike (and a fleet removes its children's logs): the second
    orchestrator is refused, naming the first, even with other node ids; the first runs on."""
    state = tmp_path / "state"
    first = Orchestrator(fleet(tmp_path / "one", node("a"), state_dir=state, spares=0))
    second = Orchestrator(fleet(tmp_path / "two", node("b"), state_dir=state, spares=0))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run)
            with pytest.raises(
                StateDirError,
                match=f"in use by another orchestrator \\(pid {os.getpid()}, runtime dir {first.runtime_dir}\\)",
            ):
                await second.run()
            # A node's journal keeps its own lock besides: one owner whatever the state dirs say.
            with pytest.raises(JournalLockedError, match="already open"):
                Journal(journal_path(state, "a"), fsync="never")
            await first.wait_for("a", NodeState.RUNNING)  # the first fleet runs on, unharmed
            first.shutdown()


def test_a_state_dir_on_a_memory_file_system_is_warned_about(tmp_path, caplog):
    if file_system_type("/dev/shm") != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm on this machine")
    shm = Path("/dev/shm") / f"orch-sd-{os.getpid()}"
    try:
        with caplog.at_level(logging.WARNING, logger="orchestrator"):
            Orchestrator(fleet(tmp_path, node("a"), state_dir=shm / "state"))
        assert any("is on a tmpfs" in r.getMessage() and str(shm) in r.getMessage() for r in caplog.records)
        caplog.clear()
        if file_system_type(tmp_path) in ("tmpfs", "ramfs"):
            return  # this machine's temp dir is in memory: nothing quiet to compare with
        with caplog.at_level(logging.WARNING, logger="orchestrator"):
            Orchestrator(fleet(tmp_path, node("a"), state_dir=tmp_path / "disk"))
        assert not any("tmpfs" in r.getMessage() for r in caplog.records)
    finally:
        shutil.rmtree(shm, ignore_errors=True)


def test_a_relative_state_dir_in_the_python_api_is_made_absolute(tmp_path, monkeypatch):
    """Children get paths in it and the runtime dir's logs link points into it: a path relative
    to this process's cwd would mean something else to a link, or to a process elsewhere."""
    monkeypatch.chdir(tmp_path)
    config = fleet(tmp_path, node("a"), state_dir=Path("rel/state"))
    assert config.state_dir == tmp_path / "rel" / "state"
    orch = Orchestrator(config)
    assert os.readlink(orch.log_dir) == str(tmp_path / "rel" / "state" / "logs")
    assert config.assign_config(config.nodes[0])["doc"]["state"]["path"].startswith(str(tmp_path))


@pytest.mark.trio
async def test_events_are_read_from_the_journals_when_no_orchestrator_runs(tmp_path):
    """A fleet that is down (or a machine rebooted): `events` reads its journals from the state
    dir, the same records in the same order as a running orchestrator would give."""
    config = fleet(tmp_path, node("a"), state_dir=default_state_dir(), spares=0)  # this test's own
    orch = await _run_until_events(config, "a", 10)
    journal = [e[0] for e in journaled(orch, "a")]

    async def events(*args: str):
        return await trio.run_process(
            [sys.executable, "-m", "orchestrator", "events", *args, "--runtime-dir", str(config.runtime_dir)],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )

    read = await events("--since", "1", "--json")
    assert read.returncode == 0, read.stderr
    assert [json.loads(line)["seq"] for line in read.stdout.decode().splitlines()] == journal
    assert f"reading the journals in {default_state_dir() / 'journal'}" in read.stderr.decode()
    unknown = await events("--node", "nope")
    assert unknown.returncode == 2 and "journals there: a" in unknown.stderr.decode()


@pytest.mark.trio
async def test_a_second_fleet_on_a_runtime_dir_in_use_changes_nothing_of_the_first(tmp_path):
    """Another state dir, the same runtime dir: refused before it touches anything there. Before,
    it re-pointed the running fleet's `logs` link at its own state dir (the first fleet's `logs
    NODE` then found nothing), and only then met the sockets in use."""
    first = Orchestrator(fleet(tmp_path, node("a"), state_dir=tmp_path / "one", spares=0))
    link = first.runtime_dir / "logs"
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run)
            with pytest.raises(
                StateDirError, match=f"runtime dir {first.runtime_dir} is in use by a running"
            ):
                Orchestrator(fleet(tmp_path, node("b"), state_dir=tmp_path / "two", spares=0))
            assert os.readlink(link) == str(tmp_path / "one" / "logs")
            await first.wait_for("a", NodeState.RUNNING)
            first.shutdown()
    # Once the first is down, the runtime dir is free for a fleet with another state dir.
    Orchestrator(fleet(tmp_path, node("b"), state_dir=tmp_path / "two", spares=0))
    assert os.readlink(link) == str(tmp_path / "two" / "logs")
