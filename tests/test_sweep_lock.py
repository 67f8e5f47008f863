"""Two sweeps on one --out: the second is refused while the first runs, naming its pid."""

from __future__ import annotations

from tests.test_sweep_cli import (
    FAST,
    GATE,
    PID_DIR,
    WAIT_S,
    cli,
    pids_in,
    reap,
    start_cli,
    wait_for,
    write_sweep,
)

__all__ = ["reap"]  # the fixture, imported for the tests here


def test_a_second_sweep_on_the_same_out_exits_2_naming_the_first(tmp_path, reap):
    gate, pid_dir, out = tmp_path / "gate", tmp_path / "pids", tmp_path / "out"
    pid_dir.mkdir()
    sweep = write_sweep(tmp_path, runs=[{FAST: 4, GATE: str(gate), PID_DIR: str(pid_dir)}])
    first = start_cli(tmp_path, sweep, "--out", out, "--workers", "1")
    reap(first)
    wait_for(lambda: pids_in(pid_dir), "the first sweep's run to start")
    # Started afresh (the store has no row yet), it would run the same run again.
    second = cli(sweep, "--out", out, timeout=20)
    assert second.returncode == 2, second.stderr
    assert f"another sweep (pid {first.pid}) is using this directory" in second.stderr
    assert "--out" in second.stderr
    gate.touch()
    assert first.wait(timeout=WAIT_S) == 0, (tmp_path / "stderr.txt").read_text()
