"""BacktestNode: runs a list of backtest configs one after another, disposing between runs.

Each run gets a fresh BacktestEngine (its own kernel, clock, cache and venues) that is
disposed as soon as the run's result is taken, so nothing from one run can leak into the
next and memory does not grow run after run. Data files are loaded per run; a generator
source is deterministic in its seed.
"""

from __future__ import annotations

from node.backtest.config import BacktestRunConfig, DataConfig
from node.backtest.engine import BacktestEngine, BacktestEngineConfig
from node.backtest.results import BacktestResult
from node.model.data import BarType
from node.model.timestamps import NANOS_PER_SECOND, parse_timestamp


def load_source(source: DataConfig, instrument) -> list:
    """Load or generate one data source for ``instrument``."""
    bar_type = BarType.from_str(source.bar_type) if source.bar_type else None
    if source.path is not None:
        from node.persistence.loaders import load_data

        return load_data(source.path, instrument, source.kind, bar_type)
    from node.persistence import generators

    g = source.generator or {}
    start_ns = parse_timestamp(g.get("start", "2024-01-01T00:00:00Z"), "generator.start")
    common = {
        "seed": g.get("seed", 42),
        "start_ns": start_ns,
        "start_price": str(g.get("start_price", "1.10000")),
    }
    if source.kind == "bars":
        return generators.random_walk_bars(bar_type, instrument, g["count"], **common)
    interval_ns = int(g.get("interval_s", 1) * NANOS_PER_SECOND)
    return generators.random_walk_quotes(instrument, g["count"], interval_ns=interval_ns, **common)


def build_engine(config: BacktestRunConfig, log_sink=None) -> BacktestEngine:
    """A ready-to-run engine for ``config`` (venues, instruments, data and strategies added)."""
    engine = BacktestEngine(
        BacktestEngineConfig(
            run_id=config.run_id,
            trader_id=config.trader_id,
            log_level=config.log_level,
            risk=config.risk,
            equity_sample_interval_s=config.equity_sample_interval_s,
        ),
        log_sink=log_sink,
    )
    try:
        for venue in config.venues:
            engine.add_venue(
                venue.name,
                list(venue.starting_balances),
                oms_type=venue.oms_type,
                account_type=venue.account_type,
                base_currency=venue.base_currency,
                bar_execution=venue.bar_execution,
            )
        instruments = {str(i.id): i for i in config.instruments}
        for instrument in config.instruments:
            engine.add_instrument(instrument)
        for source in config.data:
            engine.add_data(load_source(source, instruments[source.instrument_id]))
        for i, spec in enumerate(config.strategies):
            engine.add_strategy(spec.build(f"strategies[{i}]"))
    except BaseException:
        engine.dispose()
        raise
    return engine


class BacktestNode:
    def __init__(self, configs: list[BacktestRunConfig], log_sink=None) -> None:
        self.configs = list(configs)
        self._log_sink = log_sink

    def run(self) -> list[BacktestResult]:
        results = []
        for config in self.configs:
            results.append(self.run_one(config))
        return results

    def run_one(self, config: BacktestRunConfig) -> BacktestResult:
        engine = build_engine(config, self._log_sink)
        try:
            return engine.run()
        finally:
            engine.dispose()
