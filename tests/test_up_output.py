"""A foreground `up` whose terminal closes or whose output pipe breaks (real pty, pipes, signals)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_orchestrator_process import write_fleet

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # bounds a broken test on a loaded 2-core machine; never a speed assertion


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], cwd=ROOT, capture_output=True, text=True, timeout=90
    )


def wait_running(runtime: Path, nodes: int) -> list[dict]:
    """Until the fleet on ``runtime`` answers ``status`` with every node running (its rows)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        status = cli("status", "--json", "--runtime-dir", str(runtime))
        if status.returncode == 0:
            rows = json.loads(status.stdout)
            if len(rows) == nodes and all(r["state"] == "running" for r in rows):
                return rows
        assert time.monotonic() < deadline, status.stderr
        time.sleep(0.1)  # another process's state: asked again until it says so


def test_a_closed_terminal_stops_the_fleet_gracefully(tmp_path):
    """An ssh connection drops under a foreground `up`: the kernel sends SIGHUP. Before, that
    ended the orchestrator at once and PR_SET_PDEATHSIG killed every node; now every node is
    stopped as on Ctrl-C, the sockets are removed, and the exit status says it was clean."""
    config, runtime = write_fleet(tmp_path, nodes=1)
    pid, master = pty.fork()
    if pid == 0:  # the child: `up` on a terminal of its own, the live view
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "orchestrator", "up", str(config)])
    try:
        (row,) = wait_running(runtime, 1)
        while select.select([master], [], [], 0)[0]:  # what the live view drew so far
            os.read(master, 65536)
        os.close(master)  # hang up
        master = -1
        pidfd = os.pidfd_open(pid)  # readable once it has exited
        try:
            assert select.select([pidfd], [], [], TIMEOUT)[0], "up did not end after its terminal closed"
        finally:
            os.close(pidfd)
        ended = os.waitpid(pid, 0)
        assert os.WIFEXITED(ended[1]) and os.WEXITSTATUS(ended[1]) == 0, ended[1]
        assert "stopped: stop command" in (runtime / "logs" / "n0.log").read_text()
        assert not (runtime / "control.sock").exists() and not (runtime / "nodes.sock").exists()
        assert not os.path.exists(f"/proc/{row['pid']}")
    finally:
        if master >= 0:
            os.close(master)
        if (runtime / "control.sock").exists():
            cli("down", "--runtime-dir", str(runtime))
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.slow
def test_an_output_pipe_whose_reader_exits_does_not_stop_the_fleet(tmp_path):
    """`up | grep ...` and the grep is stopped: writes fail with EPIPE. The fleet runs on (a
    restart goes through, the CLI reaches it), says so in its own log, and stops cleanly later."""
    config, runtime = write_fleet(tmp_path, nodes=1)
    up = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "up", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_running(runtime, 1)
        up.stdout.close()  # the reader goes
        restart = cli("restart", "n0", "--runtime-dir", str(runtime))  # state lines to write
        assert restart.returncode == 0, restart.stderr
        (row,) = wait_running(runtime, 1)
        assert row["incarnation"] == 2 and up.poll() is None
        own_log = runtime / "logs" / "orchestrator.log"
        assert "the orchestrator's output is gone (BrokenPipeError" in own_log.read_text()
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=TIMEOUT) == 0
        assert "n0: stopped" in own_log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.slow
def test_a_detached_orchestrator_s_log_is_timestamped_and_rotated_with_its_output(tmp_path):
    """Detached, the orchestrator's log is its only record: each line has its time, and it is
    rotated like the nodes' logs (before, it grew for ever through stdout and stderr, with no
    time on its lines). Its stdout and stderr follow the log to the new file at each rotation."""
    config, runtime = write_fleet(tmp_path, nodes=1)
    config.write_text(
        config.read_text().replace(
            "[orchestrator]\n", "[orchestrator]\nlog_max_bytes = 700\nlog_backups = 2\n"
        )
    )
    where = ["--runtime-dir", str(runtime)]
    log = runtime / "logs" / "orchestrator.log"
    up = cli("up", str(config), "--detach")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        pid = json.loads(cli("status", "--json", *where).stdout)[0]["pid"]
        orchestrator_pid = int(up.stdout.split("(pid ")[1].split(")")[0])
        for _ in range(12):  # each restart logs its state changes
            if (runtime / "logs" / "orchestrator.log.1").exists():
                break
            assert cli("restart", "n0", *where).returncode == 0
        assert (runtime / "logs" / "orchestrator.log.1").exists(), "rotated"
        assert not (runtime / "logs" / "orchestrator.log.3").exists(), "log_backups = 2"
        assert os.readlink(f"/proc/{orchestrator_pid}/fd/2") == os.readlink(f"/proc/{orchestrator_pid}/fd/1")
        assert os.path.samefile(f"/proc/{orchestrator_pid}/fd/1", log), "stdout and stderr followed it"
        for name in ("orchestrator.log", "orchestrator.log.1"):
            lines = (runtime / "logs" / name).read_text().splitlines()
            assert lines and all(line[:4].isdigit() and line[4] == "-" for line in lines), lines[:3]
            assert (runtime / "logs" / name).stat().st_size <= 700
        assert cli("down", *where).returncode == 0
        assert "stopped (clean)" in log.read_text() and not os.path.exists(f"/proc/{pid}")
    finally:
        if (runtime / "control.sock").exists():
            cli("down", *where)
        shutil.rmtree(runtime, ignore_errors=True)
