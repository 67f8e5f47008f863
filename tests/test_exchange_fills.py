"""SimulatedExchange: every matching rule against hand-computed prices, quantities and fees.

The exchange is wired to a real ExecutionEngine (with its Cache and MessageBus), so each event
really moves the node's order through its state machine: an event out of order would raise there.
"""

from __future__ import annotations

import pytest

from node.backtest.exchange import ExchangeConfigError, SimulatedExchange, UnknownInstrumentError
from node.backtest.matching import thin_book_slices
from node.cache.cache import Cache
from node.common.clock import TestClock
from node.execution.engine import ExecutionEngine
from node.execution.messages import CancelAllOrders, CancelOrder, SubmitOrder
from node.model.data import Bar, BarSpecification, BarType, QuoteTick, TradeTick
from node.model.enums import (
    AccountType,
    AggressorSide,
    BarAggregation,
    LiquiditySide,
    OmsType,
    OrderSide,
    OrderStatus,
    PriceType,
    TimeInForce,
)
from node.model.errors import InvalidDataError
from node.model.events import (
    AccountState,
    OrderCancelRejected,
    OrderFilled,
    OrderRejected,
)
from node.model.identifiers import ClientOrderId, InstrumentId, StrategyId, TradeId, TraderId, Venue
from node.model.instruments import CurrencyPair, Equity, default_fx_pair
from node.model.objects import USD, Currency, Money, Price, Quantity
from node.msgbus.bus import MessageBus
from node.trading.order_factory import OrderFactory

BUY, SELL = OrderSide.BUY, OrderSide.SELL
TRADER = TraderId("TRADER-001")
FX = default_fx_pair()  # EUR/USD.SIM: 5 decimals, unit size, fees 0.00002, margin 3%
FEE_PAIR = CurrencyPair(  # distinct maker and taker fees
    InstrumentId("GBP/USD", "SIM"),
    Currency.from_str("GBP"),
    USD,
    price_precision=5,
    size_precision=0,
    maker_fee="0.0001",
    taker_fee="0.0002",
    margin_init="0.03",
    margin_maint="0.03",
)
AAPL = Equity(
    InstrumentId("AAPL", "SIM"),
    USD,
    price_precision=2,
    size_precision=0,
    maker_fee="0.001",
    taker_fee="0.002",
)


class Venue1:
    """One SimulatedExchange + real ExecutionEngine; records every event the venue emits."""

    def __init__(
        self,
        instruments=(FX,),
        account_type=AccountType.MARGIN,
        balances=None,
        strategy="S-001",
        **kwargs,
    ) -> None:
        self.clock = TestClock(1_000)
        self.events: list = []
        self.exchange = SimulatedExchange(
            Venue("SIM"),
            OmsType.NETTING,
            account_type,
            balances or [Money(1_000_000, USD)],
            self.clock,
            base_currency=USD if account_type is AccountType.MARGIN else None,
            **kwargs,
        )
        for instrument in instruments:
            self.exchange.add_instrument(instrument)
        self.attach(strategy)
        self.exchange.initialize_account()

    def attach(self, strategy: str = "S-001") -> None:
        """A (new) node: Cache, MessageBus, ExecutionEngine, registered with the exchange's client."""
        self.bus = MessageBus("TRADER-001", self.clock)
        self.cache = Cache()
        self.engine = ExecutionEngine(self.bus, self.cache, self.clock)
        self.engine.register_client(self.exchange.exec_client)
        for instrument in self.exchange.instruments:
            self.cache.add_instrument(instrument)
        self.exchange.exec_client.bind(self._on_event)
        self.factory = OrderFactory(TRADER, StrategyId(strategy), self.clock)

    def _on_event(self, event) -> None:
        self.events.append(event)
        self.engine.process(event)

    # -- commands
    def submit(self, order):
        self.engine.execute(
            SubmitOrder(order.trader_id, order.strategy_id, order.instrument_id, 0, order=order)
        )
        return order

    def market(self, side, qty, instrument=FX, **kw):
        return self.submit(self.factory.market(instrument.id, side, instrument.make_qty(qty), **kw))

    def limit(self, side, qty, price, instrument=FX, **kw):
        return self.submit(
            self.factory.limit(
                instrument.id, side, instrument.make_qty(qty), instrument.make_price(price), **kw
            )
        )

    def stop(self, side, qty, trigger, instrument=FX, **kw):
        return self.submit(
            self.factory.stop_market(
                instrument.id, side, instrument.make_qty(qty), instrument.make_price(trigger), **kw
            )
        )

    def cancel(self, order, strategy=None):
        self.engine.execute(
            CancelOrder(
                TRADER,
                StrategyId(strategy or order.strategy_id),
                order.instrument_id,
                0,
                order.client_order_id,
            )
        )

    # -- data
    def quote(self, bid, ask, bid_size=1_000_000, ask_size=1_000_000, instrument=FX):
        self.clock.set_time(self.clock.timestamp_ns() + 1)
        ts = self.clock.timestamp_ns()
        self.exchange.process_quote_tick(
            QuoteTick(
                instrument.id,
                instrument.make_price(bid),
                instrument.make_price(ask),
                instrument.make_qty(bid_size),
                instrument.make_qty(ask_size),
                ts,
                ts,
            )
        )

    def trade(self, price, instrument=FX):
        self.clock.set_time(self.clock.timestamp_ns() + 1)
        ts = self.clock.timestamp_ns()
        tick = TradeTick(
            instrument.id,
            instrument.make_price(price),
            instrument.make_qty(1),
            AggressorSide.BUYER,
            TradeId("X-1"),
            ts,
            ts,
        )
        self.exchange.process_trade_tick(tick)

    def bar(self, o, h, low, c, instrument=FX):
        self.clock.set_time(self.clock.timestamp_ns() + 60_000_000_000)
        ts = self.clock.timestamp_ns()
        bar_type = BarType(instrument.id, BarSpecification(1, BarAggregation.MINUTE, PriceType.LAST))
        mk = instrument.make_price
        self.exchange.process_bar(
            Bar(bar_type, mk(o), mk(h), mk(low), mk(c), instrument.make_qty(100), ts, ts)
        )

    # -- inspection
    def of(self, *types) -> list:
        return [e for e in self.events if isinstance(e, types)]

    def fills(self, order=None) -> list[OrderFilled]:
        return [
            e for e in self.of(OrderFilled) if order is None or e.client_order_id == order.client_order_id
        ]

    def kinds(self, since: int = 0) -> list[str]:
        return [type(e).__name__ for e in self.events[since:]]

    def mark(self) -> int:
        return len(self.events)


def _px(fills) -> list[str]:
    return [str(f.last_px) for f in fills]


def _qty(fills) -> list[str]:
    return [str(f.last_qty) for f in fills]


# -- market orders -------------------------------------------------------------------------------


def test_market_buy_fills_at_ask_and_sell_at_bid_as_taker():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    buy = v.market(BUY, 100_000)
    sell = v.market(SELL, 100_000)
    (fb,) = v.fills(buy)
    (fs,) = v.fills(sell)
    assert (str(fb.last_px), str(fb.last_qty), fb.liquidity_side) == (
        "1.10010",
        "100000",
        LiquiditySide.TAKER,
    )
    assert (str(fs.last_px), fs.liquidity_side) == ("1.10000", LiquiditySide.TAKER)
    # 100,000 x 1.10010 x 0.00002 = 2.2002 -> 2.20; 100,000 x 1.10000 x 0.00002 = 2.20
    assert fb.commission == Money("2.20", USD) and fs.commission == Money("2.20", USD)
    assert buy.status is OrderStatus.FILLED and sell.status is OrderStatus.FILLED
    assert [type(e).__name__ for e in buy.events] == [
        "OrderInitialized",
        "OrderSubmitted",
        "OrderAccepted",
        "OrderFilled",
    ]


def test_market_order_walks_a_thin_book_one_increment_per_top_size_slice():
    v = Venue1()
    statuses = []
    v.bus.subscribe("events.order.*", lambda e: statuses.append(v.cache.order(e.client_order_id).status))
    v.quote("1.10000", "1.10010", bid_size=100_000, ask_size=100_000)
    buy = v.market(BUY, 250_000)
    fills = v.fills(buy)
    assert _px(fills) == ["1.10010", "1.10011", "1.10012"]
    assert _qty(fills) == ["100000", "100000", "50000"]
    assert {f.venue_order_id for f in fills} == {buy.venue_order_id}
    # 2.2002 -> 2.20, 2.20022 -> 2.20, 50,000 x 1.10012 x 0.00002 = 1.100120 -> 1.10
    assert [str(f.commission) for f in fills] == ["2.20 USD", "2.20 USD", "1.10 USD"]
    assert statuses == [
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    sell = v.market(SELL, 150_000)
    assert _px(v.fills(sell)) == ["1.10000", "1.09999"]
    assert _qty(v.fills(sell)) == ["100000", "50000"]


def test_market_order_without_any_market_data_is_rejected():
    v = Venue1()
    order = v.market(BUY, 1_000)
    (rej,) = v.of(OrderRejected)
    assert rej.reason.startswith("no market for EUR/USD.SIM")
    assert order.status is OrderStatus.REJECTED


def test_order_for_an_instrument_the_venue_does_not_trade_is_rejected():
    v = Venue1()
    order = v.market(BUY, 10, instrument=AAPL)  # AAPL not added to this venue
    assert order.status is OrderStatus.REJECTED
    assert "not traded on venue SIM" in v.of(OrderRejected)[0].reason


# -- limit orders --------------------------------------------------------------------------------


def test_marketable_limit_fills_at_once_at_the_ask_as_taker():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.limit(BUY, 100_000, "1.10050")
    (fill,) = v.fills(order)
    assert (str(fill.last_px), fill.liquidity_side) == ("1.10010", LiquiditySide.TAKER)
    assert order.status is OrderStatus.FILLED
    assert v.exchange.open_orders() == []


def test_marketable_limit_takes_only_levels_within_its_price_and_rests_the_rest():
    v = Venue1()
    v.quote("1.10000", "1.10010", ask_size=100_000)
    order = v.limit(BUY, 300_000, "1.10011")
    fills = v.fills(order)
    assert _px(fills) == ["1.10010", "1.10011"] and _qty(fills) == ["100000", "100000"]
    assert order.status is OrderStatus.PARTIALLY_FILLED
    (working,) = v.exchange.open_orders()
    assert working.client_order_id == order.client_order_id and working.leaves_raw == 100_000
    v.quote("1.10000", "1.10011", ask_size=100_000)
    last = v.fills(order)[-1]
    assert (str(last.last_px), str(last.last_qty), last.liquidity_side) == (
        "1.10011",
        "100000",
        LiquiditySide.MAKER,
    )
    assert order.status is OrderStatus.FILLED


def test_resting_limit_fills_at_its_price_as_maker_when_crossed():
    v = Venue1(instruments=(FEE_PAIR,))
    v.quote("1.24990", "1.25010", instrument=FEE_PAIR)
    order = v.limit(BUY, 100_000, "1.24990", instrument=FEE_PAIR)
    assert order.status is OrderStatus.ACCEPTED and v.fills() == []
    v.quote("1.24980", "1.24995", instrument=FEE_PAIR)  # ask still above the limit
    assert v.fills() == []
    v.quote("1.24970", "1.24980", instrument=FEE_PAIR)  # ask through the limit
    (fill,) = v.fills(order)
    assert (str(fill.last_px), fill.liquidity_side) == ("1.24990", LiquiditySide.MAKER)
    # maker: 100,000 x 1.24990 x 0.0001 = 12.499 -> 12.50
    assert fill.commission == Money("12.50", USD)


def test_resting_sell_limit_fills_when_the_bid_reaches_it():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.limit(SELL, 100_000, "1.10050")
    v.quote("1.10049", "1.10059")
    assert v.fills() == []
    v.quote("1.10050", "1.10060")
    (fill,) = v.fills(order)
    assert (str(fill.last_px), fill.liquidity_side) == ("1.10050", LiquiditySide.MAKER)


def test_maker_and_taker_fee_amounts_differ():
    v = Venue1(instruments=(FEE_PAIR,))
    v.quote("1.24990", "1.25010", instrument=FEE_PAIR)
    taker = v.market(BUY, 100_000, instrument=FEE_PAIR)
    maker = v.limit(SELL, 100_000, "1.25020", instrument=FEE_PAIR)
    v.quote("1.25020", "1.25030", instrument=FEE_PAIR)
    # taker: 100,000 x 1.25010 x 0.0002 = 25.002 -> 25.00; maker: 100,000 x 1.25020 x 0.0001 = 12.502 -> 12.50
    assert v.fills(taker)[0].commission == Money("25.00", USD)
    assert v.fills(maker)[0].commission == Money("12.50", USD)
    assert v.fills(maker)[0].liquidity_side is LiquiditySide.MAKER


def test_post_only_limit_that_would_take_is_rejected_and_one_that_would_not_rests():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    taking = v.limit(BUY, 100_000, "1.10010", post_only=True)
    assert taking.status is OrderStatus.REJECTED
    assert (
        v.of(OrderRejected)[0].reason == "post-only buy limit at 1.10010 would take liquidity (ask 1.10010)"
    )
    resting = v.limit(BUY, 100_000, "1.10005", post_only=True)
    assert resting.status is OrderStatus.ACCEPTED and v.fills() == []


def test_ioc_limit_not_fillable_is_canceled_right_after_acceptance():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    start = v.mark()
    order = v.limit(BUY, 100_000, "1.09000", time_in_force=TimeInForce.IOC)
    assert v.kinds(start) == ["OrderAccepted", "OrderCanceled"]
    assert order.status is OrderStatus.CANCELED and v.exchange.open_orders() == []


def test_ioc_fills_what_it_can_and_cancels_the_rest_fok_fills_nothing():
    v = Venue1()
    v.quote("1.10000", "1.10010", ask_size=100_000)
    ioc = v.limit(BUY, 150_000, "1.10010", time_in_force=TimeInForce.IOC)
    assert _qty(v.fills(ioc)) == ["100000"]
    assert ioc.status is OrderStatus.CANCELED and str(ioc.filled_qty) == "100000"
    start = v.mark()
    fok = v.limit(BUY, 150_000, "1.10010", time_in_force=TimeInForce.FOK)
    assert v.kinds(start) == ["OrderAccepted", "OrderCanceled"]
    assert fok.status is OrderStatus.CANCELED


# -- stop orders ---------------------------------------------------------------------------------


def test_stop_buy_triggers_when_the_ask_reaches_it_and_fills_at_the_ask():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.stop(BUY, 100_000, "1.10050")
    assert order.status is OrderStatus.ACCEPTED
    v.quote("1.10030", "1.10040")
    assert v.fills() == []
    start = v.mark()
    v.quote("1.10060", "1.10070")
    assert v.kinds(start) == ["OrderTriggered", "AccountState", "OrderFilled"]
    (fill,) = v.fills(order)
    assert (str(fill.last_px), fill.liquidity_side) == ("1.10070", LiquiditySide.TAKER)
    assert order.status is OrderStatus.FILLED


def test_stop_sell_triggers_on_the_bid():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.stop(SELL, 100_000, "1.09950")
    v.quote("1.09951", "1.09961")
    assert v.fills() == []
    v.quote("1.09940", "1.09950")
    assert _px(v.fills(order)) == ["1.09940"]


def test_stop_already_in_the_market_is_rejected():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.stop(BUY, 100_000, "1.10000")
    assert order.status is OrderStatus.REJECTED
    assert v.of(OrderRejected)[0].reason == "stop buy trigger 1.10000 is already in the market (ask 1.10010)"


def test_stop_in_the_market_triggers_at_once_when_allowed():
    v = Venue1(reject_stop_orders_in_market=False)
    v.quote("1.10000", "1.10010")
    start = v.mark()
    order = v.stop(BUY, 100_000, "1.10000")
    assert v.kinds(start) == ["OrderAccepted", "OrderTriggered", "AccountState", "OrderFilled"]
    assert _px(v.fills(order)) == ["1.10010"]


# -- bars ----------------------------------------------------------------------------------------


def test_market_order_on_bars_fills_at_the_next_bar_open_not_the_current_close():
    v = Venue1()
    v.bar("1.10000", "1.10100", "1.09900", "1.10050")
    order = v.market(BUY, 100_000)
    assert order.status is OrderStatus.ACCEPTED and v.fills() == []
    assert len(v.exchange.open_orders()) == 1
    v.bar("1.10200", "1.10300", "1.10100", "1.10250")
    (fill,) = v.fills(order)
    assert (str(fill.last_px), fill.liquidity_side) == ("1.10200", LiquiditySide.TAKER)
    assert v.exchange.open_orders() == []


def test_bar_execution_close_fills_at_the_latest_close_at_once():
    v = Venue1(bar_execution="close")
    v.bar("1.10000", "1.10100", "1.09900", "1.10050")
    order = v.market(BUY, 100_000)
    assert _px(v.fills(order)) == ["1.10050"]
    assert order.status is OrderStatus.FILLED


def test_queued_orders_fill_at_the_open_before_resting_orders_meet_the_range():
    v = Venue1()
    v.bar("1.10000", "1.10100", "1.09900", "1.10050")
    resting = v.limit(BUY, 100_000, "1.10000")  # below the close: rests
    queued = v.market(BUY, 100_000)
    v.bar("1.10200", "1.10300", "1.09950", "1.10100")
    fills = v.fills()
    assert [f.client_order_id for f in fills] == [queued.client_order_id, resting.client_order_id]
    assert _px(fills) == ["1.10200", "1.10000"]


def test_marketable_limit_on_bars_waits_for_the_next_open_and_fills_there_if_still_marketable():
    v = Venue1()
    v.bar("1.10000", "1.10100", "1.09900", "1.10050")
    order = v.limit(BUY, 100_000, "1.10100")  # marketable against the close, so queued
    assert v.fills() == []
    v.bar("1.10080", "1.10200", "1.10060", "1.10150")
    (fill,) = v.fills(order)
    assert (str(fill.last_px), fill.liquidity_side) == ("1.10080", LiquiditySide.TAKER)


def test_limit_gapped_through_at_the_open_fills_at_the_better_open():
    v = Venue1()
    v.bar("1.10000", "1.10100", "1.09900", "1.10050")
    buy = v.limit(BUY, 100_000, "1.09500")
    sell = v.limit(SELL, 100_000, "1.10500")
    v.bar("1.09000", "1.09200", "1.08800", "1.09100")  # gaps down through the buy limit
    assert _px(v.fills(buy)) == ["1.09000"]
    assert v.fills(buy)[0].liquidity_side is LiquiditySide.MAKER
    v.bar("1.11000", "1.11200", "1.10900", "1.11100")  # gaps up through the sell limit
    assert _px(v.fills(sell)) == ["1.11000"]


def test_limit_reached_inside_the_bar_fills_at_the_limit():
    v = Venue1()
    v.bar("1.10000", "1.10100", "1.09900", "1.10050")
    buy = v.limit(BUY, 100_000, "1.09500")
    v.bar("1.10000", "1.10100", "1.09600", "1.10000")  # low 1.09600 > limit: no fill
    assert v.fills() == []
    v.bar("1.10000", "1.10100", "1.09400", "1.10000")
    assert _px(v.fills(buy)) == ["1.09500"]


def test_stop_gapped_through_at_the_open_fills_at_the_open_else_at_the_trigger():
    v = Venue1()
    v.bar("1.10000", "1.10100", "1.09900", "1.10050")
    gap = v.stop(BUY, 100_000, "1.10500")
    start = v.mark()
    v.bar("1.11000", "1.11200", "1.10900", "1.11100")
    assert v.kinds(start) == ["OrderTriggered", "AccountState", "OrderFilled"]
    assert _px(v.fills(gap)) == ["1.11000"]
    inside = v.stop(BUY, 100_000, "1.11500")
    v.bar("1.11100", "1.11600", "1.11000", "1.11200")
    assert _px(v.fills(inside)) == ["1.11500"]
    sell = v.stop(SELL, 100_000, "1.10500")
    v.bar("1.10000", "1.10100", "1.09900", "1.10000")
    assert _px(v.fills(sell)) == ["1.10000"]


def test_bars_do_not_drive_fills_for_an_instrument_that_has_quotes():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.limit(BUY, 100_000, "1.09500")
    v.bar("1.09000", "1.09200", "1.08800", "1.09100")
    assert v.fills() == [] and order.status is OrderStatus.ACCEPTED


# -- trade ticks ---------------------------------------------------------------------------------


def test_trade_ticks_price_market_orders_and_match_resting_orders():
    v = Venue1()
    v.trade("1.10020")
    market = v.market(BUY, 100_000)
    assert _px(v.fills(market)) == ["1.10020"]
    limit = v.limit(BUY, 100_000, "1.10000")
    v.trade("1.10001")
    assert v.fills(limit) == []
    v.trade("1.09990")
    (fill,) = v.fills(limit)
    assert (str(fill.last_px), fill.liquidity_side) == ("1.10000", LiquiditySide.MAKER)


# -- balance checks ------------------------------------------------------------------------------


def test_cash_account_rejects_a_buy_it_cannot_pay_for_and_a_sell_of_shares_it_does_not_hold():
    v = Venue1(instruments=(AAPL,), account_type=AccountType.CASH, balances=[Money(1_000, USD)])
    v.quote("149.90", "150.00", instrument=AAPL)
    buy = v.market(BUY, 10, instrument=AAPL)
    sell = v.market(SELL, 1, instrument=AAPL)
    # 10 x 150.00 = 1500.00 notional + 0.2% taker = 3.00
    assert [r.reason for r in v.of(OrderRejected)] == [
        "insufficient balance: requires 1503.00 USD, free 1000.00 USD",
        "insufficient balance: requires 1 AAPL.SIM, free 0 AAPL.SIM",
    ]
    assert buy.status is OrderStatus.REJECTED and sell.status is OrderStatus.REJECTED


def test_margin_account_rejects_an_order_whose_initial_margin_it_cannot_cover():
    v = Venue1(balances=[Money(1_000, USD)])
    v.quote("1.10000", "1.10010")
    order = v.market(BUY, 100_000)
    # 100,000 x 1.10010 = 110,010 notional: 3% = 3300.30 margin + 2.20 taker commission
    assert v.of(OrderRejected)[0].reason == "insufficient margin: requires 3302.50 USD, free 1000.00 USD"
    assert order.status is OrderStatus.REJECTED


def test_resting_orders_lock_funds_that_later_orders_cannot_use():
    v = Venue1(instruments=(AAPL,), account_type=AccountType.CASH, balances=[Money(2_000, USD)])
    v.quote("149.90", "150.00", instrument=AAPL)
    first = v.limit(BUY, 10, "140.00", instrument=AAPL)  # locks 1400.00 + 0.2% = 1402.80
    (state,) = [e for e in v.events[-2:] if isinstance(e, AccountState)]
    assert str(state.balances[0].locked) == "1402.80 USD" and str(state.balances[0].free) == "597.20 USD"
    second = v.limit(BUY, 10, "140.00", instrument=AAPL)
    assert first.status is OrderStatus.ACCEPTED and second.status is OrderStatus.REJECTED
    v.cancel(first)
    assert str(v.of(AccountState)[-1].balances[0].locked) == "0.00 USD"


def test_cash_stop_that_gaps_beyond_what_the_account_can_pay_is_canceled_by_the_venue():
    v = Venue1(instruments=(AAPL,), account_type=AccountType.CASH, balances=[Money(1_000, USD)])
    v.quote("99.90", "100.00", instrument=AAPL)
    order = v.stop(BUY, 9, "105.00", instrument=AAPL)  # 945.00 + 1.89 fits in 1000.00
    start = v.mark()
    v.quote("119.90", "120.00", instrument=AAPL)  # 1080.00 + 2.16 does not
    assert v.kinds(start) == ["OrderTriggered", "AccountState", "OrderCanceled"]
    assert order.status is OrderStatus.CANCELED and v.fills() == []


# -- ids, duplicates, cancels --------------------------------------------------------------------


def test_duplicate_client_order_id_is_rejected_after_a_node_restart():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    first = v.limit(BUY, 100_000, "1.09000")
    assert first.status is OrderStatus.ACCEPTED
    v.attach()  # the node restarts with an empty cache; the venue remembers
    retry = v.limit(BUY, 100_000, "1.09000")
    assert retry.client_order_id == first.client_order_id
    assert retry.status is OrderStatus.REJECTED
    assert (
        v.of(OrderRejected)[0].reason == "duplicate client order id O-S-001-1: venue SIM has already seen it"
    )
    assert len(v.exchange.open_orders()) == 1
    assert v.exchange.seen_client_order_ids() == [first.client_order_id]


def test_cancel_a_resting_order_then_cancel_rejects_with_reasons():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.limit(BUY, 100_000, "1.09000")
    start = v.mark()
    v.cancel(order)
    assert v.kinds(start) == ["AccountState", "OrderCanceled"]
    assert order.status is OrderStatus.CANCELED and v.exchange.open_orders() == []
    # The engine refuses any event for a closed order, so look at what the venue says directly.
    seen: list = []
    v.exchange.exec_client.bind(seen.append)
    v.exchange.cancel_order(CancelOrder(TRADER, order.strategy_id, FX.id, 0, order.client_order_id))
    v.exchange.cancel_order(CancelOrder(TRADER, order.strategy_id, FX.id, 0, ClientOrderId("O-S-001-99")))
    assert [type(e) for e in seen] == [OrderCancelRejected, OrderCancelRejected]
    assert seen[0].reason == "order O-S-001-1 is already canceled" and seen[0].venue_order_id == "SIM-1"
    assert seen[1].reason == "order O-S-001-99 is unknown to venue SIM"


def test_cancel_of_a_filled_order_is_rejected():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.market(BUY, 1_000)
    seen: list = []
    v.exchange.exec_client.bind(seen.append)
    v.exchange.cancel_order(CancelOrder(TRADER, order.strategy_id, FX.id, 0, order.client_order_id))
    assert seen[0].reason == "order O-S-001-1 is already filled"


def test_cancel_from_another_strategy_is_rejected_and_the_order_keeps_working():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    order = v.limit(BUY, 100_000, "1.09000")
    v.cancel(order, strategy="S-OTHER")
    (rej,) = v.of(OrderCancelRejected)
    assert rej.reason == "order O-S-001-1 belongs to strategy S-001, not S-OTHER"
    assert order.status is OrderStatus.ACCEPTED and len(v.exchange.open_orders()) == 1


def test_cancel_all_cancels_only_that_strategys_orders_on_that_instrument():
    v = Venue1(instruments=(FX, FEE_PAIR))
    v.quote("1.10000", "1.10010")
    v.quote("1.24990", "1.25010", instrument=FEE_PAIR)
    mine = [v.limit(BUY, 1_000, "1.09000"), v.stop(BUY, 1_000, "1.11000")]
    other_instrument = v.limit(BUY, 1_000, "1.20000", instrument=FEE_PAIR)
    other = OrderFactory(TRADER, StrategyId("S-002"), v.clock).limit(
        FX.id, BUY, FX.make_qty(1_000), FX.make_price("1.09000")
    )
    v.submit(other)
    v.engine.execute(CancelAllOrders(TRADER, StrategyId("S-001"), FX.id, 0))
    assert [o.status for o in mine] == [OrderStatus.CANCELED, OrderStatus.CANCELED]
    assert other.status is OrderStatus.ACCEPTED and other_instrument.status is OrderStatus.ACCEPTED
    assert [wo.client_order_id for wo in v.exchange.open_orders()] == [
        other.client_order_id,
        other_instrument.client_order_id,
    ]


def _scenario(v: Venue1) -> list[dict]:
    v.quote("1.10000", "1.10010", ask_size=100_000)
    v.market(BUY, 150_000)
    v.limit(SELL, 50_000, "1.10100")
    v.stop(SELL, 100_000, "1.09900")
    v.quote("1.10100", "1.10110")
    v.quote("1.09800", "1.09810")
    return [e.to_dict() for e in v.events]


def test_ids_are_deterministic_counters_and_reset_restarts_them():
    first = _scenario(Venue1())
    assert first == _scenario(Venue1())
    fills = [e for e in first if e["type"] == "OrderFilled"]
    assert [f["trade_id"] for f in fills] == ["SIM-T-1", "SIM-T-2", "SIM-T-3", "SIM-T-4"]
    assert [f["venue_order_id"] for f in fills] == ["SIM-1", "SIM-1", "SIM-2", "SIM-3"]
    v = Venue1()
    _scenario(v)
    v.exchange.reset()
    v.attach()
    v.events.clear()
    v.exchange.initialize_account()
    again = _scenario(v)  # time has moved on: compare everything but the timestamps
    strip = [{k: x for k, x in e.items() if not k.startswith("ts_")} for e in first]
    assert [{k: x for k, x in e.items() if not k.startswith("ts_")} for e in again] == strip


# -- re-entrancy ---------------------------------------------------------------------------------


def test_orders_submitted_from_a_fill_handler_keep_every_orders_events_in_order():
    v = Venue1()
    v.quote("1.10000", "1.10010", ask_size=100_000)
    submitted: list = []
    armed = [True]

    def on_order_event(event):
        if isinstance(event, OrderFilled) and armed[0]:
            armed[0] = False
            submitted.append(v.market(SELL, 10_000))

    v.bus.subscribe("events.order.*", on_order_event)
    first = v.market(BUY, 150_000)
    nested = submitted[0]
    order_events = [e for e in v.events if not isinstance(e, AccountState)]
    for order in (first, nested):
        kinds = [type(e).__name__ for e in order_events if e.client_order_id == order.client_order_id]
        assert kinds[0] == "OrderAccepted" and set(kinds[1:]) == {"OrderFilled"}
    assert first.status is OrderStatus.FILLED and nested.status is OrderStatus.FILLED
    trade_ids = [e.trade_id for e in v.of(OrderFilled)]
    assert trade_ids == ["SIM-T-1", "SIM-T-2", "SIM-T-3"]  # the nested fill came between the slices
    assert [e.client_order_id for e in v.of(OrderFilled)] == [
        first.client_order_id,
        nested.client_order_id,
        first.client_order_id,
    ]


def test_an_order_canceled_by_a_handler_during_matching_is_not_filled_afterwards():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    a = v.limit(BUY, 1_000, "1.09000")
    b = v.limit(BUY, 1_000, "1.09000")

    def on_order_event(event):
        if isinstance(event, OrderFilled) and event.client_order_id == a.client_order_id:
            v.cancel(b)

    v.bus.subscribe("events.order.*", on_order_event)
    v.quote("1.08900", "1.08950")
    assert a.status is OrderStatus.FILLED and b.status is OrderStatus.CANCELED
    assert v.fills(b) == []


# -- data path -----------------------------------------------------------------------------------


def test_quotes_with_no_working_orders_emit_nothing():
    v = Venue1()
    start = v.mark()
    for i in range(100):
        v.quote(f"1.1{i:04d}", f"1.1{i + 1:04d}")
    assert v.mark() == start


def test_market_data_for_an_unknown_instrument_raises():
    v = Venue1()
    with pytest.raises(UnknownInstrumentError, match="AAPL.SIM"):
        v.quote("1.00", "1.01", instrument=AAPL)


def test_market_data_at_another_precision_than_the_instrument_raises_when_orders_work():
    v = Venue1()
    v.quote("1.10000", "1.10010")
    v.limit(BUY, 1_000, "1.09000")
    bad = QuoteTick(FX.id, Price("1.1", 1), Price("1.2", 1), Quantity(1, 0), Quantity(1, 0), 2_000, 2_000)
    with pytest.raises(InvalidDataError, match="precision"):
        v.exchange.process_quote_tick(bad)


def test_invalid_bar_execution_is_refused():
    with pytest.raises(ExchangeConfigError, match="bar_execution"):
        Venue1(bar_execution="previous_close")


# -- pure matching helpers -----------------------------------------------------------------------


def test_thin_book_slices_respect_a_limit_a_level_cap_and_unknown_depth():
    assert thin_book_slices(250, 100, 1000, 1, True) == [(100, 1000), (100, 1001), (50, 1002)]
    assert thin_book_slices(250, 100, 1000, 5, False) == [(100, 1000), (100, 995), (50, 990)]
    assert thin_book_slices(250, 100, 1000, 1, True, limit_raw=1001) == [(100, 1000), (100, 1001)]
    assert thin_book_slices(250, 0, 1000, 1, True) == [(250, 1000)]  # zero size: depth unknown
    assert thin_book_slices(10, 1, 1000, 1, True, max_levels=3) == [(1, 1000), (1, 1001), (8, 1002)]


def test_two_closes_queued_for_the_next_open_do_not_flip_the_position():
    """Reduce-only at the venue: the second queued close finds the position gone and is canceled."""
    from node.backtest.engine import BacktestEngine
    from node.model.data import BarType
    from node.model.enums import OrderSide
    from node.model.instruments import default_fx_pair
    from node.model.objects import Money
    from node.model.objects import Quantity as Qty
    from node.persistence.generators import random_walk_bars
    from node.trading.strategy import Strategy

    instrument = default_fx_pair()
    bar_type = BarType.from_str("EUR/USD.SIM-1-MINUTE-MID-EXTERNAL")

    class DoubleClose(Strategy):
        def on_start(self):
            self.subscribe_bars(bar_type)
            self.bars = 0

        def on_bar(self, bar):
            self.bars += 1
            if self.bars == 1:
                self.submit_order(self.order_factory.market(instrument.id, OrderSide.BUY, Qty(1000, 0)))
            elif self.bars == 2:
                position = self.cache.positions_open(instrument.id)[0]
                self.close_position(position)
                self.close_position(position)  # both queued for the next open: the race

    engine = BacktestEngine()
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)])
    engine.add_instrument(instrument)
    engine.add_data(random_walk_bars(bar_type, instrument, 5))
    engine.add_strategy(DoubleClose())
    engine.run()
    statuses = [o.status.name for o in engine.cache.orders()]
    assert statuses == ["FILLED", "FILLED", "CANCELED"]
    canceled = engine.cache.orders()[2].events[-1]
    assert "reduce-only" in canceled.reason
    assert engine.cache.positions_open() == []
    assert len(engine.cache.positions()) == 1
    engine.dispose()
