"""``orchestrator up`` as a real process: SIGTERM stops everything cleanly, a second signal kills at once,
kill -9 leaves no orphans."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fleet_support import fast_node_doc

ROOT = Path(__file__).resolve().parent.parent


def write_fleet(
    tmp_path: Path, nodes: int = 2, spares: int = 1, stop_timeout_s: float = 5.0, strategies: tuple = ()
) -> tuple[Path, Path]:
    """Write a fleet file of ``nodes`` fast sandbox nodes; return (its path, its runtime dir).

    ``strategies``: more strategy tables for every node (e.g. one that is slow to stop).
    """
    runtime = Path("/tmp") / f"orch-proc-{os.getpid()}-{tmp_path.name[-10:]}"
    lines = [
        "[orchestrator]",
        f'runtime_dir = "{runtime}"',
        f'state_dir = "{runtime}"',
        f"spares = {spares}",
        f"stop_timeout_s = {stop_timeout_s}",
    ]
    for i in range(nodes):
        lines += ["[[nodes]]", f'id = "n{i}"', f'config = "n{i}.toml"']
        doc = fast_node_doc(i + 1)
        doc["strategies"] = [*doc.get("strategies", []), *strategies]
        (tmp_path / f"n{i}.toml").write_text(_toml(doc))
    path = tmp_path / "fleet.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, runtime


def _toml(doc: dict) -> str:
    """A tiny TOML writer for the node docs used here (tables, arrays of tables, scalars, lists)."""
    out: list[str] = []

    def scalar(v) -> str:
        return json.dumps(v)

    def emit(prefix: str, table: dict, array: bool = False) -> None:
        out.append(f"[[{prefix}]]" if array else f"[{prefix}]")
        nested = []
        for k, v in table.items():
            if isinstance(v, dict):
                nested.append((k, v))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                nested.append((k, v))
            else:
                out.append(f"{k} = {scalar(v)}")
        for k, v in nested:
            if isinstance(v, dict):
                emit(f"{prefix}.{k}", v)
            else:
                for item in v:
                    emit(f"{prefix}.{k}", item, array=True)

    for key, value in doc.items():
        if isinstance(value, dict):
            emit(key, value)
        else:
            for item in value:
                emit(key, item, array=True)
    return "\n".join(out) + "\n"


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_up(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "up", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_running(proc: subprocess.Popen, nodes: int, timeout: float = 60) -> list[str]:
    """Read the orchestrator's state lines until every node reported running."""
    lines, running = [], set()
    deadline = time.monotonic() + timeout
    while len(running) < nodes:
        assert time.monotonic() < deadline, f"nodes did not start: {lines}"
        line = proc.stdout.readline()
        assert line, f"orchestrator exited early: {lines}"
        lines.append(line.rstrip())
        if ": running" in line:
            running.add(line.split(":", 1)[0])
    return lines


def test_sigterm_stops_every_node_cleanly_and_exits_0(tmp_path):
    config, runtime = write_fleet(tmp_path)
    proc = start_up(config)
    try:
        wait_running(proc, 2)
        kids = children_of(proc.pid)
        assert len(kids) >= 3, "two nodes and a spare"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "stopped (clean)" in out
        assert out.count(": stopped") >= 2
        assert not any(alive(pid) for pid in kids)
        own_log = (runtime / "logs" / "orchestrator.log").read_text()
        assert "n0: running" in own_log and "n0: stopped" in own_log, "the orchestrator's own log"
    finally:
        if proc.poll() is None:
            proc.kill()


def read_until(proc: subprocess.Popen, text: str, lines: list[str], timeout: float = 60) -> None:
    """Read the orchestrator's output into ``lines`` until a line contains ``text``."""
    deadline = time.monotonic() + timeout
    while not lines or text not in lines[-1]:
        assert time.monotonic() < deadline, f"no {text!r} in {lines}"
        line = proc.stdout.readline()
        assert line, f"orchestrator exited before {text!r}: {lines}"
        lines.append(line.rstrip())


def test_a_second_sigint_kills_every_node_at_once_without_a_traceback(tmp_path):
    # Each node's stop takes 30 s (a slow flatten) and the stop deadline allows it: only the
    # second Ctrl-C can make the orchestrator end quickly.
    slow = {"path": "tests.slow_stop:SlowStop", "config": {"stop_delay_s": 30.0}}
    config, _runtime = write_fleet(tmp_path, stop_timeout_s=60.0, strategies=(slow,))
    proc = start_up(config)
    try:
        lines = wait_running(proc, 2)
        kids = children_of(proc.pid)
        assert len(kids) >= 3, "two nodes and a spare"
        proc.send_signal(signal.SIGINT)
        read_until(proc, "SIGINT: stopping every node", lines)
        read_until(proc, ": stopping", lines)  # the graceful stop is under way
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        out = "\n".join(lines) + "\n" + out
        assert time.monotonic() - started < 20, "it did not wait out the nodes' 30 s stops"
        assert proc.returncode == 1, out
        assert "SIGINT again: killing every node now" in out and "stopped (NOT clean)" in out
        assert "Traceback" not in out and "KeyboardInterrupt" not in out
        assert not any(alive(pid) for pid in kids)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kill9_of_the_orchestrator_leaves_no_orphans_after_one_second(tmp_path):
    config, _runtime = write_fleet(tmp_path)
    proc = start_up(config)
    try:
        wait_running(proc, 2)
        kids = children_of(proc.pid)
        assert len(kids) >= 3
        pidfds = [os.pidfd_open(pid) for pid in kids]  # readable once that process has ended
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # The guarantee under test (issue #4): PR_SET_PDEATHSIG ends every child within 1 s.
        deadline = time.monotonic() + 1.0
        pending = list(pidfds)
        while pending:
            ready, _, _ = select.select(pending, [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            pending = [fd for fd in pending if fd not in ready]
        for fd in pidfds:
            os.close(fd)
        assert not pending, f"{len(pending)} children were still alive 1 s after the orchestrator died"
    finally:
        if proc.poll() is None:
            proc.kill()
