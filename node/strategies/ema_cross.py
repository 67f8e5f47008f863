"""EMACross: the classic trend-following example, always in the market on the side of the trend.

Two exponential moving averages of the bar closes: while the fast one is at or above the slow
one the strategy wants to be long ``trade_size``, otherwise short ``trade_size``. Each bar it
compares where it is with where it wants to be and, if they differ, flattens and enters on the
wanted side with market orders.

Why decide from state on every bar rather than only at the crossing bar: the decision is then
idempotent. A bar on which nothing can be done (an order still in flight, say) is simply
skipped and the next bar repeats the same decision, so the strategy never misses a cross and
never doubles an entry.

Loaded by dotted path: ``node.strategies.ema_cross:EMACross`` with
``node.strategies.ema_cross:EMACrossConfig`` (also exposed as ``CONFIG_CLASS``).
"""

from __future__ import annotations

from decimal import Decimal

from node.model.data import BarType
from node.model.enums import OrderSide
from node.model.identifiers import InstrumentId
from node.strategies import (
    StrategyConfigError,
    StrategyStartError,
    ValidatedStrategyConfig,
    bar_type_field,
    bool_field,
    exact_trade_quantity,
    instrument_id_field,
    net_position,
    positive_decimal_field,
    positive_int_field,
)
from node.trading.indicators import ExponentialMovingAverage
from node.trading.strategy import Strategy

_BARS_KEY = "bars_processed"


class EMACrossConfig(ValidatedStrategyConfig):
    """Configuration of :class:`EMACross`; every field is checked here, at construction."""

    FIELDS = (
        "instrument_id",
        "bar_type",
        "trade_size",
        "fast_ema_period",
        "slow_ema_period",
        "close_positions_on_stop",
    )

    def __init__(
        self,
        *,
        instrument_id: InstrumentId | str,
        bar_type: BarType | str,
        trade_size: Decimal | int | str | float,
        fast_ema_period: int = 10,
        slow_ema_period: int = 20,
        close_positions_on_stop: bool = True,
        strategy_id: str | None = None,
        order_id_tag: str = "000",
    ) -> None:
        super().__init__(strategy_id=strategy_id, order_id_tag=order_id_tag)
        self.instrument_id = instrument_id_field(instrument_id, "instrument_id")
        self.bar_type = bar_type_field(bar_type, "bar_type")
        if self.bar_type.instrument_id != self.instrument_id:
            raise StrategyConfigError(
                "bar_type",
                f"is for {self.bar_type.instrument_id}, but instrument_id is {self.instrument_id}",
            )
        self.trade_size = positive_decimal_field(trade_size, "trade_size")
        self.fast_ema_period = positive_int_field(fast_ema_period, "fast_ema_period")
        self.slow_ema_period = positive_int_field(slow_ema_period, "slow_ema_period")
        if self.fast_ema_period >= self.slow_ema_period:
            raise StrategyConfigError(
                "fast_ema_period",
                f"must be less than slow_ema_period ({self.slow_ema_period}), got {self.fast_ema_period}",
            )
        self.close_positions_on_stop = bool_field(close_positions_on_stop, "close_positions_on_stop")


class EMACross(Strategy):
    """Long while EMA(fast) >= EMA(slow), short otherwise; market orders of ``trade_size``."""

    def __init__(self, config: EMACrossConfig) -> None:
        if not isinstance(config, EMACrossConfig):
            raise TypeError(f"EMACross needs an EMACrossConfig, got {type(config).__name__}")
        super().__init__(config)
        self.instrument_id = config.instrument_id
        self.bar_type = config.bar_type
        self.fast_ema = ExponentialMovingAverage(config.fast_ema_period)
        self.slow_ema = ExponentialMovingAverage(config.slow_ema_period)
        self.instrument = None
        self.trade_quantity = None
        self.bars_processed = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def on_start(self) -> None:
        instrument = self.cache.instrument(self.instrument_id)
        if instrument is None:
            raise StrategyStartError(
                f"{self.id}: instrument {self.instrument_id} is not in the cache; "
                "load it (venue or data config) before starting the strategy"
            )
        self.instrument = instrument
        self.trade_quantity = exact_trade_quantity(instrument, self.config.trade_size)
        # Registration appends to a per-bar-type list, so a start after a reset must not repeat it
        # (each bar would otherwise update the EMAs twice).
        if self.fast_ema not in self.registered_indicators:
            self.register_indicator_for_bars(self.bar_type, self.fast_ema)
            self.register_indicator_for_bars(self.bar_type, self.slow_ema)
        self._subscribe()

    def on_resume(self) -> None:
        self._subscribe()

    def on_stop(self) -> None:
        if self.cache.orders_open(self.instrument_id, self.strategy_id):
            self.cancel_all_orders(self.instrument_id)
        if self.config.close_positions_on_stop:
            self.close_all_positions(self.instrument_id)
        self.unsubscribe_bars(self.bar_type)
        self.unsubscribe_quote_ticks(self.instrument_id)

    def on_reset(self) -> None:
        # The base class has already reset the registered EMAs.
        self.instrument = None
        self.trade_quantity = None
        self.bars_processed = 0

    def _subscribe(self) -> None:
        # Quotes too, so the cache holds a current price for the portfolio to mark positions at.
        self.subscribe_quote_ticks(self.instrument_id)
        self.subscribe_bars(self.bar_type)

    # -- decisions -------------------------------------------------------------------------------
    def on_bar(self, bar) -> None:
        self.bars_processed += 1
        if not (self.fast_ema.initialized and self.slow_ema.initialized):
            return
        # An order still working or in flight means the position is about to change: decide again
        # on the next bar, from the position that results.
        if self.cache.orders_open(self.instrument_id, self.strategy_id):
            return
        wanted = OrderSide.BUY if self.fast_ema.value >= self.slow_ema.value else OrderSide.SELL
        self.decide(wanted)

    def decide(self, wanted: OrderSide) -> None:
        """Bring the position to ``wanted``: enter when flat, flip when on the other side."""
        has_position, net = net_position(self.cache, self.instrument_id, self.strategy_id)
        if not has_position:
            self._enter(wanted)
        elif (wanted == OrderSide.BUY and net < 0) or (wanted == OrderSide.SELL and net > 0):
            self.close_all_positions(self.instrument_id)
            self._enter(wanted)

    def _enter(self, side: OrderSide) -> None:
        order = self.order_factory.market(self.instrument_id, side, self.trade_quantity)
        self.submit_order(order)

    # -- state -----------------------------------------------------------------------------------
    def on_save(self) -> dict[str, bytes]:
        # The EMAs are not saved: after a restart they warm up again from fresh bars, which is
        # cheaper and safer than trusting a snapshot taken at an unknown bar.
        return {_BARS_KEY: str(self.bars_processed).encode("ascii")}

    def on_load(self, state: dict[str, bytes]) -> None:
        raw = state.get(_BARS_KEY)
        if raw is None:
            return
        try:
            count = int(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError, AttributeError):
            raise ValueError(f"{self.id}: saved state '{_BARS_KEY}' is not an integer: {raw!r}") from None
        if count < 0:
            raise ValueError(f"{self.id}: saved state '{_BARS_KEY}' must be >= 0, got {count}")
        self.bars_processed = count


CONFIG_CLASS = EMACrossConfig

__all__ = ["CONFIG_CLASS", "EMACross", "EMACrossConfig"]
