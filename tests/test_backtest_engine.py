"""The BacktestEngine end to end: determinism, data validation, reset, disposal."""

from __future__ import annotations

import bisect

import pytest

from node.backtest.engine import BacktestEngine, BacktestError
from node.model.data import QuoteTick
from node.model.errors import OutOfOrderDataError
from node.model.instruments import default_fx_pair
from node.model.objects import Money
from node.persistence.generators import random_walk_quotes
from node.strategies.ema_cross import EMACross, EMACrossConfig
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig
from tests.helpers import fx_engine


def ema_cross(instrument, fast: int = 10, slow: int = 20) -> EMACross:
    return EMACross(
        EMACrossConfig(
            instrument_id=str(instrument.id),
            bar_type=f"{instrument.id}-1-MINUTE-MID-INTERNAL",
            trade_size=100_000,
            fast_ema_period=fast,
            slow_ema_period=slow,
        )
    )


def run_ema(count: int = 30_000, seed: int = 3) -> dict:
    engine, instrument = fx_engine(count=count, seed=seed)
    engine.add_strategy(ema_cross(instrument))
    result = engine.run()
    engine.dispose()
    return result.deterministic_dict()


def test_same_input_same_output_twice():
    first = run_ema()
    second = run_ema()
    assert first["stats"]["trades"] > 5, "the run must actually trade for the comparison to mean anything"
    assert first == second


def test_different_data_gives_different_output():
    assert run_ema(seed=3)["fills"] != run_ema(seed=4)["fills"]


def test_ema_cross_alternates_and_never_holds_two_positions():
    engine, instrument = fx_engine(count=30_000)
    engine.add_strategy(ema_cross(instrument))
    result = engine.run()
    positions = engine.cache.positions()
    # Netting: at most one open position at the end, every other one closed.
    assert sum(p.is_open for p in positions) <= 1
    fills = result.fills
    assert len(fills) >= 10
    # After the first entry, every reversal is a close followed by an opposite entry.
    sides = [f["order_side"] for f in fills]
    for a, b in zip(sides[1::2], sides[2::2], strict=False):
        assert a == b, "close and new entry of one reversal are on the same side"
    # Each fill trades at the touch of the quote the venue had when the order arrived: bars close
    # on a timer before the tick at the boundary is seen, so that is the quote *before* the
    # fill's time; the final close on stop trades at the last quote.
    data = engine._data
    stamps = [q.ts_init for q in data]
    for fill in fills:
        ts = fill["ts_event"]
        quote = data[-1] if ts == stamps[-1] else data[bisect.bisect_left(stamps, ts) - 1]
        expected = quote.ask_price if fill["order_side"] == "BUY" else quote.bid_price
        assert fill["last_px"] == str(expected)
    engine.dispose()


def test_stats_are_consistent_with_positions_and_equity():
    engine, instrument = fx_engine(count=30_000)
    engine.add_strategy(ema_cross(instrument))
    result = engine.run()
    closed = engine.cache.positions_closed()
    assert result.stats["trades"] == len(closed)
    winners = sum(1 for p in closed if p.realized_pnl.as_double() > 0)
    assert result.stats["win_rate"] == pytest.approx(winners / len(closed))
    final_equity = result.equity_curve[-1][1]
    assert result.stats["pnl"] == pytest.approx(final_equity - 1_000_000)
    assert result.stats["total_return"] == pytest.approx((final_equity - 1_000_000) / 1_000_000)
    assert 0.0 <= result.stats["max_drawdown"] < 1.0
    # The strategy closes its position on stop, so equity equals the account balance.
    account = engine.cache.account_for_venue(instrument.id.venue)
    assert account.balance_total().as_double() == pytest.approx(final_equity)
    engine.dispose()


def test_mean_reversion_strategy_trades_with_limit_orders():
    engine, instrument = fx_engine(count=30_000, seed=11)
    engine.add_strategy(
        QuoteMeanReversion(QuoteMeanReversionConfig(instrument_id=str(instrument.id), trade_size=100_000))
    )
    result = engine.run()
    assert result.stats["trades"] > 0
    assert any(o["order_type"] == "LIMIT" for o in result.orders)
    engine.dispose()


def test_out_of_order_stream_is_rejected_not_reordered():
    instrument = default_fx_pair()
    ticks = random_walk_quotes(instrument, 10)
    swapped = ticks[:4] + [ticks[5], ticks[4]] + ticks[6:]
    engine = BacktestEngine()
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)])
    engine.add_instrument(instrument)
    with pytest.raises(OutOfOrderDataError, match="item 5"):
        engine.add_data(swapped)


def test_a_second_chunk_that_starts_before_the_first_ended_is_rejected():
    instrument = default_fx_pair()
    ticks = random_walk_quotes(instrument, 10)
    engine = BacktestEngine()
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)])
    engine.add_instrument(instrument)
    engine.add_data(ticks[5:])
    with pytest.raises(OutOfOrderDataError):
        engine.add_data(ticks[:5])


def test_streams_of_two_instruments_are_merged_by_time():
    eur = default_fx_pair("EUR/USD", "SIM")
    gbp = default_fx_pair("GBP/USD", "SIM")
    a = random_walk_quotes(eur, 50, start_ns=1_000, interval_ns=2)
    b = random_walk_quotes(gbp, 50, start_ns=1_001, interval_ns=2)
    engine = BacktestEngine()
    engine.add_venue("SIM", [Money(1_000_000, eur.quote_currency)])
    engine.add_instrument(eur)
    engine.add_instrument(gbp)
    engine.add_data(a)
    engine.add_data(b)
    stamps = [d.ts_init for d in engine._data]
    assert stamps == sorted(stamps) and len(stamps) == 100


def test_data_for_an_unknown_instrument_is_refused():
    instrument = default_fx_pair()
    engine = BacktestEngine()
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)])
    with pytest.raises(BacktestError, match="add the instrument first"):
        engine.add_data(random_walk_quotes(instrument, 3))


def test_run_without_data_and_use_after_dispose_raise():
    engine = BacktestEngine()
    with pytest.raises(BacktestError, match="no data"):
        engine.run()
    engine.dispose()
    with pytest.raises(BacktestError, match="disposed"):
        engine.add_venue("SIM", [Money(1, default_fx_pair().quote_currency)])


def test_reset_then_rerun_gives_the_same_result():
    engine, instrument = fx_engine(count=20_000)
    engine.add_strategy(ema_cross(instrument))
    first = engine.run().deterministic_dict()
    with pytest.raises(BacktestError, match="already run"):
        engine.run()
    engine.reset()
    second = engine.run().deterministic_dict()
    assert first["stats"]["trades"] > 0
    assert first == second
    engine.dispose()


def test_quote_tick_values_are_never_floats_inside_the_engine():
    engine, instrument = fx_engine(count=5_000)
    engine.add_strategy(ema_cross(instrument, 3, 5))
    engine.run()
    for order in engine.cache.orders():
        assert type(order.quantity.raw) is int
    last = engine.cache.quote_tick(instrument.id)
    assert isinstance(last, QuoteTick) and type(last.bid_price.raw) is int
    engine.dispose()
