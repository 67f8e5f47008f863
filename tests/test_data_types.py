"""Validation of the market data types and of the timestamp helpers they rely on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.model.data import Bar, BarSpecification, BarType, QuoteTick, TradeTick
from node.model.enums import AggregationSource, AggressorSide, BarAggregation, PriceType
from node.model.errors import (
    InvalidDataError,
    InvalidTimestampError,
    InvalidValueError,
    NonPositivePriceError,
)
from node.model.identifiers import InstrumentId, TradeId
from node.model.objects import Price, Quantity
from node.model.timestamps import UNIX_NANOS_MAX, check_unix_nanos, format_iso8601, parse_timestamp

IID = InstrumentId("EUR/USD", "SIM")
BAR_TYPE = BarType(IID, BarSpecification(1, BarAggregation.MINUTE, PriceType.MID))
JAN_1_2024 = 1_704_067_200_000_000_000


def px(s: str) -> Price:
    return Price.from_str(s)


def qty(v=1_000_000) -> Quantity:
    return Quantity(v, 0)


def quote(bid="1.10000", ask="1.10020", ts=JAN_1_2024, **kw) -> QuoteTick:
    args = dict(bid_price=px(bid), ask_price=px(ask), bid_size=qty(), ask_size=qty(), ts_event=ts, ts_init=ts)
    args.update(kw)
    return QuoteTick(IID, **args)


def bar(o="1.10000", h="1.10050", low="1.09950", c="1.10010", **kw) -> Bar:
    args = dict(
        open=px(o),
        high=px(h),
        low=px(low),
        close=px(c),
        volume=qty(10),
        ts_event=JAN_1_2024,
        ts_init=JAN_1_2024,
    )
    args.update(kw)
    return Bar(BAR_TYPE, **args)


def trade(**kw) -> TradeTick:
    args = dict(
        price=px("1.10000"),
        size=qty(5),
        aggressor_side=AggressorSide.BUYER,
        trade_id=TradeId("T-1"),
        ts_event=JAN_1_2024,
        ts_init=JAN_1_2024,
    )
    args.update(kw)
    return TradeTick(IID, **args)


BAD_TIMESTAMPS = [-1, 2**64, 2**70, 1.5, "1704067200000000000", None, True]


# ------------------------------------------------------------------ QuoteTick


def test_valid_quote_keeps_its_values_and_computes_the_mid():
    q = quote()
    assert (q.bid_price, q.ask_price, q.ts_event) == (px("1.10000"), px("1.10020"), JAN_1_2024)
    assert q.extract_price(PriceType.MID) == px("1.100100")
    assert q.extract_price(PriceType.MID).precision == 6
    assert q.extract_price(PriceType.BID) is q.bid_price
    with pytest.raises(InvalidValueError):
        q.extract_price(PriceType.LAST)


@pytest.mark.parametrize(
    "field, value",
    [
        ("bid_price", 1.1),
        ("ask_price", "1.10020"),
        ("bid_price", Quantity(1, 0)),
        ("bid_size", Price(1, 0)),
        ("ask_size", 1_000_000),
    ],
)
def test_quote_rejects_wrong_types(field, value):
    with pytest.raises(InvalidValueError, match=field):
        quote(**{field: value})


@pytest.mark.parametrize("ts", BAD_TIMESTAMPS)
@pytest.mark.parametrize("field", ["ts_event", "ts_init"])
def test_quote_rejects_bad_timestamps(field, ts):
    with pytest.raises(InvalidTimestampError):
        quote(**{field: ts})


def test_timestamp_bounds_are_accepted():
    assert quote(ts_event=0, ts_init=UNIX_NANOS_MAX).ts_init == 2**64 - 1


def test_quote_rejects_precision_mismatch():
    with pytest.raises(InvalidDataError, match="precision"):
        quote(bid="1.1000", ask="1.10020")


@pytest.mark.parametrize(
    "bid, ask, field",
    [
        ("0.00000", "1.10020", "bid_price"),
        ("-1.09000", "1.10020", "bid_price"),
        ("1.10000", "0.00000", "ask_price"),
    ],
)
def test_quote_rejects_a_price_at_or_below_zero(bid, ask, field):
    # Every instrument kind here (fx, crypto spot, equities) is priced above zero.
    with pytest.raises(
        NonPositivePriceError, match=f"QuoteTick EUR/USD.SIM: {field} must be positive"
    ) as info:
        quote(bid=bid, ask=ask)
    assert info.value.field == field
    assert quote(bid="1.10030", ask="1.10020").bid_price > px("1.10020")  # crossed is still accepted


# ------------------------------------------------------------------ TradeTick


def test_trade_rejects_zero_size():
    with pytest.raises(InvalidDataError, match="size"):
        trade(size=Quantity(0, 0))


@pytest.mark.parametrize("field, value", [("price", 1.1), ("size", 5), ("size", Price(5, 0))])
def test_trade_rejects_wrong_types(field, value):
    with pytest.raises(InvalidValueError, match=field):
        trade(**{field: value})


@pytest.mark.parametrize("ts", BAD_TIMESTAMPS)
def test_trade_rejects_bad_timestamps(ts):
    with pytest.raises(InvalidTimestampError):
        trade(ts_event=ts)


@pytest.mark.parametrize("price", ["0.00000", "-0.00001"])
def test_trade_rejects_a_price_at_or_below_zero(price):
    with pytest.raises(NonPositivePriceError, match="TradeTick EUR/USD.SIM: price must be positive") as info:
        trade(price=px(price))
    assert info.value.field == "price"


def test_trade_normalizes_aggressor_side():
    assert trade(aggressor_side=2).aggressor_side is AggressorSide.SELLER


# ------------------------------------------------------------------ Bar


@pytest.mark.parametrize(
    "o, h, low, c",
    [
        ("1.10000", "1.09000", "1.09950", "1.10000"),  # high < low
        ("1.10060", "1.10050", "1.09950", "1.10000"),  # open above high
        ("1.10000", "1.10050", "1.09950", "1.10060"),  # close above high
        ("1.09940", "1.10050", "1.09950", "1.10000"),  # open below low
        ("1.10000", "1.10050", "1.09950", "1.09940"),  # close below low
    ],
)
def test_bar_rejects_inconsistent_ohlc(o, h, low, c):
    with pytest.raises(InvalidDataError, match="inconsistent OHLC"):
        bar(o, h, low, c)


@pytest.mark.parametrize(
    "o, h, low, c, field",
    [
        ("0.00000", "1.10050", "0.00000", "1.10000", "open"),
        ("1.10000", "1.10050", "-0.00001", "1.10000", "low"),
        ("0.00000", "0.00000", "0.00000", "0.00000", "open"),
        ("-2.00000", "-1.00000", "-2.00000", "-1.00000", "open"),
    ],
)
def test_bar_rejects_a_price_at_or_below_zero(o, h, low, c, field):
    with pytest.raises(NonPositivePriceError, match=f"{field} must be positive") as info:
        bar(o, h, low, c)
    assert info.value.field == field


def test_flat_bar_is_valid():
    b = bar("1.10000", "1.10000", "1.10000", "1.10000")
    assert b.high == b.low and b.instrument_id == IID


@pytest.mark.parametrize(
    "field, value", [("open", 1.1), ("close", "1.1"), ("volume", 10), ("high", Quantity(2, 0))]
)
def test_bar_rejects_wrong_types(field, value):
    with pytest.raises(InvalidValueError, match=field):
        bar(**{field: value})


@pytest.mark.parametrize("ts", BAD_TIMESTAMPS)
def test_bar_rejects_bad_timestamps(ts):
    with pytest.raises(InvalidTimestampError):
        bar(ts_init=ts)


# ------------------------------------------------------------------ BarType


@pytest.mark.parametrize(
    "text",
    [
        "EUR/USD.SIM-1-MINUTE-MID-INTERNAL",
        "EUR/USD.SIM-15-SECOND-BID-EXTERNAL",
        "BTC-PERP.BINANCE-4-HOUR-LAST-EXTERNAL",  # hyphen inside the symbol
        "AAPL.XNAS-1-DAY-ASK-INTERNAL",
    ],
)
def test_bar_type_from_str_round_trips(text):
    bt = BarType.from_str(text)
    assert str(bt) == text
    assert BarType.from_str(str(bt)) == bt
    assert hash(BarType.from_str(text)) == hash(bt)


def test_bar_type_parts():
    bt = BarType.from_str("BTC-PERP.BINANCE-4-HOUR-LAST-INTERNAL")
    assert bt.instrument_id == InstrumentId("BTC-PERP", "BINANCE")
    assert bt.spec.step == 4 and bt.spec.aggregation is BarAggregation.HOUR
    assert bt.spec.price_type is PriceType.LAST
    assert bt.aggregation_source is AggregationSource.INTERNAL and bt.is_internally_aggregated
    assert bt.spec.interval_ns == 4 * 3600 * 10**9


@pytest.mark.parametrize(
    "text",
    [
        "",
        "EUR/USD.SIM",
        "EUR/USD.SIM-1-MINUTE-MID",
        "EUR/USD.SIM-0-MINUTE-MID-INTERNAL",
        "EUR/USD.SIM-x-MINUTE-MID-INTERNAL",
        "EUR/USD.SIM-1-WEEK-MID-INTERNAL",
        "EUR/USD.SIM-1-MINUTE-OPEN-INTERNAL",
        "EUR/USD.SIM-1-MINUTE-MID-SOMEWHERE",
        "EURUSD-1-MINUTE-MID-INTERNAL",
    ],
)
def test_bar_type_from_str_rejects_malformed(text):
    with pytest.raises(InvalidValueError):
        BarType.from_str(text)


@pytest.mark.parametrize("step", [0, -1, 1.0, "1"])
def test_bar_specification_rejects_bad_step(step):
    with pytest.raises(InvalidValueError):
        BarSpecification(step, BarAggregation.MINUTE, PriceType.MID)


# ------------------------------------------------------------------ timestamps


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-01-01T00:00:00Z", JAN_1_2024),
        ("2024-01-01T00:00:00", JAN_1_2024),  # naive = UTC
        ("2024-01-01 00:00:00", JAN_1_2024),
        ("2024-01-01T00:00:00+00:00", JAN_1_2024),
        ("2024-01-01T01:00:00+01:00", JAN_1_2024),
        ("2023-12-31T18:30:00-05:30", JAN_1_2024),
        ("2024-01-01T00:00:00.5Z", JAN_1_2024 + 500_000_000),
        ("2024-01-01T00:00:00.000001Z", JAN_1_2024 + 1_000),
        ("2024-01-01T00:00:00.123456789Z", JAN_1_2024 + 123_456_789),
        ("2024-01-01T00:00:00.000000001+02:00", JAN_1_2024 - 2 * 3600 * 10**9 + 1),
        ("1970-01-01T00:00:00Z", 0),
        ("1704067200000000000", JAN_1_2024),
        (" 42 ", 42),
        (JAN_1_2024, JAN_1_2024),
    ],
)
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "-1",
        "1969-12-31T23:59:59Z",  # before the epoch
        "2024-01-01T00:00:00.1234567891Z",  # more than nanoseconds
        "2024-01-01T00:00:00.12a",
        "2024-13-01T00:00:00Z",
        str(2**64),
        -5,
        2**64,
    ],
)
def test_parse_timestamp_rejects(text):
    with pytest.raises(InvalidTimestampError):
        parse_timestamp(text)


def test_format_iso8601():
    assert format_iso8601(JAN_1_2024 + 5) == "2024-01-01T00:00:00.000000005Z"
    assert format_iso8601(0) == "1970-01-01T00:00:00.000000000Z"


@given(st.integers(min_value=0, max_value=UNIX_NANOS_MAX))
def test_iso8601_round_trips_every_valid_timestamp(ns):
    assert parse_timestamp(format_iso8601(ns)) == ns


@pytest.mark.parametrize("bad", [-1, 2**64, 1.0, "5", None, False])
def test_check_unix_nanos_rejects(bad):
    with pytest.raises(InvalidTimestampError):
        check_unix_nanos(bad)
