"""A sweep run with a bad value only the running node can see: failed, one clean line, no traceback."""

from __future__ import annotations

import json

from tests.test_sweep_cli import FAST, cli, read_rows, write_sweep

SIZE = "strategies.0.config.trade_size"


def test_a_run_with_a_bad_trade_size_fails_cleanly_and_the_others_run(tmp_path):
    out = tmp_path / "out"
    proc = cli(
        write_sweep(tmp_path, {FAST: [3], SIZE: [100000, 100000.5]}), "--out", out, "--json", "--workers", "1"
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    runs = {r["params"][SIZE]: r for r in json.loads(proc.stdout)["runs"]}
    assert runs[100000]["status"] == "ok"
    bad = runs[100000.5]
    assert bad["status"] == "failed"
    assert bad["error"].startswith(
        "bad config: strategies[0].config.trade_size: 100000.5 is not a positive multiple"
    )
    # the traceback is kept where a person debugging it would look: the store's attempts table
    attempts = {a["run_id"]: a for a in read_rows(out, "attempts")}
    assert "StrategyConfigError" in attempts[bad["run_id"]]["traceback"]
