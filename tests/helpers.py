"""Small builders shared by the backtest tests (real engines, no mocks)."""

from __future__ import annotations

from node.backtest.engine import BacktestEngine, BacktestEngineConfig
from node.model.instruments import default_fx_pair
from node.model.objects import Money
from node.persistence.generators import random_walk_quotes


def fx_engine(ticks=None, count: int = 20_000, seed: int = 3, **config) -> tuple[BacktestEngine, object]:
    instrument = default_fx_pair("EUR/USD", "SIM")
    engine = BacktestEngine(BacktestEngineConfig(**config))
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)])
    engine.add_instrument(instrument)
    engine.add_data(ticks if ticks is not None else random_walk_quotes(instrument, count, seed=seed))
    return engine, instrument
