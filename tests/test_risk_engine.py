"""RiskEngine pre-trade checks, run in a real Kernel behind a recording venue client.

Every refusal must come back to the strategy as ``OrderDenied`` with a reason naming the limit,
and must never reach the venue; orders within limits must reach it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from node.common.clock import TestClock
from node.model.data import QuoteTick
from node.model.enums import OrderSide, OrderStatus, TradingState
from node.model.events import OrderDenied
from node.model.identifiers import InstrumentId
from node.model.instruments import CurrencyPair
from node.model.objects import CURRENCIES, USD, Money, Price, Quantity
from node.risk.engine import RiskConfig, TradingStateChanged
from node.system.kernel import Environment, Kernel, KernelConfig
from node.trading.strategy import Strategy
from tests.venue_support import RecordingVenue

SEC = 1_000_000_000
EURUSD = CurrencyPair(
    InstrumentId.from_str("EUR/USD.SIM"),
    CURRENCIES["EUR"],
    USD,
    price_precision=5,
    size_precision=0,
    max_quantity=Quantity(1_000_000, 0),
)
BUY, SELL = OrderSide.BUY, OrderSide.SELL


class RecordingStrategy(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.denied: list[OrderDenied] = []

    def on_order_denied(self, event) -> None:
        self.denied.append(event)


class Setup:
    def __init__(self, **risk) -> None:
        self.clock = TestClock(0)
        self.kernel = Kernel(Environment.BACKTEST, self.clock, KernelConfig(risk=RiskConfig(**risk)))
        self.kernel.cache.add_instrument(EURUSD)
        self.client = RecordingVenue()
        self.kernel.exec_engine.register_client(self.client)
        self.strategy = RecordingStrategy()
        self.kernel.add_strategy(self.strategy)
        self.kernel.start()
        self.risk = self.kernel.risk_engine

    def quote(self, bid: str, ask: str) -> None:
        ts = self.clock.timestamp_ns()
        self.kernel.data_engine.process(
            QuoteTick(
                EURUSD.id, Price.from_str(bid), Price.from_str(ask), Quantity(1, 0), Quantity(1, 0), ts, ts
            )
        )

    def market(self, side: OrderSide, qty, submit: bool = True):
        order = self.strategy.order_factory.market(EURUSD.id, side, _qty(qty))
        if submit:
            self.strategy.submit_order(order)
        return order

    def limit(self, side: OrderSide, qty, px: str, submit: bool = True):
        order = self.strategy.order_factory.limit(EURUSD.id, side, _qty(qty), Price.from_str(px))
        if submit:
            self.strategy.submit_order(order)
        return order

    def passed(self, order) -> bool:
        return any(c.order is order for c in self.client.submitted)

    def assert_denied(self, order, *fragments: str) -> None:
        assert not self.passed(order), f"{order} reached the venue"
        assert order.status == OrderStatus.DENIED
        reasons = [e.reason for e in self.strategy.denied if e.client_order_id == order.client_order_id]
        assert len(reasons) == 1, reasons
        for fragment in fragments:
            assert fragment in reasons[0], f"{fragment!r} not in {reasons[0]!r}"

    def assert_passed(self, order) -> None:
        assert self.passed(order), f"{order} was held back: {[e.reason for e in self.strategy.denied]}"
        assert order.status == OrderStatus.SUBMITTED


def _qty(qty) -> Quantity:
    return qty if isinstance(qty, Quantity) else Quantity(qty, 0)


# -- quantity ---------------------------------------------------------------------------------------


def test_an_order_within_every_limit_reaches_the_venue():
    s = Setup()
    order = s.market(BUY, 100_000)
    s.assert_passed(order)
    assert s.strategy.denied == [] and s.risk.denied_count == 0


def test_instrument_max_quantity():
    s = Setup()
    s.assert_passed(s.market(BUY, 1_000_000))
    order = s.market(BUY, 1_000_001)
    s.assert_denied(order, "1000001", "instrument maximum 1000000")
    assert s.risk.denied_count == 1
    assert s.kernel.cache.orders_closed() == [order]


def test_configured_max_order_quantity():
    s = Setup(max_order_quantity={"EUR/USD.SIM": 500_000})
    s.assert_passed(s.market(SELL, 500_000))
    s.assert_denied(s.market(SELL, 500_001), "max_order_quantity 500000")


def test_unknown_instrument_is_denied():
    s = Setup()
    order = s.strategy.order_factory.market(InstrumentId.from_str("GBP/USD.SIM"), BUY, Quantity(1, 0))
    s.strategy.submit_order(order)
    s.assert_denied(order, "GBP/USD.SIM is not in the cache")


# -- notional -------------------------------------------------------------------------------------


def test_max_notional_uses_the_limit_price():
    s = Setup(max_notional_per_order={"EUR/USD.SIM": "110000"})
    s.assert_passed(s.limit(BUY, 100_000, "1.10000"))  # 110 000.00 exactly: allowed
    s.assert_denied(s.limit(BUY, 100_001, "1.10000"), "notional 110001.10", "max_notional_per_order 110000")


def test_max_notional_of_a_market_order_uses_the_side_it_would_fill_on():
    s = Setup(max_notional_per_order={"EUR/USD.SIM": "110000"})
    s.quote("1.09990", "1.10010")
    s.assert_denied(s.market(BUY, 100_000), "notional 110010.00")  # at the ask
    s.assert_passed(s.market(SELL, 100_000))  # at the bid: 109 990.00


# -- price band and precision ----------------------------------------------------------------------


def test_price_band_around_the_last_quote_mid():
    s = Setup(price_band="0.01")
    s.quote("1.09990", "1.10010")  # mid 1.10000, band +-0.011
    s.assert_passed(s.limit(BUY, 1, "1.11100"))
    s.assert_passed(s.limit(SELL, 1, "1.08900"))
    s.assert_denied(s.limit(SELL, 1, "1.11101"), "price 1.11101", "band", "1.1")
    s.assert_denied(s.limit(BUY, 1, "1.08899"), "band")


def test_price_band_applies_to_stop_triggers():
    s = Setup(price_band="0.01")
    s.quote("1.09990", "1.10010")
    order = s.strategy.order_factory.stop_market(EURUSD.id, SELL, Quantity(1, 0), Price.from_str("1.05000"))
    s.strategy.submit_order(order)
    s.assert_denied(order, "band")


def test_quantity_precision_mismatch():
    s = Setup()
    s.assert_denied(s.market(BUY, Quantity.from_str("100.0")), "quantity precision 1", "size precision 0")


def test_price_precision_mismatch():
    s = Setup()
    s.assert_denied(s.limit(BUY, 100, "1.1000"), "price precision 4", "price precision 5")


# -- trading state ---------------------------------------------------------------------------------


def test_halted_denies_submits_but_lets_cancels_through():
    s = Setup()
    states = []
    s.kernel.msgbus.subscribe("events.risk", states.append)
    working = s.limit(BUY, 1_000, "1.09000")
    s.client.accept(working)

    s.risk.set_trading_state(TradingState.HALTED)

    assert [(type(e), e.state) for e in states] == [(TradingStateChanged, TradingState.HALTED)]
    s.assert_denied(s.market(BUY, 1), "HALTED")
    s.assert_denied(s.market(SELL, 1), "HALTED")
    s.strategy.cancel_order(working)
    assert [c.client_order_id for c in s.client.canceled] == [working.client_order_id]

    s.risk.set_trading_state(TradingState.ACTIVE)
    s.assert_passed(s.market(BUY, 1))


def test_reducing_allows_only_orders_that_reduce_the_position():
    s = Setup()
    entry = s.market(BUY, 100_000)
    s.client.fill(entry, None, "1.10000")
    assert s.kernel.portfolio.net_position(EURUSD.id) == Decimal(100_000)

    s.risk.set_trading_state(TradingState.REDUCING)

    s.assert_passed(s.market(SELL, 50_000))
    s.assert_passed(s.market(SELL, 100_000))  # closing all of it is a reduction
    s.assert_denied(s.market(BUY, 10_000), "REDUCING")
    s.assert_denied(s.market(SELL, 100_001), "REDUCING")  # would flip to short


def test_reducing_with_no_position_denies_everything():
    s = Setup()
    s.risk.set_trading_state(TradingState.REDUCING)
    s.assert_denied(s.market(BUY, 1), "REDUCING")
    s.assert_denied(s.market(SELL, 1), "REDUCING")


# -- submit-rate throttle ----------------------------------------------------------------------------


def test_submit_rate_throttle_window():
    s = Setup(max_submit_rate=3, submit_rate_interval_s=1.0)
    first = [s.market(BUY, 1) for _ in range(3)]
    for order in first:
        s.assert_passed(order)
    s.assert_denied(s.market(BUY, 1), "submit rate limit: 3 orders per 1.0s")

    s.clock.advance_time(SEC - 1)  # still inside the window of the first three
    s.assert_denied(s.market(BUY, 1), "submit rate")

    s.clock.advance_time(SEC)  # the first three leave the window
    for _ in range(3):
        s.assert_passed(s.market(BUY, 1))
    s.assert_denied(s.market(BUY, 1), "submit rate")
    assert len(s.client.submitted) == 6


def test_denied_orders_do_not_use_up_the_rate():
    s = Setup(max_submit_rate=2, max_order_quantity={"EUR/USD.SIM": 10})
    for _ in range(5):
        s.assert_denied(s.market(BUY, 11), "max_order_quantity")
    s.assert_passed(s.market(BUY, 1))
    s.assert_passed(s.market(BUY, 1))


def test_a_rolling_window_counts_each_submit_from_its_own_time():
    s = Setup(max_submit_rate=2, submit_rate_interval_s=1.0)
    s.assert_passed(s.market(BUY, 1))  # t = 0
    s.clock.advance_time(SEC // 2)
    s.assert_passed(s.market(BUY, 1))  # t = 0.5 s
    s.clock.advance_time(SEC)
    s.assert_passed(s.market(BUY, 1))  # the t = 0 submit has left the window
    s.assert_denied(s.market(BUY, 1), "submit rate")  # t = 0.5 s and t = 1 s are still in it


# -- bypass -----------------------------------------------------------------------------------------


def test_bypass_skips_every_check():
    s = Setup(
        bypass=True,
        max_order_quantity={"EUR/USD.SIM": 1},
        price_band="0.0001",
        max_submit_rate=1,
    )
    s.quote("1.09990", "1.10010")
    s.risk.set_trading_state(TradingState.HALTED)
    orders = [s.market(BUY, 5_000_000), s.limit(SELL, 5, "2.00000"), s.market(BUY, Quantity.from_str("1.5"))]
    for order in orders:
        s.assert_passed(order)
    assert s.strategy.denied == []


def test_risk_engine_refuses_unknown_commands():
    s = Setup()
    with pytest.raises(TypeError, match="RiskEngine cannot handle str"):
        s.kernel.msgbus.send("RiskEngine.execute", "buy everything")


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="max_submit_rate"):
        RiskConfig(max_submit_rate=0)
    with pytest.raises(ValueError, match="price_band"):
        RiskConfig(price_band=-0.1)


def test_reduce_only_order_for_a_closed_position_is_denied_not_flipped():
    """A reduce-only close for a position that is already closed must not open an opposite one."""
    from node.backtest.engine import BacktestEngine, BacktestEngineConfig
    from node.model.enums import OmsType, OrderSide
    from node.model.instruments import default_fx_pair
    from node.model.objects import Quantity
    from node.persistence.generators import random_walk_quotes
    from node.trading.strategy import Strategy

    instrument = default_fx_pair()

    class DoubleClose(Strategy):
        def on_start(self):
            self.subscribe_quote_ticks(instrument.id)
            self.done = False

        def on_quote_tick(self, tick):
            if self.done:
                return
            self.done = True
            self.submit_order(self.order_factory.market(instrument.id, OrderSide.BUY, Quantity(1000, 0)))
            position = self.cache.positions_open(instrument.id)[0]
            self.close_position(position)
            assert position.is_closed
            # A second close built before the first one's fill was seen (e.g. by a slower venue):
            late = self.order_factory.market(
                instrument.id, OrderSide.SELL, Quantity(1000, 0), reduce_only=True
            )
            self.submit_order(late, position_id=position.id)

    engine = BacktestEngine(BacktestEngineConfig())
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)], oms_type=OmsType.HEDGING)
    engine.add_instrument(instrument)
    engine.add_data(random_walk_quotes(instrument, 10))
    engine.add_strategy(DoubleClose())
    engine.run()
    orders = engine.cache.orders()
    assert [o.status.name for o in orders] == ["FILLED", "FILLED", "DENIED"]
    assert "reduce-only" in orders[2].events[-1].reason
    assert engine.cache.positions_open() == []
    engine.dispose()
