"""The example strategies: config validation, and their decisions driven through a real Kernel.

No simulated venue is involved. Without an execution client every order is denied by the
ExecutionEngine, which is enough to see what a strategy decided (side, type, quantity). Where
a decision depends on holding a position, ``InstantVenue`` below stands in for a venue: it
accepts every order, fills market orders at once at the touch, and leaves limit orders resting
until the test fills or cancels them.
"""

from __future__ import annotations

import importlib
import tomllib
from decimal import Decimal

import pytest

from node.common.clock import TestClock
from node.common.component import ComponentState
from node.data.messages import DataKind
from node.execution.client import ExecutionClient
from node.model.data import Bar, BarType, QuoteTick
from node.model.enums import LiquiditySide, OrderSide, OrderStatus, OrderType
from node.model.events import OrderAccepted, OrderCanceled, OrderFilled
from node.model.identifiers import AccountId, InstrumentId, TradeId, Venue, VenueOrderId
from node.model.instruments import default_fx_pair
from node.model.objects import Money, Price, Quantity
from node.strategies import StrategyConfigError, StrategyStartError
from node.strategies.ema_cross import EMACross, EMACrossConfig
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig
from node.system.kernel import Environment, Kernel, KernelConfig

IID = "EUR/USD.SIM"
BAR_TYPE = "EUR/USD.SIM-1-MINUTE-BID-EXTERNAL"
MINUTE = 60_000_000_000
SIZE = 100_000


# -- helpers -----------------------------------------------------------------------------------


class InstantVenue(ExecutionClient):
    """Accepts everything; market orders fill at once at the touch (or ``price``); limits rest."""

    def __init__(self, cache, clock) -> None:
        super().__init__("SIM-EXEC", Venue("SIM"), AccountId("SIM-001"))
        self._cache = cache
        self._clock = clock
        self._trades = 0
        self.price = Price("1.10000", 5)  # used when there is no quote (bar-only tests)
        self.fill_market_orders = True

    def _common(self, order) -> dict:
        ts = self._clock.timestamp_ns()
        return dict(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            ts_event=ts,
            ts_init=ts,
        )

    def submit_order(self, command) -> None:
        order = command.order
        vid = VenueOrderId(f"V-{order.client_order_id}")
        self.emit(OrderAccepted(venue_order_id=vid, account_id=self.account_id, **self._common(order)))
        if order.order_type == OrderType.MARKET and self.fill_market_orders:
            quote = self._cache.quote_tick(order.instrument_id)
            if quote is None:
                px = self.price
            else:
                px = quote.ask_price if order.side == OrderSide.BUY else quote.bid_price
            self.fill(order, order.quantity, px)

    def fill(self, order, qty: Quantity, px: Price | None = None) -> None:
        self._trades += 1
        self.emit(
            OrderFilled(
                venue_order_id=VenueOrderId(f"V-{order.client_order_id}"),
                account_id=self.account_id,
                trade_id=TradeId(f"T-{self._trades}"),
                order_side=order.side,
                order_type=order.order_type,
                last_qty=qty,
                last_px=px or order.price,
                currency=self._cache.instrument(order.instrument_id).quote_currency,
                commission=Money(0, self._cache.instrument(order.instrument_id).quote_currency),
                liquidity_side=LiquiditySide.TAKER,
                **self._common(order),
            )
        )

    def _cancel(self, order) -> None:
        vid = VenueOrderId(f"V-{order.client_order_id}")
        self.emit(OrderCanceled(venue_order_id=vid, account_id=self.account_id, **self._common(order)))

    def cancel_order(self, command) -> None:
        self._cancel(self._cache.order(command.client_order_id))

    def cancel_all_orders(self, command) -> None:
        for order in self._cache.orders_open(command.instrument_id, command.strategy_id):
            self._cancel(order)


class Harness:
    """A started kernel with one strategy, EUR/USD in the cache, and optionally a venue."""

    def __init__(self, strategy, with_venue: bool = False, add_instrument: bool = True) -> None:
        self.clock = TestClock(0)
        self.kernel = Kernel(Environment.BACKTEST, self.clock, KernelConfig(log_level="ERROR"))
        self.instrument = default_fx_pair()
        if add_instrument:
            self.kernel.cache.add_instrument(self.instrument)
        self.venue = None
        if with_venue:
            self.venue = InstantVenue(self.kernel.cache, self.clock)
            self.kernel.exec_engine.register_client(self.venue)
        self.strategy = strategy
        self.kernel.add_strategy(strategy)
        self.bar_type = BarType.from_str(BAR_TYPE)
        self.now = 0

    def start(self) -> Harness:
        self.kernel.start()
        return self

    def _tick_time(self) -> int:
        self.now += MINUTE
        self.clock.set_time(self.now)
        return self.now

    def bar(self, close: str) -> None:
        ts = self._tick_time()
        px = Price(close, 5)
        if self.venue is not None:
            self.venue.price = px
        self.kernel.data_engine.process(Bar(self.bar_type, px, px, px, px, Quantity(1, 0), ts, ts))

    def quote(self, bid: str, ask: str) -> None:
        ts = self._tick_time()
        size = Quantity(1_000_000, 0)
        tick = QuoteTick(InstrumentId.from_str(IID), Price(bid, 5), Price(ask, 5), size, size, ts, ts)
        self.kernel.data_engine.process(tick)

    def orders(self) -> list:
        return self.kernel.cache.orders(strategy_id=self.strategy.strategy_id)

    def decisions(self) -> list[tuple]:
        """(side, type, quantity, reduce_only) of every order, in submission order."""
        return [(o.side, o.order_type, o.quantity.as_decimal(), o.reduce_only) for o in self.orders()]

    def net(self) -> Decimal:
        positions = self.kernel.cache.positions_open(strategy_id=self.strategy.strategy_id)
        return sum((p.signed_qty for p in positions), Decimal(0))


BUY_MKT = (OrderSide.BUY, OrderType.MARKET, Decimal(SIZE), False)
SELL_MKT = (OrderSide.SELL, OrderType.MARKET, Decimal(SIZE), False)
CLOSE_LONG = (OrderSide.SELL, OrderType.MARKET, Decimal(SIZE), True)
CLOSE_SHORT = (OrderSide.BUY, OrderType.MARKET, Decimal(SIZE), True)


def ema_config(**overrides) -> EMACrossConfig:
    values = dict(instrument_id=IID, bar_type=BAR_TYPE, trade_size=SIZE, fast_ema_period=2, slow_ema_period=3)
    values.update(overrides)
    return EMACrossConfig(**values)


def qmr_config(**overrides) -> QuoteMeanReversionConfig:
    values = dict(instrument_id=IID, trade_size=SIZE, window=4, entry_ticks=2, entry_timeout_ticks=3)
    values.update(overrides)
    return QuoteMeanReversionConfig(**values)


# -- EMACrossConfig ----------------------------------------------------------------------------


def test_ema_config_normalises_values_and_has_documented_defaults():
    cfg = EMACrossConfig(instrument_id=IID, bar_type="EUR/USD.SIM-1-MINUTE-MID-INTERNAL", trade_size="1000")
    assert isinstance(cfg.instrument_id, InstrumentId) and cfg.instrument_id == IID
    assert isinstance(cfg.bar_type, BarType) and str(cfg.bar_type) == "EUR/USD.SIM-1-MINUTE-MID-INTERNAL"
    assert cfg.trade_size == Decimal("1000") and isinstance(cfg.trade_size, Decimal)
    assert (cfg.fast_ema_period, cfg.slow_ema_period, cfg.close_positions_on_stop) == (10, 20, True)
    assert (cfg.strategy_id, cfg.order_id_tag) == (None, "000")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("instrument_id", "EURUSD"),
        ("instrument_id", 42),
        ("bar_type", "EUR/USD.SIM-1-MINUTE"),
        ("bar_type", "EUR/USD.SIM-1-WEEK-MID-INTERNAL"),
        ("bar_type", 7),
        ("bar_type", "GBP/USD.SIM-1-MINUTE-MID-INTERNAL"),  # another instrument's bars
        ("trade_size", 0),
        ("trade_size", -5),
        ("trade_size", "abc"),
        ("trade_size", "NaN"),
        ("trade_size", float("inf")),
        ("trade_size", True),
        ("trade_size", None),
        ("fast_ema_period", 0),
        ("fast_ema_period", -1),
        ("fast_ema_period", 2.0),
        ("fast_ema_period", True),
        ("fast_ema_period", "2"),
        ("fast_ema_period", 3),  # not less than slow (3)
        ("fast_ema_period", 4),
        ("slow_ema_period", 0),
        ("slow_ema_period", "20"),
        ("close_positions_on_stop", "false"),
        ("close_positions_on_stop", 1),
        ("order_id_tag", ""),
        ("order_id_tag", "a b"),
        ("order_id_tag", 1),
        ("strategy_id", "has space"),
    ],
)
def test_ema_config_rejects_each_bad_field_by_name(field, value):
    with pytest.raises(StrategyConfigError) as info:
        ema_config(**{field: value})
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_strategy_config_error_is_a_value_error():
    assert issubclass(StrategyConfigError, ValueError)


def test_ema_config_from_toml_values():
    doc = tomllib.loads(
        """
        instrument_id = "EUR/USD.SIM"
        bar_type = "EUR/USD.SIM-1-MINUTE-MID-INTERNAL"
        trade_size = 0.1
        fast_ema_period = 5
        slow_ema_period = 8
        close_positions_on_stop = false
        order_id_tag = "002"
        """
    )
    cfg = EMACrossConfig.from_dict(doc)
    assert cfg.trade_size == Decimal("0.1")  # via repr, not the binary float
    assert (cfg.fast_ema_period, cfg.slow_ema_period) == (5, 8)
    assert cfg.close_positions_on_stop is False
    assert EMACross(cfg).id == "EMACross-002"


def test_ema_config_from_dict_names_unknown_and_missing_keys():
    base = {"instrument_id": IID, "bar_type": BAR_TYPE, "trade_size": "1"}
    with pytest.raises(StrategyConfigError) as info:
        EMACrossConfig.from_dict({**base, "fast_ema": 3})
    assert info.value.field == "fast_ema" and "fast_ema_period" in str(info.value)  # lists the known keys
    missing = dict(base)
    del missing["trade_size"]
    with pytest.raises(StrategyConfigError) as info:
        EMACrossConfig.from_dict(missing)
    assert info.value.field == "trade_size"
    with pytest.raises(StrategyConfigError) as info:
        EMACrossConfig.from_dict({**base, "slow_ema_period": "20"})
    assert info.value.field == "slow_ema_period"
    with pytest.raises(StrategyConfigError):
        EMACrossConfig.from_dict([("instrument_id", IID)])


def test_ema_config_to_dict_round_trips():
    cfg = ema_config(trade_size="1.5", strategy_id="EMA-A")
    plain = cfg.to_dict()
    assert plain["trade_size"] == "1.5" and plain["bar_type"] == BAR_TYPE and plain["strategy_id"] == "EMA-A"
    assert all(type(v) in (str, int, bool) for v in plain.values())
    assert EMACrossConfig.from_dict(plain) == cfg
    assert EMACrossConfig.from_dict(plain) != ema_config()


def test_strategies_load_by_dotted_path():
    for path, cls_name, cfg_name in (
        ("node.strategies.ema_cross", "EMACross", "EMACrossConfig"),
        ("node.strategies.quote_mean_reversion", "QuoteMeanReversion", "QuoteMeanReversionConfig"),
    ):
        module = importlib.import_module(path)
        assert module.CONFIG_CLASS is getattr(module, cfg_name)
        assert issubclass(getattr(module, cls_name), object)


def test_strategy_ids_come_from_tag_or_explicit_id():
    assert EMACross(ema_config()).strategy_id == "EMACross-000"
    assert EMACross(ema_config(order_id_tag="007")).strategy_id == "EMACross-007"
    assert EMACross(ema_config(strategy_id="TREND-1")).strategy_id == "TREND-1"
    assert QuoteMeanReversion(qmr_config()).strategy_id == "QuoteMeanReversion-000"


def test_strategies_refuse_the_wrong_config_type():
    with pytest.raises(TypeError, match="EMACrossConfig"):
        EMACross(qmr_config())
    with pytest.raises(TypeError, match="QuoteMeanReversionConfig"):
        QuoteMeanReversion(ema_config())


# -- QuoteMeanReversionConfig -------------------------------------------------------------------


def test_qmr_config_defaults():
    cfg = QuoteMeanReversionConfig(instrument_id=IID, trade_size=10)
    assert (cfg.window, cfg.entry_ticks, cfg.use_limit_orders) == (100, 5, True)
    assert (cfg.entry_timeout_ticks, cfg.close_positions_on_stop) == (10, True)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("instrument_id", "nodot"),
        ("trade_size", 0),
        ("trade_size", "-1"),
        ("window", 1),
        ("window", 0),
        ("window", 10.0),
        ("entry_ticks", 0),
        ("entry_ticks", 1.5),
        ("use_limit_orders", "true"),
        ("use_limit_orders", None),
        ("entry_timeout_ticks", 0),
        ("close_positions_on_stop", 0),
    ],
)
def test_qmr_config_rejects_each_bad_field_by_name(field, value):
    with pytest.raises(StrategyConfigError) as info:
        qmr_config(**{field: value})
    assert info.value.field == field


def test_qmr_config_from_dict():
    cfg = QuoteMeanReversionConfig.from_dict(
        {"instrument_id": IID, "trade_size": 1000, "window": 50, "use_limit_orders": False}
    )
    assert (cfg.window, cfg.use_limit_orders, cfg.trade_size) == (50, False, Decimal(1000))
    with pytest.raises(StrategyConfigError) as info:
        QuoteMeanReversionConfig.from_dict({"instrument_id": IID, "trade_size": 1, "bar_type": BAR_TYPE})
    assert info.value.field == "bar_type"
    assert QuoteMeanReversionConfig.from_dict(cfg.to_dict()) == cfg


# -- EMACross decisions ------------------------------------------------------------------------


def test_ema_cross_subscribes_to_bars_and_quotes_on_start_and_unsubscribes_on_stop():
    h = Harness(EMACross(ema_config())).start()
    assert h.strategy.state == ComponentState.RUNNING
    assert h.kernel.data_engine.subscribed(DataKind.BARS) == [h.bar_type]
    assert h.kernel.data_engine.subscribed(DataKind.QUOTES) == [InstrumentId.from_str(IID)]
    h.kernel.stop()
    assert h.kernel.data_engine.subscribed(DataKind.BARS) == []
    assert h.kernel.data_engine.subscribed(DataKind.QUOTES) == []


def test_ema_cross_starts_with_an_internally_aggregated_bar_type():
    h = Harness(EMACross(ema_config(bar_type="EUR/USD.SIM-1-MINUTE-MID-INTERNAL"))).start()
    assert h.strategy.is_running
    h.kernel.stop()
    assert h.strategy.is_stopped


def test_ema_cross_waits_for_both_emas_then_buys_when_fast_above_slow():
    h = Harness(EMACross(ema_config())).start()
    h.bar("1.10000")
    h.bar("1.10010")
    assert h.orders() == []  # slow EMA (3) not initialized yet
    h.bar("1.10020")
    assert h.decisions() == [BUY_MKT]
    assert h.orders()[0].status == OrderStatus.DENIED  # no venue: denied, which is fine here
    assert h.strategy.bars_processed == 3


def test_ema_cross_equal_emas_count_as_fast_above_slow():
    h = Harness(EMACross(ema_config())).start()
    for _ in range(3):
        h.bar("1.10000")
    assert h.decisions() == [BUY_MKT]


def test_ema_cross_sells_when_fast_below_slow():
    h = Harness(EMACross(ema_config())).start()
    for close in ("1.10020", "1.10010", "1.10000"):
        h.bar(close)
    assert h.decisions() == [SELL_MKT]


def test_ema_cross_flat_enters_again_on_each_bar_while_denied():
    # Flat after a denial, so the next bar repeats the decision (state-based, not cross-based).
    h = Harness(EMACross(ema_config())).start()
    for close in ("1.10000", "1.10010", "1.10020", "1.10030"):
        h.bar(close)
    assert h.decisions() == [BUY_MKT, BUY_MKT]


def test_ema_cross_holds_a_long_and_flips_to_short_when_the_trend_turns():
    h = Harness(EMACross(ema_config()), with_venue=True).start()
    for close in ("1.10000", "1.10010", "1.10020"):
        h.bar(close)
    assert h.decisions() == [BUY_MKT] and h.net() == SIZE
    h.bar("1.10030")  # still up: already long, nothing to do
    assert len(h.orders()) == 1
    for close in ("1.09900", "1.09800"):
        h.bar(close)
    assert h.decisions() == [BUY_MKT, CLOSE_LONG, SELL_MKT]
    assert h.net() == -SIZE
    h.bar("1.09700")  # still down: already short
    assert len(h.orders()) == 3
    for close in ("1.11000", "1.12000"):
        h.bar(close)
    assert h.decisions() == [BUY_MKT, CLOSE_LONG, SELL_MKT, CLOSE_SHORT, BUY_MKT]
    assert h.net() == SIZE
    assert all(o.status == OrderStatus.FILLED for o in h.orders())


def test_ema_cross_does_not_stack_orders_while_one_is_in_flight():
    h = Harness(EMACross(ema_config()), with_venue=True)
    h.venue.fill_market_orders = False  # accepted but never filled
    h.start()
    for close in ("1.10000", "1.10010", "1.10020", "1.10030", "1.10040"):
        h.bar(close)
    assert h.decisions() == [BUY_MKT]


def test_ema_cross_closes_its_position_on_stop():
    h = Harness(EMACross(ema_config()), with_venue=True).start()
    for close in ("1.10000", "1.10010", "1.10020"):
        h.bar(close)
    h.kernel.stop()
    assert h.decisions() == [BUY_MKT, CLOSE_LONG]
    assert h.net() == 0 and h.strategy.is_stopped


def test_ema_cross_keeps_its_position_on_stop_when_configured():
    h = Harness(EMACross(ema_config(close_positions_on_stop=False)), with_venue=True).start()
    for close in ("1.10000", "1.10010", "1.10020"):
        h.bar(close)
    h.kernel.stop()
    assert h.decisions() == [BUY_MKT] and h.net() == SIZE


def test_ema_cross_cancels_working_orders_on_stop():
    h = Harness(EMACross(ema_config()), with_venue=True)
    h.venue.fill_market_orders = False
    h.start()
    for close in ("1.10000", "1.10010", "1.10020"):
        h.bar(close)
    h.kernel.stop()
    assert [o.status for o in h.orders()] == [OrderStatus.CANCELED]


def test_ema_cross_start_without_its_instrument_raises_and_faults():
    h = Harness(EMACross(ema_config()), add_instrument=False)
    with pytest.raises(StrategyStartError, match="EUR/USD.SIM is not in the cache"):
        h.start()
    assert h.strategy.state == ComponentState.FAULTED


def test_ema_cross_start_refuses_a_trade_size_the_instrument_cannot_hold():
    h = Harness(EMACross(ema_config(trade_size="1.5")))  # EUR/USD here has size precision 0
    with pytest.raises(StrategyConfigError) as info:
        h.start()
    assert info.value.field == "trade_size"


def test_ema_cross_reset_clears_state_and_restart_does_not_double_feed_the_emas():
    h = Harness(EMACross(ema_config())).start()
    for close in ("1.10000", "1.10010", "1.10020"):
        h.bar(close)
    h.kernel.stop()
    h.kernel.reset()
    s = h.strategy
    assert (s.fast_ema.count, s.slow_ema.count, s.bars_processed) == (0, 0, 0)
    h.kernel.cache.add_instrument(h.instrument)  # the kernel reset emptied the cache
    h.kernel.start()
    h.bar("1.10030")
    assert (s.fast_ema.count, s.slow_ema.count, s.bars_processed) == (1, 1, 1)
    assert len(s.registered_indicators) == 2


def test_ema_cross_save_and_load():
    s = EMACross(ema_config())
    s.bars_processed = 42
    state = s.save()
    assert state == {"bars_processed": b"42"}
    fresh = EMACross(ema_config())
    fresh.load(state)
    assert fresh.bars_processed == 42
    fresh.load({})  # nothing saved: nothing changes
    assert fresh.bars_processed == 42
    with pytest.raises(ValueError, match="bars_processed"):
        fresh.load({"bars_processed": b"x"})


# -- QuoteMeanReversion decisions --------------------------------------------------------------


def warm_up(h: Harness, bid: str = "1.09999", ask: str = "1.10001", n: int = 4) -> None:
    for _ in range(n):
        h.quote(bid, ask)


def test_qmr_deviation_is_exactly_zero_at_a_constant_mid():
    h = Harness(QuoteMeanReversion(qmr_config(window=10))).start()
    warm_up(h, "1.10000", "1.10002", n=35)
    # The float SMA of 35 equal mids drifts one ulp off the mid; the deviation must not.
    assert h.strategy.sma.value != 1.10001
    tick = h.kernel.cache.quote_tick(InstrumentId.from_str(IID))
    assert h.strategy.deviation_ticks(tick) == 0.0
    assert h.orders() == []


def test_qmr_waits_for_the_window_then_buys_a_dip_at_the_bid():
    h = Harness(QuoteMeanReversion(qmr_config())).start()
    warm_up(h, n=3)
    h.quote("1.09989", "1.09991")  # 4th quote: SMA now initialized, mid 7.5 ticks below it
    assert len(h.orders()) == 1
    order = h.orders()[0]
    assert (order.side, order.order_type, order.quantity, order.price) == (
        OrderSide.BUY,
        OrderType.LIMIT,
        Quantity(SIZE, 0),
        Price("1.09989", 5),
    )


def test_qmr_sells_a_spike_at_the_ask():
    h = Harness(QuoteMeanReversion(qmr_config())).start()
    warm_up(h)
    h.quote("1.10009", "1.10011")
    order = h.orders()[0]
    assert (order.side, order.order_type, order.price) == (
        OrderSide.SELL,
        OrderType.LIMIT,
        Price("1.10011", 5),
    )


def test_qmr_no_entry_inside_the_band():
    h = Harness(QuoteMeanReversion(qmr_config(entry_ticks=2))).start()
    warm_up(h)
    h.quote("1.09997", "1.09999")  # mid 2 ticks below the old mean, 1.5 below the new SMA
    assert h.orders() == []


def test_qmr_denied_entry_is_cleared_so_the_next_signal_can_enter():
    h = Harness(QuoteMeanReversion(qmr_config())).start()
    warm_up(h)
    h.quote("1.09989", "1.09991")
    assert h.strategy.entry_order_id is None  # denied (no venue) -> cleared
    h.quote("1.09979", "1.09981")
    assert [o.side for o in h.orders()] == [OrderSide.BUY, OrderSide.BUY]


def test_qmr_one_entry_at_a_time_and_a_stale_limit_is_canceled_after_the_timeout():
    h = Harness(QuoteMeanReversion(qmr_config(entry_timeout_ticks=3)), with_venue=True).start()
    warm_up(h)
    h.quote("1.09989", "1.09991")
    first = h.orders()[0]
    assert first.status == OrderStatus.ACCEPTED and h.strategy.entry_order_id == first.client_order_id
    h.quote("1.09979", "1.09981")  # still a signal, but the entry is pending: no second order
    h.quote("1.09979", "1.09981")
    assert len(h.orders()) == 1 and first.status == OrderStatus.ACCEPTED
    h.quote("1.09979", "1.09981")  # third quote since the entry: cancel it
    assert first.status == OrderStatus.CANCELED
    assert h.strategy.entry_order_id is None
    h.quote("1.09969", "1.09971")
    assert len(h.orders()) == 2 and h.orders()[1].status == OrderStatus.ACCEPTED


def test_qmr_partial_fill_keeps_the_entry_pending_until_complete():
    h = Harness(QuoteMeanReversion(qmr_config(entry_timeout_ticks=100)), with_venue=True).start()
    warm_up(h)
    h.quote("1.09989", "1.09991")
    entry = h.orders()[0]
    h.venue.fill(entry, Quantity(SIZE // 2, 0))
    assert entry.status == OrderStatus.PARTIALLY_FILLED and h.strategy.entry_order_id == entry.client_order_id
    h.venue.fill(entry, Quantity(SIZE // 2, 0))
    assert entry.status == OrderStatus.FILLED and h.strategy.entry_order_id is None
    assert h.net() == SIZE


def test_qmr_market_entry_then_exit_at_the_mean():
    h = Harness(QuoteMeanReversion(qmr_config(use_limit_orders=False)), with_venue=True).start()
    warm_up(h)
    h.quote("1.09989", "1.09991")
    assert h.decisions() == [BUY_MKT] and h.net() == SIZE
    h.quote("1.09989", "1.09991")  # still below the mean: hold
    assert len(h.orders()) == 1
    h.quote("1.09999", "1.10001")  # back above the (dragged-down) mean: exit
    assert h.decisions() == [BUY_MKT, CLOSE_LONG] and h.net() == 0


def test_qmr_short_exits_when_the_mid_falls_back_to_the_mean():
    h = Harness(QuoteMeanReversion(qmr_config(use_limit_orders=False)), with_venue=True).start()
    warm_up(h)
    h.quote("1.10009", "1.10011")
    assert h.decisions() == [SELL_MKT] and h.net() == -SIZE
    h.quote("1.09999", "1.10001")
    assert h.decisions() == [SELL_MKT, CLOSE_SHORT] and h.net() == 0


def test_qmr_stop_cancels_the_entry_and_closes_the_position():
    h = Harness(QuoteMeanReversion(qmr_config(entry_timeout_ticks=100)), with_venue=True).start()
    warm_up(h)
    h.quote("1.09989", "1.09991")
    entry = h.orders()[0]
    h.venue.fill(entry, Quantity(SIZE // 2, 0))
    h.kernel.stop()
    assert entry.status == OrderStatus.CANCELED and h.strategy.entry_order_id is None
    assert h.net() == 0
    closing = h.orders()[1]
    assert (closing.side, closing.quantity, closing.reduce_only) == (
        OrderSide.SELL,
        Quantity(SIZE // 2, 0),
        True,
    )
    assert h.kernel.data_engine.subscribed(DataKind.QUOTES) == []


def test_qmr_start_without_its_instrument_raises():
    h = Harness(QuoteMeanReversion(qmr_config()), add_instrument=False)
    with pytest.raises(StrategyStartError):
        h.start()


def test_qmr_save_and_load_the_pending_entry():
    h = Harness(QuoteMeanReversion(qmr_config(entry_timeout_ticks=100)), with_venue=True).start()
    assert h.strategy.save() == {}
    warm_up(h)
    h.quote("1.09989", "1.09991")
    h.quote("1.09989", "1.09991")
    state = h.strategy.save()
    assert state == {"entry_order_id": b"O-QuoteMeanReversion-000-1", "entry_age_ticks": b"1"}
    fresh = QuoteMeanReversion(qmr_config())
    fresh.load(state)
    assert fresh.entry_order_id == "O-QuoteMeanReversion-000-1"
    with pytest.raises(ValueError, match="corrupt"):
        fresh.load({"entry_order_id": b"has space"})
