"""ExecutionEngine: routing to venue clients, order events, NETTING/HEDGING positions, accounts.

Runs in a real Kernel; the only stand-in is the venue adapter (``RecordingVenue``), which
records the commands routed to it and reports the venue events the test constructs.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from node.common.clock import TestClock
from node.execution.engine import ExecutionEngineError
from node.model.enums import AccountType, OmsType, OrderSide, OrderStatus, PositionSide
from node.model.events import (
    AccountBalance,
    AccountState,
    OrderAccepted,
    OrderDenied,
    OrderFilled,
    OrderSubmitted,
    PositionChanged,
    PositionClosed,
    PositionOpened,
)
from node.model.identifiers import AccountId, PositionId, TradeId, Venue
from node.model.instruments import default_fx_pair
from node.model.objects import CURRENCIES, USD, Money, Price, Quantity
from node.model.orders import OverfillError
from node.system.kernel import Environment, Kernel, KernelConfig
from node.trading.strategy import Strategy, StrategyConfig
from tests.venue_support import RecordingVenue

EURUSD = default_fx_pair("EUR/USD", "SIM")  # price precision 5, size precision 0, USD
OTHER = default_fx_pair("EUR/USD", "OTHER")  # no client registered for venue OTHER
BUY, SELL = OrderSide.BUY, OrderSide.SELL
ACCOUNT = AccountId("SIM-001")


def _record(name: str):
    def hook(self, event) -> None:
        self.calls.append((name, event))

    return hook


class RecordingStrategy(Strategy):
    """Records which hook saw which event, in order."""

    def __init__(self, tag: str = "001") -> None:
        super().__init__(StrategyConfig(order_id_tag=tag))
        self.calls: list[tuple[str, object]] = []
        self.all_order_events: list = []
        self.all_position_events: list = []

    on_order_denied = _record("on_order_denied")
    on_order_submitted = _record("on_order_submitted")
    on_order_accepted = _record("on_order_accepted")
    on_order_filled = _record("on_order_filled")
    on_order_canceled = _record("on_order_canceled")
    on_position_opened = _record("on_position_opened")
    on_position_changed = _record("on_position_changed")
    on_position_closed = _record("on_position_closed")

    def on_order_event(self, event) -> None:
        self.all_order_events.append(event)

    def on_position_event(self, event) -> None:
        self.all_position_events.append(event)

    def buy(self, qty: int):
        return self._market(BUY, qty)

    def sell(self, qty: int):
        return self._market(SELL, qty)

    def _market(self, side, qty: int):
        order = self.order_factory.market(EURUSD.id, side, Quantity(qty, 0))
        self.submit_order(order)
        return order


class Setup:
    def __init__(self, oms_type: OmsType = OmsType.NETTING) -> None:
        self.clock = TestClock(0)
        self.kernel = Kernel(Environment.BACKTEST, self.clock, KernelConfig(oms_type=oms_type))
        self.cache = self.kernel.cache
        self.cache.add_instrument(EURUSD)
        self.cache.add_instrument(OTHER)
        self.client = RecordingVenue()
        self.kernel.exec_engine.register_client(self.client)
        self.strategy = RecordingStrategy()
        self.kernel.add_strategy(self.strategy)
        self.kernel.start()
        self.bus_events: list = []
        self.kernel.msgbus.subscribe("events.order.*", self.bus_events.append)
        self.kernel.msgbus.subscribe("events.position.*", self.bus_events.append)

    def hooks(self) -> list[str]:
        return [name for name, _ in self.strategy.calls]

    def position_events(self) -> list:
        return [e for name, e in self.strategy.calls if name.startswith("on_position")]


def pid(n: int, strategy: str = "RecordingStrategy-001") -> PositionId:
    return PositionId(f"EUR/USD.SIM-{strategy}-{n}")


# -- routing ----------------------------------------------------------------------------------------


def test_submit_publishes_order_submitted_then_routes_to_the_venue_client():
    s = Setup()
    order = s.strategy.buy(100_000)

    assert [type(e) for e in s.bus_events] == [OrderSubmitted]
    submitted = s.bus_events[0]
    assert submitted.client_order_id == order.client_order_id
    assert submitted.account_id == ACCOUNT
    assert [c.order for c in s.client.submitted] == [order]
    assert s.client.status_seen_at_submit == [OrderStatus.SUBMITTED]  # event applied before routing
    assert s.cache.orders_open() == [order]
    assert s.hooks() == ["on_order_submitted"]


def test_no_client_for_the_venue_denies_the_order():
    s = Setup()
    order = s.strategy.order_factory.market(OTHER.id, BUY, Quantity(1, 0))
    s.strategy.submit_order(order)

    assert s.client.submitted == []
    assert order.status == OrderStatus.DENIED
    assert s.hooks() == ["on_order_denied"]
    denied = s.strategy.calls[0][1]
    assert isinstance(denied, OrderDenied)
    assert "no execution client" in denied.reason and "OTHER" in denied.reason
    assert s.cache.orders_closed() == [order]


def test_cancels_are_routed_to_the_venue_client():
    s = Setup()
    order = s.strategy.order_factory.limit(EURUSD.id, BUY, Quantity(1, 0), Price.from_str("1.00000"))
    s.strategy.submit_order(order)
    s.client.accept(order)
    s.strategy.cancel_order(order)
    s.strategy.cancel_all_orders(EURUSD.id)
    assert [c.client_order_id for c in s.client.canceled] == [order.client_order_id]
    assert [c.instrument_id for c in s.client.canceled_all] == [EURUSD.id]


def test_registering_two_clients_for_one_venue_raises():
    s = Setup()
    with pytest.raises(ExecutionEngineError, match="already registered"):
        s.kernel.exec_engine.register_client(RecordingVenue())
    assert s.kernel.exec_engine.client(Venue("SIM")) is s.client


def test_an_event_for_an_order_never_submitted_raises():
    s = Setup()
    stranger = s.strategy.order_factory.market(EURUSD.id, BUY, Quantity(1, 0))  # never submitted
    with pytest.raises(ExecutionEngineError, match="unknown order"):
        s.client.accept(stranger)


def test_client_connects_on_start_and_resume_and_disconnects_on_stop():
    s = Setup()
    assert s.client.is_connected
    s.kernel.stop()
    assert not s.client.is_connected
    s.kernel.exec_engine.resume()
    assert s.client.is_connected


# -- NETTING --------------------------------------------------------------------------------------


def test_netting_open_increase_reduce_close():
    s = Setup()
    s.client.fill(s.strategy.buy(100_000), 100_000, "1.10000")
    s.client.fill(s.strategy.buy(50_000), 50_000, "1.10030")
    s.client.fill(s.strategy.sell(50_000), 50_000, "1.10100")
    s.client.fill(s.strategy.sell(100_000), 100_000, "1.10050")

    events = s.position_events()
    assert [type(e) for e in events] == [PositionOpened, PositionChanged, PositionChanged, PositionClosed]
    assert {e.position_id for e in events} == {pid(1)}
    opened, increased, reduced, closed = events
    assert opened.side == PositionSide.LONG and opened.quantity == Quantity(100_000, 0)
    assert increased.quantity == Quantity(150_000, 0)
    assert increased.avg_px_open == Decimal("1.10010")  # (1.10000*100k + 1.10030*50k) / 150k
    assert reduced.quantity == Quantity(100_000, 0)
    assert reduced.realized_pnl == Money("45.00", USD)  # (1.10100 - 1.10010) * 50k
    assert closed.side == PositionSide.FLAT
    assert closed.realized_pnl == Money("85.00", USD)  # + (1.10050 - 1.10010) * 100k

    position = s.cache.position(pid(1))
    assert position.is_closed
    assert s.cache.positions_open() == [] and s.cache.positions_closed() == [position]
    assert s.cache.orders_open() == []


def test_netting_opens_a_new_position_after_a_close():
    s = Setup()
    s.client.fill(s.strategy.sell(10), 10, "1.10000")
    s.client.fill(s.strategy.buy(10), 10, "1.09000")
    s.client.fill(s.strategy.buy(5), 5, "1.09500")
    first, second = s.cache.position(pid(1)), s.cache.position(pid(2))
    assert first.is_closed and first.realized_pnl == Money("0.10", USD)
    assert second.is_long and second.quantity == Quantity(5, 0)
    assert s.cache.positions_open() == [second]


def test_partial_fills_of_one_order_build_one_position():
    s = Setup()
    order = s.strategy.buy(100)
    s.client.accept(order)
    s.client.fill(order, 40, "1.10000")
    assert order.status == OrderStatus.PARTIALLY_FILLED
    s.client.fill(order, 60, "1.10010")
    assert order.status == OrderStatus.FILLED
    assert [type(e) for e in s.position_events()] == [PositionOpened, PositionChanged]
    position = s.cache.position(pid(1))
    assert position.quantity == Quantity(100, 0)
    assert position.avg_px_open == Decimal("1.10006")
    assert s.cache.position_for_order(order.client_order_id) is position


def test_a_fill_through_zero_closes_and_opens_with_prorated_commission():
    s = Setup()
    s.client.fill(s.strategy.buy(100_000), 100_000, "1.10000")
    flip = s.strategy.sell(150_000)
    s.strategy.calls.clear()
    s.client.fill(flip, 150_000, "1.10100", commission="3.00")

    assert s.hooks() == ["on_order_filled", "on_position_closed", "on_order_filled", "on_position_opened"]
    close_fill, closed, open_fill, opened = (e for _, e in s.strategy.calls)
    assert (close_fill.trade_id, close_fill.last_qty, close_fill.commission) == (
        TradeId("T-2"),
        Quantity(100_000, 0),
        Money("2.00", USD),
    )
    assert (open_fill.trade_id, open_fill.last_qty, open_fill.commission) == (
        TradeId("T-2-2"),
        Quantity(50_000, 0),
        Money("1.00", USD),
    )
    assert close_fill.position_id == pid(1) and open_fill.position_id == pid(2)

    assert closed.position_id == pid(1) and closed.side == PositionSide.FLAT
    assert closed.realized_pnl == Money("98.00", USD)  # 0.00100 * 100k - 2.00
    assert opened.position_id == pid(2) and opened.side == PositionSide.SHORT
    assert opened.quantity == Quantity(50_000, 0)
    assert opened.avg_px_open == Decimal("1.10100")
    assert opened.realized_pnl == Money("-1.00", USD)

    assert flip.status == OrderStatus.FILLED and flip.filled_qty == Quantity(150_000, 0)
    assert s.cache.position_for_order(flip.client_order_id) is s.cache.position(pid(2))
    assert s.cache.positions_open() == [s.cache.position(pid(2))]


def test_a_strategy_raising_on_a_fill_through_zero_leaves_the_fill_booked_whole():
    """The strategy's exception reaches the caller, but only after both parts were applied and heard."""
    s = Setup()
    s.client.fill(s.strategy.buy(100_000), 100_000, "1.10000")
    flip = s.strategy.sell(150_000)
    s.bus_events.clear()

    def broken(event) -> None:
        raise RuntimeError("strategy bug in on_order_filled")

    s.strategy.on_order_filled = broken
    with pytest.raises(RuntimeError, match="strategy bug"):
        s.client.fill(flip, 150_000, "1.10100")

    assert flip.status == OrderStatus.FILLED and flip.filled_qty == Quantity(150_000, 0)
    assert [type(e).__name__ for e in s.bus_events] == [
        "OrderFilled",
        "PositionClosed",
        "OrderFilled",
        "PositionOpened",
    ]
    (short,) = s.cache.positions_open()
    assert short.id == pid(2) and short.side == PositionSide.SHORT and short.quantity == Quantity(50_000, 0)
    assert s.cache.position(pid(1)).is_closed


def test_prorated_commission_keeps_every_cent():
    s = Setup()
    s.client.fill(s.strategy.buy(100_000), 100_000, "1.10000")
    s.client.fill(s.strategy.sell(150_000), 150_000, "1.10000", commission="1.00")
    closed, opened = s.cache.position(pid(1)), s.cache.position(pid(2))
    assert closed.commissions == Money("0.66", USD)  # floor(1.00 * 100k / 150k)
    assert opened.commissions == Money("0.34", USD)  # the remainder
    assert closed.commissions + opened.commissions == Money("1.00", USD)


def test_an_over_fill_through_zero_is_refused_as_a_whole():
    s = Setup()
    s.client.fill(s.strategy.buy(60), 60, "1.10000")
    order = s.strategy.sell(100)
    with pytest.raises(OverfillError, match="exceeds the leaves quantity 100"):
        s.client.fill(order, 150, "1.10000")
    assert order.status == OrderStatus.SUBMITTED and order.filled_qty == Quantity(0, 0)
    position = s.cache.position(pid(1))
    assert position.is_long and position.quantity == Quantity(60, 0)
    assert s.cache.positions() == [position]
    s.client.fill(order, 100, "1.10000")  # the real fill still applies
    assert s.cache.position(pid(2)).is_short and s.cache.position(pid(2)).quantity == Quantity(40, 0)


def test_a_short_position_flips_long_too():
    s = Setup()
    s.client.fill(s.strategy.sell(10), 10, "1.20000")
    s.client.fill(s.strategy.buy(25), 25, "1.10000")
    closed, opened = s.cache.position(pid(1)), s.cache.position(pid(2))
    assert closed.is_closed and closed.realized_pnl == Money("1.00", USD)  # 0.1 * 10
    assert opened.is_long and opened.quantity == Quantity(15, 0)


def test_strategies_are_netted_separately():
    s = Setup()
    other = RecordingStrategy(tag="002")
    s.kernel.add_strategy(other)
    other.start()
    s.client.fill(s.strategy.buy(10), 10, "1.10000")
    s.client.fill(other.sell(10), 10, "1.10000")
    mine = s.cache.positions_open(strategy_id=s.strategy.strategy_id)
    theirs = s.cache.positions_open(strategy_id=other.strategy_id)
    assert [p.side for p in mine] == [PositionSide.LONG]
    assert [p.side for p in theirs] == [PositionSide.SHORT]
    assert all(e.strategy_id == s.strategy.strategy_id for e in s.strategy.all_order_events)
    assert all(e.strategy_id == other.strategy_id for e in other.all_position_events)
    assert len(other.all_position_events) == 1


# -- HEDGING -------------------------------------------------------------------------------------


def test_hedging_opens_a_position_per_entry_and_close_position_reduces_the_named_one():
    s = Setup(OmsType.HEDGING)
    s.client.fill(s.strategy.buy(100), 100, "1.10000")
    s.client.fill(s.strategy.buy(50), 50, "1.10020")
    s.client.fill(s.strategy.sell(30), 30, "1.10040")  # not netted: a third, short position
    p1, p2, p3 = (s.cache.position(pid(n)) for n in (1, 2, 3))
    assert (p1.side, p1.quantity) == (PositionSide.LONG, Quantity(100, 0))
    assert (p2.side, p2.quantity) == (PositionSide.LONG, Quantity(50, 0))
    assert (p3.side, p3.quantity) == (PositionSide.SHORT, Quantity(30, 0))

    s.strategy.close_position(p1)
    command = s.client.submitted[-1]
    assert command.position_id == p1.id
    assert command.order.side == SELL and command.order.quantity == Quantity(100, 0)
    assert command.order.reduce_only
    s.client.fill(command.order, 100, "1.10050")

    assert p1.is_closed and p1.realized_pnl == Money("0.05", USD)
    assert p2.is_open and p2.quantity == Quantity(50, 0)
    assert p3.is_open and p3.quantity == Quantity(30, 0)
    assert s.cache.positions_open() == [p2, p3]
    assert isinstance(s.position_events()[-1], PositionClosed)


def test_hedging_partial_fills_stay_on_their_position():
    s = Setup(OmsType.HEDGING)
    s.client.fill(s.strategy.buy(10), 10, "1.10000")
    order = s.strategy.buy(20)
    s.client.fill(order, 5, "1.10000")
    s.client.fill(order, 15, "1.10000")
    assert [p.quantity for p in s.cache.positions_open()] == [Quantity(10, 0), Quantity(20, 0)]


def test_oms_type_is_per_venue_client():
    s = Setup(OmsType.NETTING)
    hedged = RecordingVenue("HEDGE")
    s.kernel.exec_engine.register_client(hedged, oms_type=OmsType.HEDGING)
    instrument = default_fx_pair("EUR/USD", "HEDGE")
    s.cache.add_instrument(instrument)
    for _ in range(2):
        order = s.strategy.order_factory.market(instrument.id, BUY, Quantity(1, 0))
        s.strategy.submit_order(order)
        hedged.fill(order, 1, "1.10000")
        s.client.fill(s.strategy.buy(1), 1, "1.10000")
    assert len(s.cache.positions_open(instrument.id)) == 2
    assert len(s.cache.positions_open(EURUSD.id)) == 1


# -- event delivery ---------------------------------------------------------------------------------


def test_order_and_position_events_reach_the_strategy_hooks_in_order():
    s = Setup()
    order = s.strategy.buy(100)
    s.client.accept(order, ts=5)
    s.client.fill(order, 100, "1.10000", ts=6)
    assert s.hooks() == ["on_order_submitted", "on_order_accepted", "on_order_filled", "on_position_opened"]
    assert [type(e) for e in s.strategy.all_order_events] == [OrderSubmitted, OrderAccepted, OrderFilled]
    assert [type(e) for e in s.strategy.all_position_events] == [PositionOpened]
    filled = s.strategy.all_order_events[-1]
    assert filled.position_id == pid(1)  # the engine assigned it
    assert order.position_id == pid(1)
    assert s.strategy.all_position_events[0].ts_event == 6
    assert [type(e) for e in s.bus_events] == [OrderSubmitted, OrderAccepted, OrderFilled, PositionOpened]


def test_position_ids_are_deterministic():
    def run() -> list[str]:
        s = Setup()
        s.client.fill(s.strategy.buy(1), 1, "1.10000")
        s.client.fill(s.strategy.sell(3), 3, "1.10000")
        s.client.fill(s.strategy.buy(2), 2, "1.10000")
        return [str(p.id) for p in s.cache.positions()]

    expected = [str(pid(1)), str(pid(2))]
    assert run() == run() == expected


# -- accounts --------------------------------------------------------------------------------------


def account_state(total: str, locked: str = "0", ts: int = 0) -> AccountState:
    return AccountState(
        account_id=ACCOUNT,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        balances=(
            AccountBalance(
                total=Money(total, USD),
                locked=Money(locked, USD),
                free=Money(Decimal(total) - Decimal(locked), USD),
            ),
        ),
        is_reported=True,
        ts_event=ts,
        ts_init=ts,
    )


def test_account_state_creates_then_updates_the_cache_account():
    s = Setup()
    published = []
    s.kernel.msgbus.subscribe("events.account.*", published.append)
    first = account_state("1000000.00")
    s.client.emit(first)

    account = s.cache.account(ACCOUNT)
    assert account is not None and account.account_type == AccountType.MARGIN
    assert s.cache.account_for_venue(Venue("SIM")) is account
    assert s.kernel.portfolio.account(Venue("SIM")) is account
    assert account.balance_total() == Money("1000000.00", USD)

    second = account_state("999900.00", locked="500.00", ts=1)
    eur = AccountBalance(
        total=Money("10.00", CURRENCIES["EUR"]),
        locked=Money(0, CURRENCIES["EUR"]),
        free=Money("10.00", CURRENCIES["EUR"]),
    )
    s.client.emit(
        AccountState(
            account_id=ACCOUNT,
            account_type=AccountType.MARGIN,
            base_currency=USD,
            balances=(*second.balances, eur),
            is_reported=True,
            ts_event=1,
            ts_init=1,
        )
    )
    assert s.cache.account(ACCOUNT) is account  # updated in place, not replaced
    assert s.cache.accounts() == [account]
    assert account.balance_total() == Money("999900.00", USD)
    assert account.balance_locked() == Money("500.00", USD)
    assert account.balance_free() == Money("999400.00", USD)
    assert account.balance_total(CURRENCIES["EUR"]) == Money("10.00", CURRENCIES["EUR"])
    assert [e.ts_event for e in published] == [0, 1]


def test_a_strategy_reacting_to_a_fill_sees_the_position_that_fill_made():
    """Re-entrancy: under NETTING an order sent from on_order_filled must add to the one position."""
    from node.backtest.engine import BacktestEngine
    from node.model.enums import OrderSide
    from node.model.instruments import default_fx_pair
    from node.model.objects import Money, Quantity
    from node.persistence.generators import random_walk_quotes
    from node.trading.strategy import Strategy

    instrument = default_fx_pair()
    seen = []

    class Pyramid(Strategy):
        def on_start(self):
            self.subscribe_quote_ticks(instrument.id)
            self.sent = 0

        def on_quote_tick(self, tick):
            if self.sent == 0:
                self.sent = 1
                self.submit_order(self.order_factory.market(instrument.id, OrderSide.BUY, Quantity(1000, 0)))

        def on_order_filled(self, event):
            seen.append([str(p.quantity) for p in self.cache.positions_open(instrument.id)])
            if self.sent < 3:
                self.sent += 1
                self.submit_order(self.order_factory.market(instrument.id, OrderSide.BUY, Quantity(1000, 0)))

    engine = BacktestEngine()
    engine.add_venue("SIM", [Money(1_000_000, instrument.quote_currency)])
    engine.add_instrument(instrument)
    engine.add_data(random_walk_quotes(instrument, 5))
    engine.add_strategy(Pyramid())
    engine.run()
    assert seen == [["1000"], ["2000"], ["3000"]]
    open_positions = engine.cache.positions_open(instrument.id)
    assert len(open_positions) == 1 and str(open_positions[0].quantity) == "3000"
    engine.dispose()
