"""QuoteMeanReversion: fade moves of the quote mid away from its recent average.

It keeps a simple moving average of the mid over the last ``window`` quotes. When flat and the
mid is more than ``entry_ticks`` price increments below the average it buys (above: sells),
betting the price comes back; it exits at market once the mid is back at the average.

Why deviations are measured in ticks, and rounded: thresholds in price increments read the same
for any instrument, and the average is a float (indicators compute on floats) so a series of
identical mids can average to one ulp off that mid. Rounding the deviation to 1e-6 of a tick
makes "back at the average" mean exactly that, deterministically.

Why only one entry order at a time, tracked by id: with a resting limit order a second signal
would otherwise stack another entry on top. The id is cleared when the order is finished (filled,
canceled, rejected, denied, expired), and a limit entry still unfilled after
``entry_timeout_ticks`` quotes is canceled: the opportunity it was placed for has passed.

Loaded by dotted path: ``node.strategies.quote_mean_reversion:QuoteMeanReversion`` with
``node.strategies.quote_mean_reversion:QuoteMeanReversionConfig`` (also ``CONFIG_CLASS``).
"""

from __future__ import annotations

from decimal import Decimal

from node.model.enums import OrderSide, OrderStatus, OrderType, PriceType
from node.model.identifiers import ClientOrderId, InstrumentId
from node.model.objects import POW10
from node.strategies import (
    StrategyStartError,
    ValidatedStrategyConfig,
    bool_field,
    exact_trade_quantity,
    instrument_id_field,
    net_position,
    positive_decimal_field,
    positive_int_field,
)
from node.trading.indicators import SimpleMovingAverage
from node.trading.strategy import Strategy

_ENTRY_KEY = "entry_order_id"
_AGE_KEY = "entry_age_ticks"
_DEVIATION_DECIMALS = 6  # round deviations to 1e-6 tick (see module docstring)


class QuoteMeanReversionConfig(ValidatedStrategyConfig):
    """Configuration of :class:`QuoteMeanReversion`; every field is checked at construction."""

    FIELDS = (
        "instrument_id",
        "trade_size",
        "window",
        "entry_ticks",
        "use_limit_orders",
        "entry_timeout_ticks",
        "close_positions_on_stop",
    )

    def __init__(
        self,
        *,
        instrument_id: InstrumentId | str,
        trade_size: Decimal | int | str | float,
        window: int = 100,
        entry_ticks: int = 5,
        use_limit_orders: bool = True,
        entry_timeout_ticks: int = 10,
        close_positions_on_stop: bool = True,
        strategy_id: str | None = None,
        order_id_tag: str = "000",
    ) -> None:
        super().__init__(strategy_id=strategy_id, order_id_tag=order_id_tag)
        self.instrument_id = instrument_id_field(instrument_id, "instrument_id")
        self.trade_size = positive_decimal_field(trade_size, "trade_size")
        # An average of one quote is the quote itself: the mid could never deviate from it.
        self.window = positive_int_field(window, "window", minimum=2)
        self.entry_ticks = positive_int_field(entry_ticks, "entry_ticks")
        self.use_limit_orders = bool_field(use_limit_orders, "use_limit_orders")
        self.entry_timeout_ticks = positive_int_field(entry_timeout_ticks, "entry_timeout_ticks")
        self.close_positions_on_stop = bool_field(close_positions_on_stop, "close_positions_on_stop")


class QuoteMeanReversion(Strategy):
    """Enter against a deviation of the mid from its SMA; exit at the SMA."""

    def __init__(self, config: QuoteMeanReversionConfig) -> None:
        if not isinstance(config, QuoteMeanReversionConfig):
            raise TypeError(
                f"QuoteMeanReversion needs a QuoteMeanReversionConfig, got {type(config).__name__}"
            )
        super().__init__(config)
        self.instrument_id = config.instrument_id
        self.sma = SimpleMovingAverage(config.window, PriceType.MID)
        self.instrument = None
        self.trade_quantity = None
        self._tick_size = 0.0
        self.entry_order_id: ClientOrderId | None = None
        self._entry_age = 0
        self._cancel_sent = False

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
        self._tick_size = instrument.price_increment.as_double()
        if self.sma not in self.registered_indicators:  # once only: see EMACross.on_start
            self.register_indicator_for_quote_ticks(self.instrument_id, self.sma)
        # An entry id restored by on_load may refer to an order that finished while we were down.
        self._entry_still_pending()
        self.subscribe_quote_ticks(self.instrument_id)

    def on_resume(self) -> None:
        self.subscribe_quote_ticks(self.instrument_id)

    def on_stop(self) -> None:
        if self.cache.orders_open(self.instrument_id, self.strategy_id):
            self.cancel_all_orders(self.instrument_id)
        if self.config.close_positions_on_stop:
            self.close_all_positions(self.instrument_id)
        self.unsubscribe_quote_ticks(self.instrument_id)

    def on_reset(self) -> None:
        # The base class has already reset the SMA.
        self.instrument = None
        self.trade_quantity = None
        self._tick_size = 0.0
        self._clear_entry()

    # -- decisions -------------------------------------------------------------------------------
    def on_quote_tick(self, tick) -> None:
        # The SMA has already taken this tick (the actor feeds indicators before this hook).
        if not self.sma.initialized:
            return
        if self._entry_still_pending():
            self._age_entry()
            return
        # An exit still in flight: the position is about to change; decide on the next quote.
        if self.cache.orders_open(self.instrument_id, self.strategy_id):
            return
        self.decide(tick, self.deviation_ticks(tick))

    def deviation_ticks(self, tick) -> float:
        """(mid - SMA) in price increments, rounded to 1e-6 tick."""
        bid = tick.bid_price
        mid = (bid.raw + tick.ask_price.raw) / (2 * POW10[bid.precision])  # as the SMA reads it
        return round((mid - self.sma.value) / self._tick_size, _DEVIATION_DECIMALS)

    def decide(self, tick, deviation: float) -> None:
        has_position, net = net_position(self.cache, self.instrument_id, self.strategy_id)
        if not has_position:
            threshold = self.config.entry_ticks
            if deviation < -threshold:
                self._enter(OrderSide.BUY, tick)
            elif deviation > threshold:
                self._enter(OrderSide.SELL, tick)
        elif (net > 0 and deviation >= 0) or (net < 0 and deviation <= 0):
            self.close_all_positions(self.instrument_id)

    def _enter(self, side: OrderSide, tick) -> None:
        if self.config.use_limit_orders:
            # Join the touch: bid for a buy, ask for a sell (passive, earns the spread if filled).
            touch = tick.bid_price if side == OrderSide.BUY else tick.ask_price
            if touch.precision != self.instrument.price_precision:
                touch = self.instrument.make_price(touch.as_decimal())
            order = self.order_factory.limit(self.instrument_id, side, self.trade_quantity, touch)
        else:
            order = self.order_factory.market(self.instrument_id, side, self.trade_quantity)
        # Set before submitting: a denial comes back synchronously and must find the id to clear.
        self.entry_order_id = order.client_order_id
        self._entry_age = 0
        self._cancel_sent = False
        self.submit_order(order)

    # -- the pending entry -----------------------------------------------------------------------
    def _entry_still_pending(self) -> bool:
        """True while the entry order is unfinished; clears the id once it is done."""
        if self.entry_order_id is None:
            return False
        order = self.cache.order(self.entry_order_id)
        if order is None or order.is_closed:
            self._clear_entry()
            return False
        return True

    def _age_entry(self) -> None:
        """Count a quote against the entry; cancel a resting limit entry once it has timed out."""
        self._entry_age += 1
        if self._cancel_sent or self._entry_age < self.config.entry_timeout_ticks:
            return
        order = self.cache.order(self.entry_order_id)
        # Only a limit order resting at the venue can be canceled; one still in flight is left
        # alone until the venue answers (the next quote ages it again).
        if (
            order.order_type == OrderType.LIMIT
            and order.is_open
            and order.status != OrderStatus.PENDING_CANCEL
        ):
            self._cancel_sent = True
            self.cancel_order(order)

    def _clear_entry(self) -> None:
        self.entry_order_id = None
        self._entry_age = 0
        self._cancel_sent = False

    def on_order_cancel_rejected(self, event) -> None:
        # The venue refused (the order may be filling): allow another cancel on a later quote.
        if event.client_order_id == self.entry_order_id:
            self._cancel_sent = False

    def on_order_event(self, event) -> None:
        if self.entry_order_id is not None and event.client_order_id == self.entry_order_id:
            self._entry_still_pending()  # clears on fill (complete), cancel, reject, deny, expiry

    # -- state -----------------------------------------------------------------------------------
    def on_save(self) -> dict[str, bytes]:
        if self.entry_order_id is None:
            return {}
        return {
            _ENTRY_KEY: self.entry_order_id.value.encode("utf-8"),
            _AGE_KEY: str(self._entry_age).encode("ascii"),
        }

    def on_load(self, state: dict[str, bytes]) -> None:
        raw = state.get(_ENTRY_KEY)
        if raw is None:
            return
        try:
            self.entry_order_id = ClientOrderId(raw.decode("utf-8"))
            self._entry_age = int(state.get(_AGE_KEY, b"0").decode("ascii"))
        except (UnicodeDecodeError, ValueError, AttributeError):
            raise ValueError(f"{self.id}: saved entry order state is corrupt: {state!r}") from None
        self._cancel_sent = False


CONFIG_CLASS = QuoteMeanReversionConfig

__all__ = ["CONFIG_CLASS", "QuoteMeanReversion", "QuoteMeanReversionConfig"]
