"""Ctrl-C where no signal handler of the sweep is installed: in a backtest, in a sweep's planning.

Each waits for the event it interrupts (a pid file the running strategy writes; the planning
notice on stderr), sends SIGINT, and expects one line, ``interrupted``, and exit 130.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.test_sweep_cli import FAST, ROOT, SLOW, WAIT_S, pids_in, reap, wait_for, write_sweep

__all__ = ["reap"]


def start(tmp_path, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        stdout=(tmp_path / "stdout.txt").open("w"),
        stderr=(tmp_path / "stderr.txt").open("w"),
        cwd=ROOT,
        start_new_session=True,
    )


def assert_interrupted(tmp_path, proc) -> None:
    assert proc.wait(timeout=WAIT_S) == 130
    err = (tmp_path / "stderr.txt").read_text()
    assert err.splitlines()[-1] == "interrupted", err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_ctrl_c_during_a_backtest_is_one_line_and_exit_130(tmp_path, reap):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    sweep = write_sweep(tmp_path, runs=[{FAST: 4}])  # its backtest tables, with a gated strategy
    text = sweep.read_text().split("[[sweep.runs]]")[0]
    config = tmp_path / "gated.toml"
    gate = tmp_path / "never"  # never created: the run waits until interrupted
    config.write_text(text + f'gate = "{gate}"\npid_dir = "{pid_dir}"\n')
    proc = start(tmp_path, "backtest", config)
    reap(proc)
    wait_for(lambda: pids_in(pid_dir), "the backtest to start its strategy")
    os.kill(proc.pid, signal.SIGINT)
    assert_interrupted(tmp_path, proc)


def test_ctrl_c_while_a_big_sweep_plans_is_one_line_and_exit_130(tmp_path, reap):
    # 10,000 runs: several seconds of planning, announced after half a second.
    sweep = write_sweep(tmp_path, {FAST: list(range(2, 102)), SLOW: list(range(110, 210))})
    out = tmp_path / "out"
    proc = start(tmp_path, "sweep", sweep, "--out", out)
    reap(proc)
    wait_for(lambda: "sweep: planning:" in (tmp_path / "stderr.txt").read_text(), "the planning notice")
    os.kill(proc.pid, signal.SIGINT)
    assert_interrupted(tmp_path, proc)
    assert not out.exists()  # nothing was started
