"""``orchestrator backtest`` end to end in a subprocess: output, exit codes, error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "config", ["backtest_ema_cross.toml", "backtest_mean_reversion.toml", "backtest_ema_cross_bars.toml"]
)
def test_backtest_json_end_to_end(config):
    proc = cli("backtest", str(CONFIGS / config), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc["stats"]) == {"total_return", "pnl", "sharpe", "max_drawdown", "trades", "win_rate"}
    for key in ("orders", "fills", "events", "positions", "equity_curve"):
        assert isinstance(doc[key], list)
    assert doc["elapsed_s"] > 0
    assert doc["stats"]["trades"] > 0, "the shipped example should trade"
    assert len(doc["fills"]) >= doc["stats"]["trades"]
    filled = {f["client_order_id"] for f in doc["fills"]}
    assert filled <= {o["client_order_id"] for o in doc["orders"]}
    event_types = {e["type"] for e in doc["events"]}
    assert {"OrderSubmitted", "OrderFilled", "PositionOpened", "PositionClosed"} <= event_types


def test_backtest_json_is_deterministic_across_processes():
    first = json.loads(cli("backtest", str(CONFIGS / "backtest_ema_cross.toml"), "--json").stdout)
    second = json.loads(cli("backtest", str(CONFIGS / "backtest_ema_cross.toml"), "--json").stdout)
    first.pop("elapsed_s")
    second.pop("elapsed_s")
    assert first == second


def test_backtest_summary_is_readable():
    proc = cli("backtest", str(CONFIGS / "backtest_ema_cross.toml"))
    assert proc.returncode == 0, proc.stderr
    assert "total return" in proc.stdout and "sharpe" in proc.stdout and "trades" in proc.stdout


def test_missing_config_file_exits_2():
    proc = cli("backtest", "configs/does_not_exist.toml")
    assert proc.returncode == 2
    assert "does_not_exist.toml" in proc.stderr and "no such file" in proc.stderr


def test_invalid_toml_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[backtest\nrun_id = 1\n")
    proc = cli("backtest", str(bad))
    assert proc.returncode == 2
    assert "not valid TOML" in proc.stderr and "bad.toml" in proc.stderr


def test_invalid_value_names_file_and_key(tmp_path):
    text = (
        (CONFIGS / "backtest_ema_cross.toml").read_text().replace('oms_type = "NETTING"', 'oms_type = "NET"')
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("data/eurusd", str(CONFIGS / "data" / "eurusd")))
    proc = cli("backtest", str(bad))
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and "venues[0].oms_type" in proc.stderr and "NET" in proc.stderr


def test_corrupt_data_fails_the_job_with_exit_1_naming_file_row_and_field(tmp_path):
    data = tmp_path / "quotes.csv"
    data.write_text("timestamp,bid,ask\n1,1.10000,1.10020\n2,nan,1.10020\n")
    text = (CONFIGS / "backtest_ema_cross.toml").read_text().replace("data/eurusd_quotes_1d.csv", str(data))
    config = tmp_path / "corrupt.toml"
    config.write_text(text)
    proc = cli("backtest", str(config))
    assert proc.returncode == 1
    assert "quotes.csv" in proc.stderr and "row 2" in proc.stderr and "bid" in proc.stderr


def test_usage_errors_exit_2_and_help_has_an_example():
    assert cli().returncode == 2
    assert cli("bogus").returncode == 2
    assert cli("backtest").returncode == 2
    helped = cli("backtest", "--help")
    assert helped.returncode == 0 and "example:" in helped.stdout


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            "trade_size = 100000",
            "trade_size = 100000.5",
            "strategies[0].config.trade_size",
            "not a positive multiple of EUR/USD.SIM's size precision",
        ),
        (
            '["1000000 USD"]',
            '["-1000000 USD"]',
            "venues[0].starting_balances",
            "must not be negative",
        ),
        ("/eurusd_quotes_1d.csv", "/", "data[0].path", "is a directory"),  # configs/data/
    ],
)
def test_bad_values_found_when_the_run_starts_exit_2_in_one_line(tmp_path, old, new, key, reason):
    text = (
        (CONFIGS / "backtest_ema_cross.toml").read_text().replace("data/eurusd", str(CONFIGS / "data/eurusd"))
    )
    assert old in text
    config = tmp_path / "bad.toml"
    config.write_text(text.replace(old, new))
    proc = cli("backtest", str(config))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr  # one line, no traceback
    assert str(config) in proc.stderr and key in proc.stderr and reason in proc.stderr
