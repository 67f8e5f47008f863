"""Cache: latest market data, bounded bar history, order/position/account indexes."""

from __future__ import annotations

import pytest

from node.cache.cache import Cache, CacheError
from node.model.account import Account
from node.model.data import Bar, BarSpecification, BarType, QuoteTick, TradeTick
from node.model.enums import (
    AccountType,
    AggregationSource,
    AggressorSide,
    BarAggregation,
    LiquiditySide,
    OrderSide,
    OrderStatus,
    PriceType,
)
from node.model.events import (
    AccountBalance,
    AccountState,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderSubmitted,
)
from node.model.identifiers import (
    AccountId,
    InstrumentId,
    PositionId,
    StrategyId,
    TradeId,
    TraderId,
    Venue,
    VenueOrderId,
)
from node.model.instruments import default_fx_pair
from node.model.objects import USD, Money, Price, Quantity
from node.model.position import Position
from node.trading.order_factory import OrderFactory

EURUSD = default_fx_pair("EUR/USD", "SIM")
GBPUSD = default_fx_pair("GBP/USD", "SIM")
AUDUSD_OTHER = default_fx_pair("AUD/USD", "OTHER")
TRADER = TraderId("TRADER-001")
ACCOUNT = AccountId("SIM-001")
MINUTE_MID = BarType(
    EURUSD.id, BarSpecification(1, BarAggregation.MINUTE, PriceType.MID), AggregationSource.INTERNAL
)


class Clock:
    def timestamp_ns(self) -> int:
        return 0


def factory(strategy: str = "S-001") -> OrderFactory:
    return OrderFactory(TRADER, StrategyId(strategy), Clock())


def quote(instrument, bid: str, ask: str, ts: int = 0) -> QuoteTick:
    return QuoteTick(
        instrument.id, Price.from_str(bid), Price.from_str(ask), Quantity(1, 0), Quantity(1, 0), ts, ts
    )


def trade(instrument, px: str, ts: int = 0) -> TradeTick:
    return TradeTick(
        instrument.id, Price.from_str(px), Quantity(5, 0), AggressorSide.BUYER, TradeId(f"T{ts}"), ts, ts
    )


def bar(close: str, ts: int) -> Bar:
    px = Price.from_str(close)
    return Bar(MINUTE_MID, px, px, px, px, Quantity(10, 0), ts, ts)


def fill(order, px: str, trade_id: str, position_id: PositionId) -> OrderFilled:
    return OrderFilled(
        trader_id=order.trader_id,
        strategy_id=order.strategy_id,
        instrument_id=order.instrument_id,
        client_order_id=order.client_order_id,
        venue_order_id=VenueOrderId(f"V-{order.client_order_id}"),
        account_id=ACCOUNT,
        trade_id=TradeId(trade_id),
        position_id=position_id,
        order_side=order.side,
        order_type=order.order_type,
        last_qty=order.quantity,
        last_px=Price.from_str(px),
        currency=USD,
        commission=Money(0, USD),
        liquidity_side=LiquiditySide.TAKER,
        ts_event=1,
        ts_init=1,
    )


def submitted(order) -> OrderSubmitted:
    return OrderSubmitted(
        trader_id=order.trader_id,
        strategy_id=order.strategy_id,
        instrument_id=order.instrument_id,
        client_order_id=order.client_order_id,
        account_id=ACCOUNT,
        ts_event=1,
        ts_init=1,
    )


def accepted(order) -> OrderAccepted:
    return OrderAccepted(
        trader_id=order.trader_id,
        strategy_id=order.strategy_id,
        instrument_id=order.instrument_id,
        client_order_id=order.client_order_id,
        venue_order_id=VenueOrderId(f"V-{order.client_order_id}"),
        account_id=ACCOUNT,
        ts_event=1,
        ts_init=1,
    )


def account_state(total: str) -> AccountState:
    money = Money(total, USD)
    return AccountState(
        account_id=ACCOUNT,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        balances=(AccountBalance(total=money, locked=Money(0, USD), free=money),),
        is_reported=True,
        ts_event=0,
        ts_init=0,
    )


# -- instruments and market data --------------------------------------------------------------------


def test_instruments_by_id_and_venue():
    cache = Cache()
    for instrument in (EURUSD, GBPUSD, AUDUSD_OTHER):
        cache.add_instrument(instrument)
    assert cache.instrument(EURUSD.id) is EURUSD
    assert cache.instrument(InstrumentId.from_str("USD/JPY.SIM")) is None
    assert cache.instruments(Venue("SIM")) == [EURUSD, GBPUSD]
    assert cache.instruments(Venue("OTHER")) == [AUDUSD_OTHER]
    assert len(cache.instruments()) == 3


def test_latest_quote_and_trade_replace_previous_per_instrument():
    cache = Cache()
    cache.add_quote_tick(quote(EURUSD, "1.10000", "1.10002", ts=1))
    cache.add_quote_tick(quote(GBPUSD, "1.25000", "1.25002", ts=1))
    latest = quote(EURUSD, "1.10010", "1.10012", ts=2)
    cache.add_quote_tick(latest)
    cache.add_trade_tick(trade(EURUSD, "1.10005", ts=3))
    assert cache.quote_tick(EURUSD.id) is latest
    assert cache.quote_tick(GBPUSD.id).bid_price == Price.from_str("1.25000")
    assert cache.trade_tick(EURUSD.id).price == Price.from_str("1.10005")
    assert cache.trade_tick(GBPUSD.id) is None


def test_price_prefers_last_trade_then_quote_mid():
    cache = Cache()
    assert cache.price(EURUSD.id) is None
    cache.add_quote_tick(quote(EURUSD, "1.10000", "1.10003"))
    mid = cache.price(EURUSD.id)
    assert mid == Price.from_str("1.100015") and mid.precision == 6  # exact mid, one more decimal
    assert cache.price(EURUSD.id, PriceType.BID) == Price.from_str("1.10000")
    assert cache.price(EURUSD.id, PriceType.ASK) == Price.from_str("1.10003")
    assert cache.price(EURUSD.id, PriceType.LAST) is None  # no trade yet: no last price
    cache.add_trade_tick(trade(EURUSD, "1.09990"))
    assert cache.price(EURUSD.id) == Price.from_str("1.09990")
    assert cache.price(EURUSD.id, PriceType.LAST) == Price.from_str("1.09990")
    assert cache.price(EURUSD.id, PriceType.MID) == Price.from_str("1.100015")


def test_bars_newest_first_with_bounded_history():
    cache = Cache(bar_capacity=3)
    for i, close in enumerate(["1.10000", "1.10001", "1.10002", "1.10003"]):
        cache.add_bar(bar(close, ts=(i + 1) * 60))
    assert cache.bar_count(MINUTE_MID) == 3  # the oldest bar fell out
    assert [b.close for b in cache.bars(MINUTE_MID)] == [
        Price.from_str(p) for p in ("1.10003", "1.10002", "1.10001")
    ]
    assert cache.bar(MINUTE_MID).ts_event == 240
    assert cache.bar(MINUTE_MID, 2).ts_event == 120
    assert cache.bar(MINUTE_MID, 3) is None
    other = BarType(GBPUSD.id, MINUTE_MID.spec, AggregationSource.INTERNAL)
    assert cache.bar(other) is None and cache.bars(other) == [] and cache.bar_count(other) == 0


def test_bar_capacity_must_be_positive():
    with pytest.raises(ValueError, match="bar_capacity"):
        Cache(bar_capacity=0)


# -- orders -------------------------------------------------------------------------------------


def test_adding_an_order_id_twice_raises():
    cache = Cache()
    order = factory().market(EURUSD.id, OrderSide.BUY, Quantity(100, 0))
    cache.add_order(order)
    with pytest.raises(CacheError, match=str(order.client_order_id)):
        cache.add_order(order)
    assert cache.orders() == [order]


def test_open_order_index_follows_status():
    cache = Cache()
    order = factory().limit(EURUSD.id, OrderSide.BUY, Quantity(100, 0), Price.from_str("1.10000"))
    cache.add_order(order)
    assert cache.order_exists(order.client_order_id)
    assert cache.orders_open() == [] and cache.orders_open_count() == 0  # INITIALIZED: not yet working

    order.apply(submitted(order))
    cache.update_order(order)
    assert cache.orders_open() == [order]  # in flight counts as open

    order.apply(accepted(order))
    cache.update_order(order)
    assert cache.orders_open() == [order] and cache.orders_closed() == []

    order.apply(
        OrderCanceled(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            ts_event=2,
            ts_init=2,
        )
    )
    cache.update_order(order)
    assert order.status == OrderStatus.CANCELED
    assert cache.orders_open() == [] and cache.orders_open_count() == 0
    assert cache.orders_closed() == [order]


def test_denied_order_is_closed_not_open():
    cache = Cache()
    order = factory().market(EURUSD.id, OrderSide.BUY, Quantity(100, 0))
    cache.add_order(order)
    order.apply(
        OrderDenied(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            reason="test",
            ts_event=1,
            ts_init=1,
        )
    )
    cache.update_order(order)
    assert cache.orders_open() == [] and cache.orders_closed() == [order]


def test_orders_filter_by_instrument_and_strategy():
    cache = Cache()
    a, b = factory("A-001"), factory("B-001")
    a_eur = a.market(EURUSD.id, OrderSide.BUY, Quantity(1, 0))
    a_gbp = a.market(GBPUSD.id, OrderSide.BUY, Quantity(1, 0))
    b_eur = b.market(EURUSD.id, OrderSide.SELL, Quantity(1, 0))
    for order in (a_eur, a_gbp, b_eur):
        cache.add_order(order)
        order.apply(submitted(order))
        cache.update_order(order)
    assert cache.orders(instrument_id=EURUSD.id) == [a_eur, b_eur]
    assert cache.orders(strategy_id=StrategyId("A-001")) == [a_eur, a_gbp]
    assert cache.orders(EURUSD.id, StrategyId("B-001")) == [b_eur]
    assert cache.orders_open(GBPUSD.id) == [a_gbp]
    assert cache.orders_open(strategy_id=StrategyId("C-001")) == []


# -- positions ----------------------------------------------------------------------------------


def test_order_to_position_mapping_and_position_queries():
    cache = Cache()
    f = factory()
    entry = f.market(EURUSD.id, OrderSide.BUY, Quantity(100, 0))
    exit_ = f.market(EURUSD.id, OrderSide.SELL, Quantity(100, 0))
    other = f.market(GBPUSD.id, OrderSide.SELL, Quantity(10, 0))
    p1, p2 = PositionId("P-1"), PositionId("P-2")

    cache.add_order(entry)
    cache.add_order(exit_, position_id=p1)  # an order that names the position it closes
    cache.add_order(other)
    assert cache.position_id(exit_.client_order_id) == p1
    assert cache.position_id(entry.client_order_id) is None
    assert cache.position_for_order(exit_.client_order_id) is None  # mapped, position not yet known

    long_ = Position(EURUSD, fill(entry, "1.10000", "T1", p1))
    cache.add_position(long_)
    cache.add_position_id(entry.client_order_id, p1)
    short = Position(GBPUSD, fill(other, "1.25000", "T2", p2))
    cache.add_position(short)
    cache.add_position_id(other.client_order_id, p2)
    assert cache.position(p1) is long_
    assert cache.position_for_order(entry.client_order_id) is long_
    assert cache.position_for_order(exit_.client_order_id) is long_
    assert cache.positions_open() == [long_, short]
    assert cache.positions_open(EURUSD.id) == [long_]

    long_.apply(fill(exit_, "1.10010", "T3", p1))
    assert cache.positions_open() == [long_, short], "the open index changes only when told"
    cache.update_position(long_)
    assert cache.positions_open() == [short]
    assert cache.positions_closed() == [long_]
    assert cache.positions(strategy_id=StrategyId("S-001")) == [long_, short]
    assert cache.positions(strategy_id=StrategyId("X-001")) == []


# -- accounts and reset -------------------------------------------------------------------------


def test_account_by_id_and_by_venue():
    cache = Cache()
    account = Account(ACCOUNT, AccountType.MARGIN, USD)
    account.apply(account_state("1000.00"))
    cache.add_account(account)
    assert cache.account(ACCOUNT) is account
    assert cache.account_for_venue(Venue("SIM")) is account
    assert cache.account_for_venue(Venue("OTHER")) is None
    assert cache.accounts() == [account]


def test_reset_forgets_everything():
    cache = Cache()
    cache.add_instrument(EURUSD)
    cache.add_quote_tick(quote(EURUSD, "1.1", "1.2"))
    cache.add_trade_tick(trade(EURUSD, "1.15"))
    cache.add_bar(bar("1.10000", 60))
    order = factory().market(EURUSD.id, OrderSide.BUY, Quantity(1, 0))
    cache.add_order(order, position_id=PositionId("P-1"))
    cache.add_account(Account(ACCOUNT, AccountType.CASH, USD))

    cache.reset()

    assert cache.instrument(EURUSD.id) is None
    assert cache.quote_tick(EURUSD.id) is None and cache.trade_tick(EURUSD.id) is None
    assert cache.bar_count(MINUTE_MID) == 0
    assert cache.orders() == [] and cache.position_id(order.client_order_id) is None
    assert cache.accounts() == [] and cache.account_for_venue(Venue("SIM")) is None
    cache.add_order(order)  # the id is free again
    assert cache.order(order.client_order_id) is order
