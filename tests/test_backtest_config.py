"""Backtest config validation: every bad value names its key path and the reason."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from node.backtest.config import BacktestRunConfig, ConfigError, StrategySpec

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def base() -> dict:
    with (CONFIGS / "backtest_ema_cross.toml").open("rb") as fh:
        return tomllib.load(fh)


def edit(fn) -> dict:
    doc = copy.deepcopy(base())
    fn(doc)
    return doc


CASES = [
    ("unknown top-level key", lambda d: d.update(bogus=1), "bogus"),
    ("unknown backtest key", lambda d: d["backtest"].update(speed=2), "backtest.speed"),
    ("bad log level", lambda d: d["backtest"].update(log_level="LOUD"), "backtest.log_level"),
    (
        "negative sample interval",
        lambda d: d["backtest"].update(equity_sample_interval_s=-1),
        "equity_sample_interval_s",
    ),
    ("venues not an array", lambda d: d.update(venues={"name": "SIM"}), "venues"),
    ("venue without name", lambda d: d["venues"][0].pop("name"), "venues[0].name"),
    ("bad oms type", lambda d: d["venues"][0].update(oms_type="NET"), "venues[0].oms_type"),
    (
        "bad balance",
        lambda d: d["venues"][0].update(starting_balances=["lots USD"]),
        "venues[0].starting_balances[0]",
    ),
    (
        "unknown currency",
        lambda d: d["venues"][0].update(starting_balances=["10 XYZ"]),
        "starting_balances[0]",
    ),
    ("empty balances", lambda d: d["venues"][0].update(starting_balances=[]), "venues[0].starting_balances"),
    ("bad bar execution", lambda d: d["venues"][0].update(bar_execution="later"), "venues[0].bar_execution"),
    ("duplicate venue", lambda d: d["venues"].append(dict(d["venues"][0])), "venues"),
    ("bad instrument id", lambda d: d["instruments"][0].update(id="EURUSD"), "instruments[0].id"),
    ("precision out of range", lambda d: d["instruments"][0].update(price_precision=12), "price_precision"),
    ("precision wrong type", lambda d: d["instruments"][0].update(price_precision="5"), "price_precision"),
    ("fee not a number", lambda d: d["instruments"][0].update(taker_fee="cheap"), "taker_fee"),
    ("fee is NaN", lambda d: d["instruments"][0].update(taker_fee="nan"), "taker_fee"),
    (
        "instrument on unknown venue",
        lambda d: d["instruments"][0].update(id="EUR/USD.XYZ"),
        "instruments[0].id",
    ),
    (
        "data for unknown instrument",
        lambda d: d["data"][0].update(instrument_id="GBP/USD.SIM"),
        "data[0].instrument_id",
    ),
    ("data file missing", lambda d: d["data"][0].update(path="nope.csv"), "data[0].path"),
    ("data path and generator", lambda d: d["data"][0].update(generator={"count": 5}), "data[0]"),
    ("bars without bar type", lambda d: d["data"][0].update(kind="bars"), "data[0].bar_type"),
    (
        "generator count zero",
        lambda d: (d["data"][0].pop("path"), d["data"][0].update(generator={"count": 0})),
        "generator.count",
    ),
    (
        "bad strategy path",
        lambda d: d["strategies"][0].update(path="node.strategies.ema_cross"),
        "strategies[0].path",
    ),
    (
        "unimportable strategy",
        lambda d: d["strategies"][0].update(path="no.such.module:X"),
        "strategies[0].path",
    ),
    (
        "missing strategy class",
        lambda d: d["strategies"][0].update(path="node.strategies.ema_cross:Nope"),
        "strategies[0].path",
    ),
    (
        "bad strategy config",
        lambda d: d["strategies"][0]["config"].update(fast_ema_period=50),
        "strategies[0].config",
    ),
    ("no strategies", lambda d: d.update(strategies=[]), "strategies"),
    ("bad risk key", lambda d: d.update(risk={"max_rate": 3}), "risk.max_rate"),
    ("bad risk rate", lambda d: d.update(risk={"max_submit_rate": 0}), "risk.max_submit_rate"),
]


@pytest.mark.parametrize("name,mutate,key", CASES, ids=[c[0] for c in CASES])
def test_invalid_config_names_the_key(name, mutate, key):
    with pytest.raises(ConfigError) as info:
        BacktestRunConfig.from_dict(edit(mutate), base_dir=CONFIGS)
    assert key in str(info.value), f"{name}: {info.value}"


def test_shipped_configs_are_valid():
    for path in CONFIGS.glob("backtest_*.toml"):
        with path.open("rb") as fh:
            config = BacktestRunConfig.from_dict(tomllib.load(fh), base_dir=path.parent)
        assert config.strategies and config.venues and config.data


def test_defaults_fill_in_missing_optional_keys():
    doc = edit(
        lambda d: (d.pop("backtest"), d["venues"][0].pop("oms_type"), d["instruments"][0].pop("maker_fee"))
    )
    config = BacktestRunConfig.from_dict(doc, base_dir=CONFIGS)
    assert config.run_id == "backtest" and config.venues[0].oms_type.name == "NETTING"
    assert str(config.instruments[0].maker_fee) == "0.00002"


BROKEN_STRATEGIES = {
    "raises_at_import": "raise RuntimeError('no venue credentials')\n",
    "bad_syntax": "class S(:\n    pass\n",
    "raises_in_init": (
        "from node.trading.strategy import Strategy, StrategyConfig\n"
        "SConfig = StrategyConfig\n"
        "class S(Strategy):\n"
        "    def __init__(self, config):\n"
        "        raise KeyError('lookback')\n"
    ),
}


@pytest.mark.parametrize(
    ("module", "words"),
    [
        (
            "raises_at_import",
            "importing module 'raises_at_import' raised RuntimeError: no venue credentials ({}:1)",
        ),
        ("bad_syntax", "importing module 'bad_syntax' raised SyntaxError: invalid syntax ({}:1)"),
        ("raises_in_init", "raises_in_init:S(config) raised KeyError: 'lookback' ({}:5)"),
        ("not_there", "cannot import module 'not_there': No module named 'not_there' (is the directory"),
    ],
)
def test_a_strategy_that_cannot_be_imported_or_built_is_a_config_error_saying_where(
    tmp_path, monkeypatch, module, words
):
    """One line naming the key, the exception and the user's file:line; no traceback for the user to read."""
    for name, code in BROKEN_STRATEGIES.items():
        (tmp_path / f"{name}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = StrategySpec(f"{module}:S")
    with pytest.raises(ConfigError) as info:
        spec.build("strategies[0]")
    assert info.value.key == "strategies[0].path"
    assert words.format(tmp_path / f"{module}.py") in info.value.reason
