"""Kernel: isolation between kernels in one process, lifecycle order, registration rules."""

from __future__ import annotations

import pytest

from node.common.clock import TestClock
from node.common.component import ComponentAlreadyRegistered, ComponentState, ComponentStateChanged
from node.model.data import BarSpecification, BarType, QuoteTick
from node.model.enums import AggregationSource, BarAggregation, OrderSide, PriceType
from node.model.identifiers import ClientOrderId
from node.model.instruments import default_fx_pair
from node.model.objects import Price, Quantity
from node.system.kernel import Environment, Kernel, KernelConfig, KernelError
from node.trading.actor import Actor
from node.trading.strategy import Strategy, StrategyConfig
from tests.venue_support import RecordingVenue

SEC = 1_000_000_000
MIN = 60 * SEC
EURUSD = default_fx_pair("EUR/USD", "SIM")
BID_BARS = BarType(
    EURUSD.id, BarSpecification(1, BarAggregation.MINUTE, PriceType.BID), AggregationSource.INTERNAL
)
S = ComponentState


class FillingClient(RecordingVenue):
    """The recording venue, filling every order in full at 1.10000 as soon as it arrives."""

    def submit_order(self, command) -> None:
        super().submit_order(command)
        self.fill(command.order, None, "1.10000")


class QuoteTrader(Strategy):
    """Subscribes to quotes and one-minute bid bars; buys one unit on every quote it sees."""

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.quotes: list = []
        self.bars: list = []
        self.fills: list = []

    def on_start(self) -> None:
        self.subscribe_quote_ticks(EURUSD.id)
        self.subscribe_bars(BID_BARS)

    def on_quote_tick(self, tick) -> None:
        self.quotes.append(tick)
        self.submit_order(self.order_factory.market(EURUSD.id, OrderSide.BUY, Quantity(1, 0)))

    def on_bar(self, bar) -> None:
        self.bars.append(bar)

    def on_order_filled(self, event) -> None:
        self.fills.append(event)


class Watcher(Actor):
    pass


def make_kernel(start_ns: int = 0) -> tuple[Kernel, QuoteTrader, FillingClient]:
    kernel = Kernel(Environment.BACKTEST, TestClock(start_ns), KernelConfig(trader_id="TRADER-001"))
    kernel.cache.add_instrument(EURUSD)
    client = FillingClient()
    kernel.exec_engine.register_client(client)
    strategy = QuoteTrader()
    kernel.add_strategy(strategy)
    return kernel, strategy, client


def quote(bid: str, ts: int) -> QuoteTick:
    px = Price.from_str(bid)
    return QuoteTick(EURUSD.id, px, px, Quantity(1, 0), Quantity(1, 0), ts, ts)


def feed(kernel: Kernel, tick: QuoteTick) -> None:
    kernel.clock.advance_time(tick.ts_init)
    kernel.data_engine.process(tick)


# -- two kernels in one process ------------------------------------------------------------------------


def test_two_kernels_share_nothing():
    k1, s1, c1 = make_kernel()
    k2, s2, c2 = make_kernel()
    assert s1.id == s2.id and s1.strategy_id == s2.strategy_id  # same class, same ids
    for attr in (
        "clock",
        "logger",
        "msgbus",
        "cache",
        "portfolio",
        "data_engine",
        "risk_engine",
        "exec_engine",
    ):
        assert getattr(k1, attr) is not getattr(k2, attr), attr
    assert s1.cache is k1.cache and s2.cache is k2.cache
    assert s1.msgbus is k1.msgbus and s2.msgbus is k2.msgbus


def test_data_published_into_one_kernel_is_never_seen_by_the_other():
    k1, s1, _ = make_kernel()
    k2, s2, _ = make_kernel()
    seen_by_k2: list = []
    k2.msgbus.subscribe("*", seen_by_k2.append)
    k1.start()
    k2.start()
    seen_by_k2.clear()

    tick = quote("1.10000", SEC)
    feed(k1, tick)

    assert s1.quotes == [tick]
    assert s2.quotes == []
    assert seen_by_k2 == []
    assert k1.cache.quote_tick(EURUSD.id) is tick
    assert k2.cache.quote_tick(EURUSD.id) is None


def test_orders_positions_and_ids_are_per_kernel():
    k1, s1, c1 = make_kernel()
    k2, s2, c2 = make_kernel()
    k1.start()
    k2.start()

    feed(k1, quote("1.10000", SEC))
    feed(k1, quote("1.10001", 2 * SEC))
    feed(k2, quote("1.20000", SEC))

    first_id = ClientOrderId("O-QuoteTrader-000-1")
    assert [c.order.client_order_id for c in c1.submitted] == [first_id, ClientOrderId("O-QuoteTrader-000-2")]
    assert [c.order.client_order_id for c in c2.submitted] == [first_id]  # same id, no clash
    assert k1.cache.order(first_id) is not k2.cache.order(first_id)
    assert len(k1.cache.orders()) == 2 and len(k2.cache.orders()) == 1
    assert len(s1.fills) == 2 and len(s2.fills) == 1

    (p1,) = k1.cache.positions_open()
    (p2,) = k2.cache.positions_open()
    assert p1.id == p2.id  # deterministic ids, separately counted
    assert p1.quantity == Quantity(2, 0) and p2.quantity == Quantity(1, 0)
    assert k1.portfolio.net_position(EURUSD.id) == 2 and k2.portfolio.net_position(EURUSD.id) == 1


def test_clocks_and_bar_timers_are_per_kernel():
    k1, s1, _ = make_kernel()
    k2, s2, _ = make_kernel(start_ns=10 * MIN)
    k1.start()
    k2.start()
    # Both aggregate the same bar type, with the same timer name, on their own clocks.
    assert k1.clock.timer_names == k2.clock.timer_names and len(k1.clock.timer_names) == 1

    feed(k1, quote("1.10000", SEC))
    k1.clock.advance_time(5 * MIN)
    assert k2.clock.timestamp_ns() == 10 * MIN
    assert [b.ts_event for b in s1.bars] == [MIN]
    assert s2.bars == []

    feed(k2, quote("1.20000", 10 * MIN + SEC))
    k2.clock.advance_time(11 * MIN)
    assert [b.ts_event for b in s2.bars] == [11 * MIN]
    assert [b.ts_event for b in s1.bars] == [MIN]
    assert k1.clock.timestamp_ns() == 5 * MIN

    k1.dispose()
    assert k1.clock.timer_names == []
    assert len(k2.clock.timer_names) == 1  # disposing one kernel leaves the other running


def test_stopping_one_kernel_leaves_the_other_running():
    k1, s1, _ = make_kernel()
    k2, s2, _ = make_kernel()
    k1.start()
    k2.start()
    k1.stop()
    assert s1.state == S.STOPPED and k1.data_engine.state == S.STOPPED
    assert s2.state == S.RUNNING and all(e.state == S.RUNNING for e in k2.engines)
    feed(k2, quote("1.20000", SEC))
    assert len(s2.quotes) == 1


# -- lifecycle ----------------------------------------------------------------------------------------


def record_states(kernel: Kernel) -> list[tuple[str, ComponentState]]:
    out: list[tuple[str, ComponentState]] = []

    def on_event(event) -> None:
        assert isinstance(event, ComponentStateChanged)
        out.append((event.component_id, event.state))

    kernel.msgbus.subscribe("events.system.*", on_event)
    return out


ENGINES = ["DataEngine", "RiskEngine", "ExecEngine", "Portfolio"]


def test_start_stop_reset_dispose_move_everything_through_the_fsm_in_order():
    kernel, strategy, _ = make_kernel()
    watcher = Watcher()
    kernel.add_actor(watcher)
    log = record_states(kernel)
    components = ["Watcher", strategy.id]

    assert all(c.state == S.READY for c in (*kernel.engines, watcher, strategy))

    kernel.start()
    assert log == [(c, st) for c in [*ENGINES, *components] for st in (S.STARTING, S.RUNNING)]
    assert all(c.is_running for c in (*kernel.engines, watcher, strategy))

    log.clear()
    kernel.stop()
    assert log == [(c, st) for c in [*components, *reversed(ENGINES)] for st in (S.STOPPING, S.STOPPED)]

    log.clear()
    kernel.reset()
    assert log == [(c, st) for c in [*components, *ENGINES] for st in (S.RESETTING, S.READY)]
    assert all(c.state == S.READY for c in (*kernel.engines, watcher, strategy))

    kernel.cache.add_instrument(EURUSD)  # reset emptied the cache, instruments included
    kernel.start()
    log.clear()
    kernel.dispose()
    stops = [(c, st) for c in [*components, *reversed(ENGINES)] for st in (S.STOPPING, S.STOPPED)]
    disposals = [(c, st) for c in [*components, *ENGINES] for st in (S.DISPOSING, S.DISPOSED)]
    assert log == stops + disposals
    assert all(c.is_disposed for c in (*kernel.engines, watcher, strategy))
    assert kernel.components == []
    assert kernel.clock.timer_names == []


def test_reset_clears_state_so_a_second_run_repeats_the_first():
    kernel, strategy, client = make_kernel()

    def run() -> list[str]:
        kernel.start()
        feed(kernel, quote("1.10000", kernel.clock.timestamp_ns() + SEC))
        kernel.stop()
        return [str(c.order.client_order_id) for c in client.submitted]

    first = run()
    assert kernel.cache.orders() and kernel.cache.positions()
    kernel.reset()
    assert kernel.cache.orders() == [] and kernel.cache.positions() == []
    assert kernel.cache.instrument(EURUSD.id) is None  # the cache really is empty
    kernel.cache.add_instrument(EURUSD)
    client.submitted.clear()
    assert run() == first == ["O-QuoteTrader-000-1"]
    assert [str(p.id) for p in kernel.cache.positions()] == ["EUR/USD.SIM-QuoteTrader-000-1"]


def test_a_stopped_strategy_no_longer_reacts_to_data():
    kernel, strategy, client = make_kernel()
    kernel.start()
    strategy.stop()
    feed(kernel, quote("1.10000", SEC))
    assert strategy.quotes == [] and client.submitted == []


# -- registration -------------------------------------------------------------------------------------


def test_registering_the_same_component_id_twice_raises():
    kernel, strategy, _ = make_kernel()
    duplicate = QuoteTrader()  # another instance, same default id
    with pytest.raises(KernelError, match="QuoteTrader-000"):
        kernel.add_strategy(duplicate)
    assert kernel.strategies == [strategy]
    assert duplicate.state == S.PRE_INITIALIZED  # left untouched

    kernel.add_strategy(QuoteTrader(StrategyConfig(order_id_tag="001")))  # a distinct tag is fine
    assert [s.id for s in kernel.strategies] == ["QuoteTrader-000", "QuoteTrader-001"]

    kernel.add_actor(Watcher())
    with pytest.raises(KernelError, match="Watcher"):
        kernel.add_actor(Watcher())
    with pytest.raises(KernelError, match="QuoteTrader-000"):
        kernel.add_actor(Watcher(component_id="QuoteTrader-000"))  # actors and strategies share one namespace


def test_a_strategy_instance_cannot_be_registered_in_two_kernels():
    k1, strategy, _ = make_kernel()
    k2 = Kernel(Environment.BACKTEST, TestClock(0))
    with pytest.raises(ComponentAlreadyRegistered, match="QuoteTrader-000"):
        k2.add_strategy(strategy)
    assert k2.strategies == []
    # The refusal leaves the strategy wired to its own kernel only.
    assert strategy.cache is k1.cache
    assert strategy.portfolio is k1.portfolio
    assert strategy.msgbus is k1.msgbus and strategy.clock is k1.clock
    k1.start()
    feed(k1, quote("1.10000", SEC))
    assert len(strategy.fills) == 1
    assert k1.cache.orders() and k2.cache.orders() == []
