"""``events --follow`` and ``logs --follow`` end quietly: on Ctrl-C, and when their reader goes.

Real processes on one real background fleet (started once for the module), real pipes and a real
SIGINT. Each wait is for the event that matters (a line read, the process's exit), bounded by a
timeout; no sleeps.
"""

from __future__ import annotations

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
EXIT_WITHIN_S = 2.0


def _orch(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: what was read is all that was read, so select() on the pipe tells the truth
    )


def _line(proc: subprocess.Popen, timeout: float = 10.0) -> bytes:
    """The next line ``proc`` prints, waiting at most ``timeout`` s for it."""
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            proc.kill()
            pytest.fail(f"no line within {timeout} s (got {line!r})")
        byte = proc.stdout.read(1)
        if not byte:
            return line
        line += byte
    return line


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    config, runtime = write_fleet(tmp_path_factory.mktemp("follow"), nodes=1, spares=0)
    up = subprocess.run(
        [sys.executable, "-m", "orchestrator", "up", str(config), "--detach"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        yield runtime
    finally:
        subprocess.run(
            [sys.executable, "-m", "orchestrator", "down", "--runtime-dir", str(runtime)],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(runtime, ignore_errors=True)


def _ends_quietly(proc: subprocess.Popen) -> float:
    """Wait for ``proc`` to exit; it must exit 0 with nothing on stderr. Returns how long it took."""
    start = time.monotonic()
    try:
        code = proc.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"still running {EXIT_WITHIN_S} s later")
    err = proc.stderr.read().decode()
    assert (code, err) == (0, "")
    return time.monotonic() - start


@pytest.mark.slow
def test_events_follow_ends_on_ctrl_c_with_status_0_and_no_traceback(runtime):
    proc = _orch("events", "--follow", "--runtime-dir", str(runtime))
    assert _line(proc)  # following: a live event came through
    proc.send_signal(signal.SIGINT)
    _ends_quietly(proc)
    proc.stdout.close()


@pytest.mark.slow
def test_events_follow_ends_quietly_when_its_reader_goes(runtime):
    proc = _orch("events", "--follow", "--runtime-dir", str(runtime))
    assert _line(proc)
    proc.stdout.close()  # `| head -1` has had its line
    _ends_quietly(proc)


@pytest.mark.slow
def test_logs_follow_of_an_idle_log_ends_once_its_reader_goes(runtime):
    with open(runtime / "logs" / "n0.log", "a") as fh:  # a last line to see, then the log stays idle
        fh.write("the last line\n")
    proc = _orch("logs", "n0", "--follow", "--lines", "5", "--runtime-dir", str(runtime))
    while (line := _line(proc)) != b"the last line\n":
        assert line, "ended before its last line"
    proc.stdout.close()  # `| head`, with nothing more to write that could fail
    _ends_quietly(proc)
