"""Moving averages against hand-computed values."""

from __future__ import annotations

import math

import pytest

from node.model.data import Bar, BarType, QuoteTick, TradeTick
from node.model.enums import AggressorSide, PriceType
from node.model.errors import InvalidValueError, NonFiniteValueError
from node.model.identifiers import InstrumentId, TradeId
from node.model.objects import Price, Quantity
from node.trading.indicators import (
    EMA,
    SMA,
    ExponentialMovingAverage,
    IndicatorParameterError,
    SimpleMovingAverage,
)

IID = InstrumentId("EUR/USD", "SIM")
BAR_TYPE = BarType.from_str("EUR/USD.SIM-1-MINUTE-MID-EXTERNAL")


def make_bar(close: str) -> Bar:
    c = Price.from_str(close)
    return Bar(BAR_TYPE, c, c, c, c, Quantity(1, 0), 0, 0)


def make_quote(bid: str, ask: str) -> QuoteTick:
    q = Quantity(1, 0)
    return QuoteTick(IID, Price.from_str(bid), Price.from_str(ask), q, q, 0, 0)


def make_trade(price: str) -> TradeTick:
    return TradeTick(IID, Price.from_str(price), Quantity(1, 0), AggressorSide.BUYER, TradeId("T-1"), 0, 0)


# ------------------------------------------------------------------ EMA


def test_ema_matches_hand_computed_values():
    # period 3 -> alpha = 2 / 4 = 0.5; seeded with the first input.
    ema = ExponentialMovingAverage(3)
    expected = []
    for x, v in [(1.0, 1.0), (2.0, 1.5), (3.0, 2.25), (4.0, 3.125), (2.0, 2.5625)]:
        ema.update_raw(x)
        expected.append(v)
        assert ema.value == pytest.approx(v, abs=1e-15)
    assert ema.alpha == 0.5
    assert ema.count == 5


def test_ema_period_one_tracks_the_input():
    ema = EMA(1)
    for x in (5.0, 7.0, 1.0):
        ema.update_raw(x)
        assert ema.value == x


def test_ema_alpha_for_period_10():
    ema = EMA(10)
    ema.update_raw(10.0)
    ema.update_raw(21.0)
    assert ema.value == pytest.approx(10.0 + (2 / 11) * 11.0)  # = 12.0


def test_ema_initialized_after_period_inputs():
    ema = EMA(3)
    assert not ema.has_inputs and not ema.initialized and ema.count == 0 and ema.value == 0.0
    ema.update_raw(1.0)
    assert ema.has_inputs and not ema.initialized
    ema.update_raw(1.0)
    assert not ema.initialized
    ema.update_raw(1.0)
    assert ema.initialized


def test_ema_reset_starts_over():
    ema = EMA(2)
    for x in (1.0, 5.0, 9.0):
        ema.update_raw(x)
    ema.reset()
    assert (ema.count, ema.value, ema.initialized, ema.has_inputs) == (0, 0.0, False, False)
    ema.update_raw(4.0)
    assert ema.value == 4.0  # seeded again, not blended with the old value
    assert ema.period == 2 and ema.alpha == pytest.approx(2 / 3)


# ------------------------------------------------------------------ SMA


def test_sma_matches_hand_computed_values():
    sma = SimpleMovingAverage(3)
    for x, v in [(1.0, 1.0), (2.0, 1.5), (3.0, 2.0), (4.0, 3.0), (8.0, 5.0), (0.0, 4.0)]:
        sma.update_raw(x)
        assert sma.value == pytest.approx(v, abs=1e-15)
    assert sma.count == 6


def test_sma_initialized_flag_and_reset():
    sma = SMA(2)
    sma.update_raw(3.0)
    assert sma.has_inputs and not sma.initialized
    sma.update_raw(5.0)
    assert sma.initialized and sma.value == 4.0
    sma.reset()
    assert (sma.count, sma.value, sma.initialized, sma.has_inputs) == (0, 0.0, False, False)
    sma.update_raw(10.0)
    assert sma.value == 10.0  # the old window is gone


def test_sma_stays_exact_over_many_updates():
    # A long rolling sum drifts unless it is resynchronised; after a million mixed-magnitude
    # inputs the average of the last window must still equal a fresh computation.
    sma = SMA(7)
    xs = [((i * 7919) % 1000) * 1.37e-3 + (1e6 if i % 3 == 0 else 0.0) for i in range(200_000)]
    for x in xs:
        sma.update_raw(x)
    assert sma.value == pytest.approx(math.fsum(xs[-7:]) / 7, rel=1e-15)


# ------------------------------------------------------------------ inputs


def test_handle_bar_uses_close():
    ema = EMA(2)
    ema.handle_bar(make_bar("1.10000"))
    ema.handle_bar(make_bar("1.10300"))
    assert ema.value == pytest.approx(1.1 + (2 / 3) * 0.003)


@pytest.mark.parametrize(
    "price_type, expected",
    [(PriceType.BID, 1.1), (PriceType.ASK, 1.1002), (PriceType.MID, 1.1001), (PriceType.LAST, 1.1001)],
)
def test_handle_quote_tick_uses_price_type(price_type, expected):
    sma = SMA(1, price_type)
    sma.handle_quote_tick(make_quote("1.10000", "1.10020"))
    assert sma.value == pytest.approx(expected, abs=1e-12)


def test_handle_trade_tick_uses_price():
    sma = SMA(2)
    sma.handle_trade_tick(make_trade("100.5"))
    sma.handle_trade_tick(make_trade("101.5"))
    assert sma.value == 101.0 and sma.initialized


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("cls", [EMA, SMA])
@pytest.mark.parametrize("period", [0, -3, 2.5, "3", None, True])
def test_period_must_be_positive_int(cls, period):
    with pytest.raises(IndicatorParameterError, match="period"):
        cls(period)


@pytest.mark.parametrize("cls", [EMA, SMA])
def test_price_type_is_validated(cls):
    with pytest.raises(IndicatorParameterError):
        cls(3, 99)
    assert issubclass(IndicatorParameterError, InvalidValueError)


@pytest.mark.parametrize("cls", [EMA, SMA])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_update_raw_rejects_non_finite_input(cls, bad):
    ind = cls(3)
    ind.update_raw(1.0)
    with pytest.raises(NonFiniteValueError):
        ind.update_raw(bad)
    assert ind.value == 1.0 and ind.count == 1  # state untouched


def test_names_and_aliases():
    assert EMA is ExponentialMovingAverage and SMA is SimpleMovingAverage
    assert EMA(10).name == "ExponentialMovingAverage(10)"
    assert SMA(5, PriceType.BID).name == "SimpleMovingAverage(5,BID)"
    assert "count=0" in repr(SMA(5))
