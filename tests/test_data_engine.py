"""DataEngine: routing by topic, cache updates, and internal time-bar aggregation.

Time is driven the way the backtest loop drives it: before a data point with timestamp t is
processed, ``clock.advance_time(t)`` fires every timer due at or before t, so a bar closing at
t is complete before the tick at t is seen (that tick opens the next bar).
"""

from __future__ import annotations

import pytest

from node.cache.cache import Cache
from node.common.clock import TestClock
from node.data.engine import DataEngine, DataEngineError
from node.data.messages import DataKind, Subscribe, Unsubscribe, bars_topic, quotes_topic, trades_topic
from node.model.data import Bar, BarSpecification, BarType, QuoteTick, TradeTick
from node.model.enums import AggregationSource, AggressorSide, BarAggregation, PriceType
from node.model.errors import PrecisionError
from node.model.identifiers import InstrumentId, TradeId
from node.model.instruments import Equity, default_fx_pair
from node.model.objects import USD, Price, Quantity
from node.msgbus.bus import MessageBus

SEC = 1_000_000_000
MIN = 60 * SEC
EURUSD = default_fx_pair("EUR/USD", "SIM")  # price precision 5, size precision 0
GBPUSD = default_fx_pair("GBP/USD", "SIM")
ACME = Equity(InstrumentId.from_str("ACME.XNAS"), USD, price_precision=2, size_precision=0)


def bar_type(instrument, price_type: PriceType, step: int = 1, aggregation=BarAggregation.MINUTE) -> BarType:
    return BarType(instrument.id, BarSpecification(step, aggregation, price_type), AggregationSource.INTERNAL)


def quote(bid: str, ask: str, bid_size: int, ask_size: int, ts: int, instrument=EURUSD) -> QuoteTick:
    return QuoteTick(
        instrument.id,
        Price.from_str(bid),
        Price.from_str(ask),
        Quantity(bid_size, 0),
        Quantity(ask_size, 0),
        ts,
        ts,
    )


def trade(px: str, size: int, ts: int, instrument=ACME) -> TradeTick:
    return TradeTick(
        instrument.id, Price.from_str(px), Quantity(size, 0), AggressorSide.BUYER, TradeId(f"T-{ts}"), ts, ts
    )


class Harness:
    """A real bus, cache and DataEngine on a TestClock, fed like the backtest loop feeds them."""

    def __init__(self, start: bool = True) -> None:
        self.clock = TestClock(0)
        self.bus = MessageBus("TRADER-001", self.clock)
        self.cache = Cache()
        for instrument in (EURUSD, GBPUSD, ACME):
            self.cache.add_instrument(instrument)
        self.engine = DataEngine(self.bus, self.cache, self.clock)
        if start:
            self.engine.start()

    def feed(self, data) -> None:
        self.clock.advance_time(data.ts_init)
        self.engine.process(data)

    def subscribe_bars(self, bt: BarType, subscriber: str = "A") -> list[Bar]:
        received: list[Bar] = []
        self.bus.subscribe(bars_topic(bt), received.append)
        self.bus.send(
            "DataEngine.execute", Subscribe(DataKind.BARS, bt, subscriber, self.clock.timestamp_ns())
        )
        return received

    def unsubscribe_bars(self, bt: BarType, subscriber: str = "A") -> None:
        self.bus.send(
            "DataEngine.execute", Unsubscribe(DataKind.BARS, bt, subscriber, self.clock.timestamp_ns())
        )


def ohlcv(bar: Bar) -> tuple[str, str, str, str, str]:
    return (str(bar.open), str(bar.high), str(bar.low), str(bar.close), str(bar.volume))


# One minute of EUR/USD quotes, then a quote exactly at the 60 s boundary.
#   bids 1.10000 1.10010 1.09990 1.10004   sizes 1000 3000  500 1000  (sum 5500)
#   asks 1.10002 1.10014 1.09994 1.10006   sizes 2000 1000 1500 3000  (sum 7500)
#   mids 1.100010 1.100120 1.099920 1.100050                      (mid volume (5500+7500)/2)
MINUTE_OF_QUOTES = [
    quote("1.10000", "1.10002", 1000, 2000, 1 * SEC),
    quote("1.10010", "1.10014", 3000, 1000, 20 * SEC),
    quote("1.09990", "1.09994", 500, 1500, 40 * SEC),
    quote("1.10004", "1.10006", 1000, 3000, MIN - 1),
]
AT_BOUNDARY = quote("1.20000", "1.20004", 100, 300, MIN)


# -- routing and cache ------------------------------------------------------------------------------


def test_quotes_reach_only_subscribers_of_their_instrument_and_update_the_cache():
    h = Harness()
    eur, gbp, everything = [], [], []
    h.bus.subscribe(quotes_topic(EURUSD.id), eur.append)
    h.bus.subscribe(quotes_topic(GBPUSD.id), gbp.append)
    h.bus.subscribe("data.quotes.*", everything.append)

    q1 = quote("1.10000", "1.10002", 1, 1, 1)
    q2 = quote("1.25000", "1.25002", 1, 1, 2, instrument=GBPUSD)
    q3 = quote("1.10001", "1.10003", 1, 1, 3)
    h.engine.process(q1)
    h.bus.send("DataEngine.process", q2)  # the bus endpoint routes the same way
    h.engine.process_quote_tick(q3)

    assert eur == [q1, q3]
    assert gbp == [q2]
    assert everything == [q1, q2, q3]
    assert h.cache.quote_tick(EURUSD.id) is q3
    assert h.cache.quote_tick(GBPUSD.id) is q2


def test_trades_are_routed_by_instrument_and_cached():
    h = Harness()
    acme, quotes = [], []
    h.bus.subscribe(trades_topic(ACME.id), acme.append)
    h.bus.subscribe(quotes_topic(ACME.id), quotes.append)
    t1, t2 = trade("100.50", 10, 1), trade("100.75", 5, 2)
    h.engine.process(t1)
    h.engine.process(t2)
    assert acme == [t1, t2]
    assert quotes == []
    assert h.cache.trade_tick(ACME.id) is t2
    assert h.cache.quote_tick(ACME.id) is None


def test_external_bars_are_cached_and_published_on_their_bar_type_topic():
    h = Harness()
    external = BarType(EURUSD.id, BarSpecification(1, BarAggregation.MINUTE, PriceType.BID))
    px = Price.from_str("1.10000")
    b = Bar(external, px, px, px, px, Quantity(7, 0), MIN, MIN)
    received, other = [], []
    h.bus.subscribe(bars_topic(external), received.append)
    h.bus.subscribe(bars_topic(bar_type(EURUSD, PriceType.BID)), other.append)  # same spec, INTERNAL
    h.engine.process(b)
    assert received == [b]
    assert other == []
    assert h.cache.bar(external) is b


def test_processing_an_unknown_data_type_raises():
    h = Harness()
    with pytest.raises(DataEngineError, match="cannot process str"):
        h.engine.process("not data")


def test_data_clients_are_told_about_the_first_subscribe_and_last_unsubscribe():
    class RecordingDataClient:  # a venue data adapter (an external port)
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def subscribe(self, kind, key) -> None:
            self.calls.append(("subscribe", kind, key))

        def unsubscribe(self, kind, key) -> None:
            self.calls.append(("unsubscribe", kind, key))

    h = Harness()
    client = RecordingDataClient()
    h.engine.register_client(client)
    execute = h.engine.execute
    execute(Subscribe(DataKind.QUOTES, EURUSD.id, "A", 0))
    execute(Subscribe(DataKind.QUOTES, EURUSD.id, "B", 0))
    assert client.calls == [("subscribe", DataKind.QUOTES, EURUSD.id)]
    assert h.engine.subscribed(DataKind.QUOTES) == [EURUSD.id]
    execute(Unsubscribe(DataKind.QUOTES, EURUSD.id, "A", 0))
    assert len(client.calls) == 1  # B still wants the quotes
    execute(Unsubscribe(DataKind.QUOTES, EURUSD.id, "B", 0))
    assert client.calls[-1] == ("unsubscribe", DataKind.QUOTES, EURUSD.id)
    assert h.engine.subscribed(DataKind.QUOTES) == []


# -- time bars from quotes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price_type", "expected"),
    [
        (PriceType.MID, ("1.100010", "1.100120", "1.099920", "1.100050", "6500")),
        (PriceType.BID, ("1.10000", "1.10010", "1.09990", "1.10004", "5500")),
        (PriceType.ASK, ("1.10002", "1.10014", "1.09994", "1.10006", "7500")),
    ],
)
def test_quote_bar_ohlcv_is_hand_computed(price_type, expected):
    h = Harness()
    bt = bar_type(EURUSD, price_type)
    received = h.subscribe_bars(bt)
    for tick in MINUTE_OF_QUOTES:
        h.feed(tick)
    assert received == []  # the minute is not over yet

    h.feed(AT_BOUNDARY)  # the timer at 60 s fires before this tick is processed

    assert len(received) == 1
    bar = received[0]
    assert ohlcv(bar) == expected
    assert bar.bar_type == bt
    assert bar.ts_event == MIN and bar.ts_init == MIN
    assert h.cache.bar(bt) is bar


def test_mid_bars_carry_one_more_decimal_than_the_quotes():
    h = Harness()
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.MID))
    h.feed(quote("1.10000", "1.10001", 1, 1, SEC))  # mid 1.100005 is not representable at 5 decimals
    h.clock.advance_time(MIN)
    assert received[0].close == Price.from_str("1.100005")
    assert received[0].close.precision == 6


def test_a_tick_at_the_boundary_opens_the_next_bar():
    h = Harness()
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    for tick in MINUTE_OF_QUOTES:
        h.feed(tick)
    h.feed(AT_BOUNDARY)
    h.feed(quote("1.20010", "1.20012", 200, 300, MIN + 30 * SEC))
    h.clock.advance_time(2 * MIN)

    assert [b.ts_event for b in received] == [MIN, 2 * MIN]
    assert "1.20000" not in ohlcv(received[0])  # the boundary tick is not in the first bar
    assert ohlcv(received[1]) == ("1.20000", "1.20010", "1.20000", "1.20010", "300")


def test_bars_close_on_the_clock_without_a_following_tick():
    h = Harness()
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    h.feed(quote("1.10000", "1.10002", 1, 1, 5 * SEC))
    h.clock.advance_time(MIN - 1)
    assert received == []
    h.clock.advance_time(MIN)
    assert [b.ts_event for b in received] == [MIN]


def test_empty_intervals_produce_no_bar():
    h = Harness()
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    h.feed(quote("1.10000", "1.10002", 10, 10, 30 * SEC))
    h.feed(quote("1.10100", "1.10102", 20, 20, 3 * MIN + 10 * SEC))  # nothing in [1 min, 3 min)
    h.clock.advance_time(10 * MIN)

    assert [b.ts_event for b in received] == [MIN, 4 * MIN]
    assert ohlcv(received[1]) == ("1.10100", "1.10100", "1.10100", "1.10100", "20")
    assert [b.ts_event for b in h.cache.bars(bar_type(EURUSD, PriceType.BID))] == [4 * MIN, MIN]


def test_bars_follow_the_interval_grid_when_subscribed_mid_interval():
    h = Harness()
    h.clock.advance_time(90 * SEC)
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    h.feed(quote("1.10000", "1.10002", 1, 1, 100 * SEC))
    h.clock.advance_time(3 * MIN)
    assert [b.ts_event for b in received] == [2 * MIN]  # closes at the grid point, not 90 s + 60 s


def test_multi_second_bars_close_every_step():
    h = Harness()
    bt = bar_type(EURUSD, PriceType.ASK, step=15, aggregation=BarAggregation.SECOND)
    received = h.subscribe_bars(bt)
    for ts in (1, 14, 16, 29, 31):
        h.feed(quote("1.10000", f"1.1000{ts % 10}", 1, 1, ts * SEC))
    h.clock.advance_time(45 * SEC)
    assert [b.ts_event for b in received] == [15 * SEC, 30 * SEC, 45 * SEC]
    assert [str(b.volume) for b in received] == ["2", "2", "1"]


def test_bars_from_trades_use_last_price_and_traded_size():
    h = Harness()
    bt = bar_type(ACME, PriceType.LAST)
    received = h.subscribe_bars(bt)
    quotes_ignored = quote("1.00", "500.00", 1, 1, 2 * SEC, instrument=ACME)
    for tick in (
        trade("100.50", 10, 1 * SEC),
        quotes_ignored,
        trade("101.00", 5, 10 * SEC),
        trade("99.75", 20, 30 * SEC),
        trade("100.25", 1, 59 * SEC),
        trade("102.00", 7, MIN),
    ):
        h.feed(tick)
    assert len(received) == 1
    assert ohlcv(received[0]) == ("100.50", "101.00", "99.75", "100.25", "36")
    assert received[0].ts_event == MIN


def test_several_bar_types_on_one_instrument_aggregate_independently():
    h = Harness()
    bid = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    ask = h.subscribe_bars(bar_type(EURUSD, PriceType.ASK))
    gbp = h.subscribe_bars(bar_type(GBPUSD, PriceType.BID))
    for tick in MINUTE_OF_QUOTES:
        h.feed(tick)
    h.clock.advance_time(MIN)
    assert ohlcv(bid[0])[0] == "1.10000" and ohlcv(ask[0])[0] == "1.10002"
    assert gbp == []  # no GBP/USD quotes, no GBP/USD bar


# -- subscription lifecycle ----------------------------------------------------------------------------


def test_unsubscribe_stops_the_aggregator():
    h = Harness()
    bt = bar_type(EURUSD, PriceType.BID)
    received = h.subscribe_bars(bt)
    h.feed(quote("1.10000", "1.10002", 1, 1, 10 * SEC))
    h.clock.advance_time(MIN)
    assert len(received) == 1

    h.unsubscribe_bars(bt)
    assert h.clock.timer_names == []
    assert not h.bus.has_subscribers(quotes_topic(EURUSD.id))
    h.feed(quote("1.10010", "1.10012", 1, 1, MIN + 10 * SEC))
    h.clock.advance_time(5 * MIN)
    assert len(received) == 1
    assert h.cache.bar_count(bt) == 1


def test_aggregation_continues_until_the_last_subscriber_leaves():
    h = Harness()
    bt = bar_type(EURUSD, PriceType.BID)
    received = h.subscribe_bars(bt, "A")
    h.subscribe_bars(bt, "B")
    h.unsubscribe_bars(bt, "A")
    h.feed(quote("1.10000", "1.10002", 1, 1, 10 * SEC))
    h.clock.advance_time(MIN)
    assert len(received) == 1
    h.unsubscribe_bars(bt, "B")
    h.feed(quote("1.10000", "1.10002", 1, 1, MIN + 10 * SEC))
    h.clock.advance_time(2 * MIN)
    assert len(received) == 1


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (DataKind.QUOTES, "quotes of USD/JPY.SIM"),
        (DataKind.TRADES, "trades of USD/JPY.SIM"),
        (DataKind.BARS, "USD/JPY.SIM-1-MINUTE-MID-EXTERNAL bars"),
    ],
)
def test_market_data_of_an_unknown_instrument_is_refused_and_can_be_retried(kind, what):
    # Quotes, trades and bars (external ones too) of an instrument the node does not have
    # would never come: refused like internally aggregated bars, nothing recorded.
    h = Harness()
    client_calls: list = []

    class RecordingDataClient:
        def subscribe(self, kind, key) -> None:
            client_calls.append((kind, key))

    h.engine.register_client(RecordingDataClient())
    unknown = default_fx_pair("USD/JPY", "SIM", price_precision=3)
    key = unknown.id
    if kind == DataKind.BARS:
        key = BarType(unknown.id, BarSpecification(1, BarAggregation.MINUTE, PriceType.MID))  # EXTERNAL
    with pytest.raises(DataEngineError, match=f"cannot subscribe to {what}.*USD/JPY.SIM is not in the cache"):
        h.engine.execute(Subscribe(kind, key, "A", 0))
    assert h.engine.subscribed(kind) == [] and client_calls == []

    h.cache.add_instrument(unknown)
    h.engine.execute(Subscribe(kind, key, "A", 0))
    assert h.engine.subscribed(kind) == [key] and client_calls == [(kind, key)]


def test_aggregation_for_an_unknown_instrument_raises_and_can_be_retried():
    h = Harness()
    unknown = default_fx_pair("USD/JPY", "SIM", price_precision=3)
    bt = bar_type(unknown, PriceType.MID)
    with pytest.raises(DataEngineError, match="USD/JPY.SIM is not in the cache"):
        h.engine.execute(Subscribe(DataKind.BARS, bt, "A", 0))
    assert h.engine.subscribed(DataKind.BARS) == []
    assert h.clock.timer_names == []

    h.cache.add_instrument(unknown)
    received = h.subscribe_bars(bt, "A")
    h.feed(quote("150.000", "150.002", 1, 1, SEC, instrument=unknown))
    h.clock.advance_time(MIN)
    assert [str(b.close) for b in received] == ["150.0010"]


def test_an_aggregator_subscribed_before_start_is_armed_by_start_and_disarmed_by_stop():
    h = Harness(start=False)
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    assert h.clock.timer_names == []
    h.engine.start()
    assert len(h.clock.timer_names) == 1
    h.feed(quote("1.10000", "1.10002", 1, 1, SEC))
    h.clock.advance_time(MIN)
    assert len(received) == 1

    h.engine.stop()
    assert h.clock.timer_names == []
    h.feed(quote("1.10500", "1.10502", 1, 1, MIN + SEC))
    h.clock.advance_time(3 * MIN)
    assert len(received) == 1


def test_resume_rearms_the_aggregator_without_ticks_from_before_the_stop():
    h = Harness()
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    h.feed(quote("1.10000", "1.10002", 1, 1, SEC))
    h.engine.stop()
    h.feed(quote("1.30000", "1.30002", 1, 1, 2 * MIN))  # while stopped
    h.clock.advance_time(3 * MIN + 30 * SEC)
    h.engine.resume()

    h.feed(quote("1.10100", "1.10102", 4, 4, 3 * MIN + 40 * SEC))
    h.clock.advance_time(4 * MIN)
    assert len(received) == 1
    assert ohlcv(received[0]) == ("1.10100", "1.10100", "1.10100", "1.10100", "4")
    assert received[0].ts_event == 4 * MIN


def test_reset_drops_aggregators_and_subscriptions():
    h = Harness()
    received = h.subscribe_bars(bar_type(EURUSD, PriceType.BID))
    h.engine.stop()
    h.engine.reset()
    assert h.engine.subscribed(DataKind.BARS) == []
    h.engine.start()
    assert h.clock.timer_names == []
    h.feed(quote("1.10000", "1.10002", 1, 1, SEC))
    h.clock.advance_time(2 * MIN)
    assert received == []


@pytest.mark.parametrize("price_type", [PriceType.MID, PriceType.BID, PriceType.ASK])
def test_quotes_at_another_precision_than_the_instrument_are_refused(price_type):
    h = Harness()
    received = h.subscribe_bars(bar_type(EURUSD, price_type))
    coarse_price = quote("1.1000", "1.1001", 1, 1, SEC)  # 4 decimals for a 5-decimal instrument
    with pytest.raises(PrecisionError, match="price precision 4"):
        h.feed(coarse_price)
    fine_size = QuoteTick(
        EURUSD.id, Price.from_str("1.10000"), Price.from_str("1.10010"), Quantity.from_str("1.5"),
        Quantity.from_str("1.5"), 2 * SEC, 2 * SEC,
    )  # fmt: skip
    with pytest.raises(PrecisionError, match="size precision"):
        h.feed(fine_size)
    h.feed(quote("1.10000", "1.10002", 1, 1, 3 * SEC))
    h.clock.advance_time(MIN)
    assert len(received) == 1  # the refused ticks left no trace in the bar
    assert received[0].open == received[0].close and str(received[0].volume) == "1"


def test_trades_at_another_precision_than_the_instrument_are_refused():
    h = Harness()
    received = h.subscribe_bars(bar_type(ACME, PriceType.LAST))
    with pytest.raises(PrecisionError, match="price precision 3"):
        h.feed(trade("100.500", 1, SEC))
    h.clock.advance_time(MIN)
    assert received == []
