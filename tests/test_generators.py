"""Seeded synthetic data: deterministic, valid, and reproducing the shipped sample files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from node.model.data import Bar, BarType, QuoteTick, TradeTick
from node.model.enums import AggressorSide
from node.model.errors import InvalidValueError
from node.model.instruments import default_fx_pair
from node.model.objects import Price
from node.persistence.generators import (
    DEFAULT_START_NS,
    GeneratorParameterError,
    RandomWalk,
    random_walk_bars,
    random_walk_quotes,
    random_walk_trades,
)
from node.persistence.loaders import write_bars_csv, write_quotes_csv

INSTRUMENT = default_fx_pair()
BAR_TYPE = BarType.from_str("EUR/USD.SIM-1-MINUTE-MID-EXTERNAL")
SHIPPED = Path(__file__).resolve().parent.parent / "configs" / "data"


def quote_key(t: QuoteTick):
    return (t.bid_price.raw, t.ask_price.raw, t.bid_size.raw, t.ask_size.raw, t.ts_event, t.ts_init)


def bar_key(b: Bar):
    return (b.open.raw, b.high.raw, b.low.raw, b.close.raw, b.volume.raw, b.ts_event)


def trade_key(t: TradeTick):
    return (t.price.raw, t.size.raw, t.aggressor_side, t.trade_id.value, t.ts_event)


# ------------------------------------------------------------------ RandomWalk


def test_random_walk_is_deterministic_and_starts_at_start():
    a = RandomWalk(7, 1000, 3.0, 1)
    b = RandomWalk(7, 1000, 3.0, 1)
    seq = [a.next() for _ in range(1000)]
    assert seq == [b.next() for _ in range(1000)]
    assert seq[0] == 1000
    assert len(set(seq)) > 10  # it actually moves
    assert seq != [RandomWalk(8, 1000, 3.0, 1).next() for _ in range(1000)]


def test_take_matches_repeated_next():
    a, b = RandomWalk(3, 500, 4, 1), RandomWalk(3, 500, 4, 1)
    assert a.take(1) + a.take(99) + a.take(0) + a.take(400) == [b.next() for _ in range(500)]
    assert a.value == b.value


def test_random_walk_does_not_touch_the_global_random_state():
    random.seed(123)
    expected = random.random()
    random.seed(123)
    RandomWalk(1, 100, 5, 1).take(100)
    random_walk_quotes(INSTRUMENT, 10)
    assert random.random() == expected


def reference_walk(seed: int, start: int, sigma: float, floor: int, n: int) -> list[int]:
    """The documented rule, written out independently of the implementation."""
    rng = random.Random(seed)
    value, out = start, [start]
    for _ in range(n - 1):
        value += round(rng.gauss(0.0, sigma))
        if value < floor:
            value = max(2 * floor - value, floor)
        out.append(value)
    return out


def test_random_walk_follows_the_documented_rule_and_reflects_at_the_floor():
    # Starting just above the floor with large steps, the floor is hit often.
    values = RandomWalk(11, 12, 50, 10).take(5000)
    assert values == reference_walk(11, 12, 50, 10, 5000)
    assert min(values) >= 10
    clamped = [12]
    rng = random.Random(11)
    for _ in range(4999):
        clamped.append(max(clamped[-1] + round(rng.gauss(0.0, 50)), 10))
    assert values != clamped  # reflection, not clamping


def test_random_walk_clamps_at_the_ceiling():
    assert max(RandomWalk(5, 100, 50, 1, 120).take(2000)) == 120


def test_zero_step_is_a_constant():
    assert RandomWalk(1, 42, 0, 1).take(10) == [42] * 10


@pytest.mark.parametrize(
    "args",
    [
        ("1", 100, 5, 1),  # seed not int
        (1, 0, 5, 1),  # start below floor
        (1, 100.0, 5, 1),  # start not int
        (1, 100, -1, 1),  # negative step
        (1, 100, float("nan"), 1),
        (1, 100, 5, 1.5),  # floor not int
        (1, 100, 5, 1, 50),  # ceiling below start
    ],
)
def test_random_walk_rejects_bad_parameters(args):
    with pytest.raises(GeneratorParameterError):
        RandomWalk(*args)


# ------------------------------------------------------------------ quotes


def test_quotes_same_seed_same_data_different_seed_different_data():
    a = random_walk_quotes(INSTRUMENT, 2000, seed=1)
    b = random_walk_quotes(INSTRUMENT, 2000, seed=1)
    c = random_walk_quotes(INSTRUMENT, 2000, seed=2)
    assert [quote_key(t) for t in a] == [quote_key(t) for t in b]
    assert a == b
    assert [quote_key(t) for t in a] != [quote_key(t) for t in c]


def test_quotes_are_valid_values():
    ticks = random_walk_quotes(INSTRUMENT, 5000, seed=9, step_raw=8)
    for t in ticks:
        assert type(t) is QuoteTick and type(t.bid_price) is Price
        assert t.bid_price.precision == t.ask_price.precision == INSTRUMENT.price_precision
        assert t.ask_price.raw - t.bid_price.raw == 20
        assert t.instrument_id == INSTRUMENT.id
        # Rebuilding through the validating constructor must agree with the fast path.
        assert (
            QuoteTick(
                t.instrument_id, t.bid_price, t.ask_price, t.bid_size, t.ask_size, t.ts_event, t.ts_init
            )
            == t
        )
    assert ticks[0].bid_price == Price.from_str("1.09990")
    assert ticks[0].ask_price == Price.from_str("1.10010")


def test_quote_prices_stay_positive_near_zero():
    # Start one pip above zero with a large step: the floor must keep every bid positive.
    ticks = random_walk_quotes(INSTRUMENT, 20_000, seed=4, start_price="0.00011", step_raw=30)
    assert min(t.bid_price.raw for t in ticks) >= 1
    assert all(t.bid_price < t.ask_price for t in ticks)
    assert max(t.bid_price.raw for t in ticks) > 100  # it did wander


def test_quote_timestamps_strictly_increase_at_the_interval():
    ticks = random_walk_quotes(INSTRUMENT, 1000, start_ns=5, interval_ns=250)
    ts = [t.ts_event for t in ticks]
    assert ts[0] == 5
    assert all(b - a == 250 for a, b in zip(ts, ts[1:], strict=False))
    assert all(t.ts_init == t.ts_event for t in ticks)


def test_quote_defaults():
    ticks = random_walk_quotes(INSTRUMENT, 3)
    assert ticks[0].ts_event == DEFAULT_START_NS == 1_704_067_200_000_000_000
    assert ticks[1].ts_event - ticks[0].ts_event == 1_000_000_000
    assert str(ticks[0].bid_size) == "1000000"
    assert ticks[0].bid_size is ticks[2].ask_size  # one shared Quantity


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": -1},
        {"count": 1.5},
        {"spread_raw": 0},
        {"interval_ns": 0},
        {"start_ns": -1},
        {"start_price": "0"},
        {"start_price": "0.00005"},  # bid would not be positive with a 20-unit spread
        {"size": 0},
        {"count": 10, "start_ns": 2**64 - 5},  # the last timestamp would overflow
    ],
)
def test_quote_generator_rejects_bad_parameters(kwargs):
    kwargs = {"count": 3, **kwargs}
    with pytest.raises(InvalidValueError):
        random_walk_quotes(INSTRUMENT, **kwargs)


def test_zero_count_is_empty():
    assert random_walk_quotes(INSTRUMENT, 0) == []
    assert random_walk_trades(INSTRUMENT, 0) == []
    assert random_walk_bars(BAR_TYPE, INSTRUMENT, 0) == []


# ------------------------------------------------------------------ trades


def test_trades_are_deterministic_with_sequential_ids_and_tick_rule_aggressors():
    a = random_walk_trades(INSTRUMENT, 500, seed=5)
    assert [trade_key(t) for t in a] == [trade_key(t) for t in random_walk_trades(INSTRUMENT, 500, seed=5)]
    assert [trade_key(t) for t in a] != [trade_key(t) for t in random_walk_trades(INSTRUMENT, 500, seed=6)]
    assert [t.trade_id.value for t in a[:3]] == ["T-1", "T-2", "T-3"]
    assert a[0].aggressor_side is AggressorSide.NO_AGGRESSOR
    for prev, cur in zip(a, a[1:], strict=False):
        expected = (
            AggressorSide.BUYER
            if cur.price > prev.price
            else AggressorSide.SELLER
            if cur.price < prev.price
            else AggressorSide.NO_AGGRESSOR
        )
        assert cur.aggressor_side is expected
        assert cur.ts_event > prev.ts_event
        assert cur.price.raw > 0 and cur.size.raw > 0
    sides = {t.aggressor_side for t in a}
    assert {AggressorSide.BUYER, AggressorSide.SELLER} <= sides


# ------------------------------------------------------------------ bars


def test_bars_are_deterministic_and_consistent():
    bars = random_walk_bars(BAR_TYPE, INSTRUMENT, 1000, seed=8)
    assert [bar_key(b) for b in bars] == [
        bar_key(b) for b in random_walk_bars(BAR_TYPE, INSTRUMENT, 1000, seed=8)
    ]
    assert [bar_key(b) for b in bars] != [
        bar_key(b) for b in random_walk_bars(BAR_TYPE, INSTRUMENT, 1000, seed=9)
    ]
    for b in bars:
        # The validating constructor accepts every generated bar.
        Bar(b.bar_type, b.open, b.high, b.low, b.close, b.volume, b.ts_event, b.ts_init)
        assert b.low.raw > 0
        assert b.bar_type == BAR_TYPE
    assert bars[0].open == Price.from_str("1.10000")
    assert all(b.open == a.close for a, b in zip(bars, bars[1:], strict=False))  # continuous
    assert any(b.high != b.low for b in bars)


def test_bar_timestamps_are_close_times_one_interval_apart():
    bars = random_walk_bars(BAR_TYPE, INSTRUMENT, 10, start_ns=0)
    assert [b.ts_event for b in bars] == [(i + 1) * 60 * 10**9 for i in range(10)]
    hourly = BarType.from_str("EUR/USD.SIM-1-HOUR-LAST-EXTERNAL")
    assert random_walk_bars(hourly, INSTRUMENT, 2, start_ns=0)[1].ts_event == 2 * 3600 * 10**9


def test_bars_for_another_instrument_are_rejected():
    with pytest.raises(GeneratorParameterError, match="GBP/USD"):
        random_walk_bars(BarType.from_str("GBP/USD.SIM-1-MINUTE-MID-EXTERNAL"), INSTRUMENT, 3)


# ------------------------------------------------------------------ shipped files


def test_shipped_sample_files_are_reproducible(tmp_path):
    """The calls documented in configs/data/README.md regenerate the files byte for byte."""
    write_quotes_csv(
        tmp_path / "q.csv",
        random_walk_quotes(INSTRUMENT, 21_600, seed=42, interval_ns=4_000_000_000),
        include_sizes=False,
    )
    write_bars_csv(tmp_path / "b.csv", random_walk_bars(BAR_TYPE, INSTRUMENT, 5_000, seed=42))
    assert (tmp_path / "q.csv").read_bytes() == (SHIPPED / "eurusd_quotes_1d.csv").read_bytes()
    assert (tmp_path / "b.csv").read_bytes() == (SHIPPED / "eurusd_bars_1m.csv").read_bytes()
    readme = (SHIPPED / "README.md").read_text()
    assert "random_walk_quotes(instrument, 21_600, seed=42, interval_ns=4_000_000_000)" in readme
    assert (
        'random_walk_bars(BarType.from_str("EUR/USD.SIM-1-MINUTE-MID-EXTERNAL"), instrument, 5_000, seed=42)'
        in readme
    )
