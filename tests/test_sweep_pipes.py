"""``backtest`` and ``sweep`` writing to a pipe whose reader has gone (``| head -1``).

The read end is closed before the command writes anything, so every write to stdout fails
with EPIPE, deterministically. The work must still be done (every run stored), nothing must be
printed to stderr about it (no BrokenPipeError traceback, no "Exception ignored" from the
interpreter's final flush), and the exit status is the job's own.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_sweep_cli import FAST, ROOT, WAIT_S, read_rows, write_sweep


def run_with_closed_stdout(*args) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    proc.stdout.close()  # the reader is gone before the first write
    try:
        err = proc.stderr.read().decode()
        return proc.wait(timeout=WAIT_S), err
    finally:
        proc.stderr.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_sweep_whose_stdout_is_closed_runs_every_run_and_exits_quietly(tmp_path, fmt):
    out = tmp_path / "out"
    code, err = run_with_closed_stdout(
        "sweep", write_sweep(tmp_path, {FAST: [3, 4]}), "--out", out, "--workers", "1", *fmt
    )
    assert code == 0, err
    assert err == ""
    assert [r["status"] for r in read_rows(out)] == ["ok", "ok"]
    assert (out / "results.csv").is_file()


@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_a_backtest_whose_stdout_is_closed_exits_quietly(fmt):
    code, err = run_with_closed_stdout("backtest", ROOT / "configs" / "backtest_ema_cross.toml", *fmt)
    assert code == 0, err
    assert err == ""
