"""The fleet CLI end to end, in subprocesses: up --detach, status, restart, events, logs, down.

Every step is a real ``python -m orchestrator ...`` process talking to a real background
orchestrator over its control socket; waits are bounded by subprocess timeouts and by the
commands' own waits (``up --detach`` returns once every node runs, ``down`` once the
orchestrator has exited), never by sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.control import messages as m
from tests.test_orchestrator_process import alive, write_fleet

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["status", "start", "stop", "restart", "down", "events", "logs", "validate", "up"]


def orch(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _runtime_of(config: Path) -> Path:
    from orchestrator.fleet.loader import runtime_dir_of

    return runtime_dir_of(config)


@pytest.mark.slow
def test_detach_status_restart_events_logs_down(tmp_path):
    config, _runtime = write_fleet(tmp_path, nodes=2)
    runtime = _runtime_of(config)
    where = ["--runtime-dir", str(runtime)]
    up = orch("up", str(config), "--detach")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert "n0, n1" in up.stdout

        status = orch("status", "--json", "--config", str(config))
        assert status.returncode == 0, status.stderr
        rows = {r["node"]: r for r in json.loads(status.stdout)}
        assert set(rows) == {"n0", "n1"}
        for row in rows.values():
            assert set(row) == {
                "node", "state", "pid", "incarnation", "restarts", "uptime_s",
                "heartbeat_age_ms", "events", "events_per_s", "pnl", "last_exit",
            }  # fmt: skip
            assert row["state"] == "running" and row["incarnation"] == 1 and alive(row["pid"])
            # running: it has heartbeated (so its PnL is known) and its event rate is being counted
            assert isinstance(row["pnl"], float) and isinstance(row["events_per_s"], float)
        table = orch("status", *where)
        assert table.returncode == 0 and "NODE" in table.stdout and "running" in table.stdout
        assert "EV/S" in table.stdout and "PNL" in table.stdout

        restart = orch("restart", "n0", *where)
        assert restart.returncode == 0, restart.stderr
        assert "n0: running" in restart.stdout and "incarnation 2" in restart.stdout
        rows = {r["node"]: r for r in json.loads(orch("status", "--json", *where).stdout)}
        assert rows["n0"]["incarnation"] == 2 and rows["n0"]["state"] == "running"
        assert rows["n1"]["incarnation"] == 1

        unknown = orch("restart", "nope", *where)
        assert unknown.returncode == 2 and "unknown node 'nope'" in unknown.stderr

        events = orch("events", "--node", "n0", "--since", "1", "--json", *where)
        assert events.returncode == 0, events.stderr
        records = [json.loads(line) for line in events.stdout.splitlines()]
        seqs = [r["seq"] for r in records]
        assert seqs[0] == 1 and seqs == list(range(1, len(seqs) + 1)), "in order, no gap, no repeat"
        assert {r["node"] for r in records} == {"n0"}
        # the node's stop and its second run are both in the history: its sequence survived the restart
        states = [r["data"].get("state") for r in records if r["type"] == "NodeStateChanged"]
        assert states.count("RUNNING") == 2 and "STOPPED" in states

        logs = orch("logs", "n0", "--lines", "20", *where)
        assert logs.returncode == 0, logs.stderr
        assert "node 'n0' stopped" in logs.stdout  # the first incarnation's ending, in n0's own file
        assert (runtime / "logs" / "n0.log").is_file() and (runtime / "logs" / "n1.log").is_file()

        pid = json.loads(orch("status", "--json", *where).stdout)[0]["pid"]
        down = orch("down", *where)
        assert down.returncode == 0, down.stderr
        assert "exited" in down.stdout
        assert not alive(pid)
        assert not (runtime / "control.sock").exists()
        assert "stopped (clean)" in (runtime / "logs" / "orchestrator.log").read_text()
        after = orch("status", *where)
        assert after.returncode == 1 and "no orchestrator is running" in after.stderr
    finally:
        if (runtime / "control.sock").exists():
            orch("down", *where)
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_stopped_orchestrator_gets_a_clear_answer_from_the_cli_not_a_hang(tmp_path):
    import re
    import signal

    config, _runtime = write_fleet(tmp_path, nodes=1)
    runtime = _runtime_of(config)
    where = ["--runtime-dir", str(runtime)]
    up = orch("up", str(config), "--detach")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        pid = int(re.search(r"pid (\d+)", up.stdout).group(1))
        os.kill(pid, signal.SIGSTOP)
        try:
            stuck = orch("status", *where)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert stuck.returncode == 1 and "did not answer 'ping'" in stuck.stderr
        assert str(runtime / "logs" / "orchestrator.log") in stuck.stderr  # where to look, by name
        again = orch("status", *where)
        assert again.returncode == 0, again.stderr
    finally:
        if (runtime / "control.sock").exists():
            orch("down", *where)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["start", "n0"],
        ["stop", "n0"],
        ["restart", "n0"],
        ["down"],
        ["events"],
        ["events", "--follow", "--since", "1"],
        ["logs", "n0"],
        ["logs", "n0", "--follow"],
    ],
    ids=lambda a: " ".join(a),
)
def test_every_command_without_an_orchestrator_exits_1_quickly(tmp_path, args):
    runtime = Path("/tmp") / f"orch-none-{os.getpid()}-{tmp_path.name[-8:]}"
    runtime.mkdir(mode=0o700)
    started = time.monotonic()
    try:
        proc = orch(*args, "--runtime-dir", str(runtime), timeout=30)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 10
    assert "no orchestrator is running" in proc.stderr or "no log for node" in proc.stderr


def test_a_stale_control_socket_is_reported_as_such(tmp_path, capsys):
    runtime = Path("/tmp") / f"orch-stale-{os.getpid()}-{tmp_path.name[-8:]}"
    runtime.mkdir(mode=0o700)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(runtime / "control.sock"))  # bound, never listening, then closed: a dead one's file
    sock.close()
    started = time.monotonic()
    try:
        assert cli.main(["status", "--runtime-dir", str(runtime)]) == 1
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert time.monotonic() - started < 5
    assert "stale socket file" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    assert "example:" in capsys.readouterr().out


# -- the control protocol and the kept history (in-process units) --------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1", m.BAD_REQUEST),
        (m.encode({"v": 1, "op": "status"}), m.BAD_REQUEST),
        (m.encode({"v": 2, "op": "status", "args": {}}), m.VERSION),
        (m.encode({"v": 1, "op": "reboot", "args": {}}), m.BAD_REQUEST),
        (m.encode({"v": 1, "op": "restart", "args": {}}), m.BAD_REQUEST),
        (m.encode({"v": 1, "op": "restart", "args": {"node": 3}}), m.BAD_REQUEST),
        (m.encode({"v": 1, "op": "history", "args": {"since": -1}}), m.BAD_REQUEST),
        (m.encode({"v": 1, "op": "status", "args": {"extra": 1}}), m.BAD_REQUEST),
        (m.encode([1, 2]), m.BAD_REQUEST),
    ],
)
def test_invalid_control_requests_are_refused_with_a_code(frame, code):
    with pytest.raises(m.ControlProtocolError) as info:
        m.decode_request(frame)
    assert info.value.code == code


def test_node_log_names_stay_inside_the_log_dir_and_rotation_keeps_n_backups(tmp_path):
    from orchestrator.child.logfile import node_log_name, rotate

    assert node_log_name("ema-eurusd") == "ema-eurusd.log"
    assert "/" not in node_log_name("../../etc/passwd") and not node_log_name("..x").startswith(".")
    log = tmp_path / "n.log"
    for i in range(4):
        log.write_text(f"generation {i}\n")
        rotate(log, backups=2)
    assert not log.exists()
    assert (tmp_path / "n.log.1").read_text() == "generation 3\n"
    assert (tmp_path / "n.log.2").read_text() == "generation 2\n"
    assert not (tmp_path / "n.log.3").exists()


def test_up_on_a_corrupt_journal_exits_1_with_the_journal_s_own_advice(tmp_path):
    import os

    import msgpack

    from orchestrator.journal import Journal, journal_path

    runtime = Path("/tmp") / f"orch-cli-{os.getpid()}-corrupt"  # short: ipc path limit
    runtime.mkdir(mode=0o700)
    path = journal_path(runtime, "n1")
    path.parent.mkdir(mode=0o700)
    with Journal(path, fsync="never") as journal:
        for seq in range(1, 6):
            journal.append(seq, msgpack.packb({"seq": seq}))
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # inside the second record, with valid ones after it: corruption, not a torn tail
    path.write_bytes(bytes(data))
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        f'[orchestrator]\nruntime_dir = "{runtime}"\nstate_dir = "{runtime}"\n[[nodes]]\nid = "n1"\nconfig = "{ROOT}/configs/sandbox.toml"\n'
    )
    proc = orch("up", str(fleet), timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"journal {path} is corrupt" in proc.stderr and "truncate -s" in proc.stderr


def test_up_that_cannot_journal_exits_1_saying_why_and_what_to_do(tmp_path):
    """A journal write fails for real (the orchestrator's file-size limit lowered under it, so the
    kernel refuses the write with EFBIG, as a full disk would with ENOSPC): ``up`` exits 1 with the
    journal's message and what to do, and one line for the log it cannot write either: no traceback."""
    import resource

    runtime = Path("/tmp") / f"orch-cli-{os.getpid()}-nospace"  # short: ipc path limit
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        f'[orchestrator]\nruntime_dir = "{runtime}"\nstate_dir = "{runtime}"\n[[nodes]]\nid = "n1"\nconfig = "{ROOT}/configs/sandbox.toml"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "up", str(fleet)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:  # one line per state change (not a terminal)
            if line.startswith("n1: running"):
                break
        journal = runtime / "journal" / "n1.journal"
        own_log = runtime / "logs" / "orchestrator.log"
        # No file may grow: the journal's next append fails, and so does its own log's. Only this
        # process is limited: its children (the node, the zygote) were started without the limit.
        size = min(journal.stat().st_size, own_log.stat().st_size)
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (size, size))
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(runtime, ignore_errors=True)
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert f"journal {journal}: write failed" in err and "File too large" in err
    assert "Free space on that disk" in err and "resends, from its state store" in err
    assert err.count("cannot write its log") == 1
