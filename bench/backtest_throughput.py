"""Backtest throughput on a fixed, comparable workload (issue #2).

Workload: 1,000,000 EUR/USD quote ticks one second apart, mid a seeded random walk, spread
fixed at 2 pips, price precision 5; one simulated venue with a 1,000,000 USD margin account.
  (a) a strategy subscribed to quotes that does nothing;
  (b) EMA cross (10/20) on 1-minute mid bars aggregated from those quotes, size 100,000.
Only ``engine.run()`` is timed (data generation and set-up are not); median of --repeat.
Baseline in the same run: a bare Python loop over the same ticks calling one no-op
function, so the kernel's overhead shows as a ratio.

Run:  .venv/bin/python bench/backtest_throughput.py            (about a minute)
      .venv/bin/python bench/backtest_throughput.py --ticks 200000 --repeat 1
      .venv/bin/python bench/backtest_throughput.py --profile b  (pyinstrument, one run)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.backtest.engine import BacktestEngine, BacktestEngineConfig  # noqa: E402
from node.model.identifiers import InstrumentId  # noqa: E402
from node.model.instruments import default_fx_pair  # noqa: E402
from node.model.objects import Money  # noqa: E402
from node.persistence.generators import random_walk_quotes  # noqa: E402
from node.strategies.ema_cross import EMACross, EMACrossConfig  # noqa: E402
from node.trading.strategy import Strategy  # noqa: E402


class QuoteSink(Strategy):
    """Subscribes to quotes and does nothing with them."""

    def __init__(self, instrument_id: InstrumentId) -> None:
        super().__init__()
        self._instrument_id = instrument_id

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self._instrument_id)


def make_engine(instrument, ticks, strategy) -> BacktestEngine:
    engine = BacktestEngine(BacktestEngineConfig(collect_events=False))
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)])
    engine.add_instrument(instrument)
    engine.add_data(ticks)
    engine.add_strategy(strategy)
    return engine


def strategy_a(instrument):
    return QuoteSink(instrument.id)


def strategy_b(instrument):
    return EMACross(
        EMACrossConfig(
            instrument_id=str(instrument.id),
            bar_type=f"{instrument.id}-1-MINUTE-MID-INTERNAL",
            trade_size=100_000,
            fast_ema_period=10,
            slow_ema_period=20,
        )
    )


def run_case(instrument, ticks, factory, repeat: int) -> dict:
    times, orders, fills = [], 0, 0
    for _ in range(repeat):
        engine = make_engine(instrument, ticks, factory(instrument))
        result = engine.run()
        times.append(result.elapsed_s)
        orders = len(engine.cache.orders())
        fills = sum(len(o.trade_ids) for o in engine.cache.orders())
        engine.dispose()
    median = statistics.median(times)
    return {"seconds": median, "ticks_per_s": len(ticks) / median, "orders": orders, "fills": fills}


def bare_loop(ticks, repeat: int) -> dict:
    def noop(_tick) -> None:
        pass

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for tick in ticks:
            noop(tick)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"seconds": median, "ticks_per_s": len(ticks) / median, "orders": 0, "fills": 0}


def import_time_ms(module: str) -> float:
    """Cumulative import time of ``module`` from ``python -X importtime`` (median of 5)."""
    samples = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        ).stderr
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == module:
                samples.append(int(parts[1]) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", choices=["a", "b"], help="profile one run of a case with pyinstrument")
    args = parser.parse_args()

    instrument = default_fx_pair("EUR/USD", "SIM", price_precision=5)
    started = time.perf_counter()
    ticks = random_walk_quotes(instrument, args.ticks, seed=42, spread_raw=20)
    print(f"generated {len(ticks):,} quotes in {time.perf_counter() - started:.2f}s", file=sys.stderr)

    if args.profile:
        from pyinstrument import Profiler

        factory = strategy_a if args.profile == "a" else strategy_b
        engine = make_engine(instrument, ticks, factory(instrument))
        profiler = Profiler(interval=0.0005)
        profiler.start()
        engine.run()
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
        return

    rows = [
        ("bare loop, one no-op call per tick (baseline)", bare_loop(ticks, args.repeat)),
        ("(a) quotes -> no-op strategy", run_case(instrument, ticks, strategy_a, args.repeat)),
        ("(b) EMA cross 10/20 on 1-min mid bars", run_case(instrument, ticks, strategy_b, args.repeat)),
    ]
    baseline = rows[0][1]["ticks_per_s"]
    print(f"\nbacktest throughput: {len(ticks):,} EUR/USD quotes, median of {args.repeat}, run() only\n")
    print(
        f"| {'case':<46} | {'ticks/s':>11} | {'seconds':>8} | {'orders':>6} | {'fills':>6} | {'vs bare':>7} |"
    )
    print(f"|{'-' * 48}|{'-' * 13}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 9}|")
    for name, r in rows:
        ratio = baseline / r["ticks_per_s"]
        print(
            f"| {name:<46} | {r['ticks_per_s']:>11,.0f} | {r['seconds']:>8.3f} | {r['orders']:>6} | "
            f"{r['fills']:>6} | {ratio:>6.1f}x |"
        )
    print(
        f"\nimport node: {import_time_ms('node'):.1f} ms cumulative "
        f"(python -X importtime -c 'import node'); node.backtest.engine: "
        f"{import_time_ms('node.backtest.engine'):.1f} ms"
    )


if __name__ == "__main__":
    main()
