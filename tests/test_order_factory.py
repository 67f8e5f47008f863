"""OrderFactory: deterministic sequential ids, clock timestamps, the right order types."""

from __future__ import annotations

import pytest

from node.model.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from node.model.events import OrderInitialized
from node.model.identifiers import ClientOrderId, InstrumentId, StrategyId, TraderId
from node.model.objects import Price, Quantity
from node.model.orders import InvalidOrderError, LimitOrder, MarketOrder, StopMarketOrder
from node.trading.order_factory import InvalidOrderCountError, OrderFactory

INSTRUMENT = InstrumentId.from_str("EUR/USD.SIM")
QTY = Quantity(100, 0)


class FakeClock:
    """A clock that returns whatever time the test set."""

    def __init__(self, now: int = 1_000) -> None:
        self.now = now

    def timestamp_ns(self) -> int:
        return self.now


def factory(initial_count: int = 0, clock: FakeClock | None = None) -> OrderFactory:
    return OrderFactory(TraderId("TRADER-001"), StrategyId("EMA-001"), clock or FakeClock(), initial_count)


def test_ids_are_sequential_from_one():
    f = factory()
    assert f.count == 0
    ids = [f.market(INSTRUMENT, OrderSide.BUY, QTY).client_order_id for _ in range(3)]
    assert ids == [ClientOrderId("O-EMA-001-1"), ClientOrderId("O-EMA-001-2"), ClientOrderId("O-EMA-001-3")]
    assert f.count == 3


def test_ids_are_the_same_on_every_run():
    def run() -> list[str]:
        f = factory()
        return [
            str(f.market(INSTRUMENT, OrderSide.BUY, QTY).client_order_id),
            str(f.limit(INSTRUMENT, OrderSide.SELL, QTY, Price.from_str("1.10000")).client_order_id),
            str(f.stop_market(INSTRUMENT, OrderSide.SELL, QTY, Price.from_str("1.09000")).client_order_id),
        ]

    assert run() == run() == ["O-EMA-001-1", "O-EMA-001-2", "O-EMA-001-3"]


def test_initial_count_is_respected():
    f = factory(initial_count=41)
    assert f.count == 41
    assert f.next_client_order_id() == ClientOrderId("O-EMA-001-42")
    assert f.market(INSTRUMENT, OrderSide.BUY, QTY).client_order_id == ClientOrderId("O-EMA-001-42")
    assert f.count == 42


def test_set_count_and_reset():
    f = factory()
    f.market(INSTRUMENT, OrderSide.BUY, QTY)
    f.set_count(10)
    assert f.market(INSTRUMENT, OrderSide.BUY, QTY).client_order_id == ClientOrderId("O-EMA-001-11")
    f.reset()
    assert f.count == 0
    assert f.market(INSTRUMENT, OrderSide.BUY, QTY).client_order_id == ClientOrderId("O-EMA-001-1")


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_counts_are_refused(bad):
    with pytest.raises(InvalidOrderCountError):
        factory(initial_count=bad)
    with pytest.raises(InvalidOrderCountError):
        factory().set_count(bad)


def test_refused_order_does_not_use_an_id():
    f = factory()
    with pytest.raises(InvalidOrderError):
        f.market(INSTRUMENT, OrderSide.BUY, Quantity(0, 0))
    assert f.count == 0
    assert f.market(INSTRUMENT, OrderSide.BUY, QTY).client_order_id == ClientOrderId("O-EMA-001-1")


def test_orders_carry_their_initialized_event_with_clock_time():
    clock = FakeClock(5_000)
    f = factory(clock=clock)
    market = f.market(INSTRUMENT, OrderSide.BUY, QTY, time_in_force=TimeInForce.IOC, reduce_only=True)
    clock.now = 6_000
    limit = f.limit(INSTRUMENT, OrderSide.SELL, QTY, Price.from_str("1.10000"), post_only=True)
    clock.now = 7_000
    stop = f.stop_market(INSTRUMENT, OrderSide.SELL, QTY, Price.from_str("1.09000"))

    assert type(market) is MarketOrder and type(limit) is LimitOrder and type(stop) is StopMarketOrder
    for order, ts in ((market, 5_000), (limit, 6_000), (stop, 7_000)):
        init = order.events[0]
        assert type(init) is OrderInitialized
        assert (init.ts_event, init.ts_init, order.ts_init) == (ts, ts, ts)
        assert order.status is OrderStatus.INITIALIZED
        assert order.trader_id == TraderId("TRADER-001")
        assert order.strategy_id == StrategyId("EMA-001")
        assert order.instrument_id == INSTRUMENT
        assert order.quantity == QTY

    assert market.order_type is OrderType.MARKET
    assert market.time_in_force is TimeInForce.IOC and market.reduce_only
    assert market.price is None and market.trigger_price is None
    assert limit.order_type is OrderType.LIMIT
    assert limit.price == Price.from_str("1.10000") and limit.post_only and not limit.reduce_only
    assert limit.time_in_force is TimeInForce.GTC
    assert stop.order_type is OrderType.STOP_MARKET
    assert stop.trigger_price == Price.from_str("1.09000") and stop.price is None
