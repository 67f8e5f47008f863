"""The RiskEngine: every trading command passes here before it can reach a venue.

Pre-trade checks on ``SubmitOrder`` (in this order, first failure wins):
instrument known; quantity precision and the instrument's min/max; the configured maximum
quantity; price precision and sign; notional within the configured maximum; a limit price or
stop trigger inside the price band around the last quote; a reduce-only order must reduce
(the named position, or the strategy's net position); trading state (HALTED denies every
submit, REDUCING denies a submit that would increase the position); the submit-rate
throttle. A breach becomes an ``OrderDenied`` event carrying the reason.
Cancels are never blocked: getting out of the market must always be possible.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from node.common.component import Component
from node.execution.messages import CancelAllOrders, CancelOrder, SubmitOrder
from node.model.enums import OrderSide, TradingState
from node.model.events import OrderDenied
from node.model.timestamps import NANOS_PER_SECOND


@dataclass(frozen=True)
class RiskConfig:
    """Limits; every field has a safe default (no limit beyond the instrument's own)."""

    bypass: bool = False
    max_order_quantity: dict = field(default_factory=dict)  # instrument id str -> Decimal-able
    max_notional_per_order: dict = field(default_factory=dict)  # instrument id str -> Decimal-able
    price_band: Decimal | float | str | None = None  # e.g. 0.05 = within 5% of the last quote mid
    max_submit_rate: int = 100  # orders ...
    submit_rate_interval_s: float = 1.0  # ... per this many seconds

    def __post_init__(self) -> None:
        if self.max_submit_rate <= 0 or self.submit_rate_interval_s <= 0:
            raise ValueError("max_submit_rate and submit_rate_interval_s must be positive")
        if self.price_band is not None and Decimal(str(self.price_band)) <= 0:
            raise ValueError(f"price_band must be positive, got {self.price_band}")


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    trader_id: str
    state: TradingState
    ts_event: int
    ts_init: int


class RiskEngine(Component):
    def __init__(self, msgbus, cache, clock, logger=None, config: RiskConfig | None = None) -> None:
        super().__init__("RiskEngine", clock=clock, logger=logger, msgbus=msgbus)
        self._cache = cache
        self._bus = msgbus
        self.config = config or RiskConfig()
        self._max_qty = {k: Decimal(str(v)) for k, v in self.config.max_order_quantity.items()}
        self._max_notional = {k: Decimal(str(v)) for k, v in self.config.max_notional_per_order.items()}
        self._band = None if self.config.price_band is None else Decimal(str(self.config.price_band))
        self._window_ns = int(self.config.submit_rate_interval_s * NANOS_PER_SECOND)
        self._recent_submits: deque[int] = deque()
        self.trading_state = TradingState.ACTIVE
        self.denied_count = 0
        msgbus.register("RiskEngine.execute", self.execute)

    def set_trading_state(self, state: TradingState) -> None:
        self.trading_state = TradingState(state)
        ts = self._clock.timestamp_ns()
        self._bus.publish("events.risk", TradingStateChanged(self._bus.trader_id, self.trading_state, ts, ts))

    def execute(self, command) -> None:
        if isinstance(command, SubmitOrder):
            reason = None if self.config.bypass else self._check_submit(command)
            if reason is not None:
                self._deny(command.order, reason)
                return
            self._recent_submits.append(self._clock.timestamp_ns())
            self._bus.send("ExecEngine.execute", command)
        elif isinstance(command, CancelOrder | CancelAllOrders):
            self._bus.send("ExecEngine.execute", command)
        else:
            raise TypeError(f"RiskEngine cannot handle {type(command).__name__}")

    # -- checks ----------------------------------------------------------------------------------
    def _check_submit(self, command: SubmitOrder) -> str | None:
        order = command.order
        instrument = self._cache.instrument(order.instrument_id)
        if instrument is None:
            return f"instrument {order.instrument_id} is not in the cache"
        qty = order.quantity
        if qty.precision != instrument.size_precision:
            return (
                f"quantity precision {qty.precision} != instrument size precision {instrument.size_precision}"
            )
        if instrument.max_quantity is not None and qty > instrument.max_quantity:
            return f"quantity {qty} exceeds the instrument maximum {instrument.max_quantity}"
        if instrument.min_quantity is not None and qty < instrument.min_quantity:
            return f"quantity {qty} is below the instrument minimum {instrument.min_quantity}"
        limit = self._max_qty.get(order.instrument_id)
        if limit is not None and qty.as_decimal() > limit:
            return f"quantity {qty} exceeds max_order_quantity {limit} for {order.instrument_id}"
        price = getattr(order, "price", None) or getattr(order, "trigger_price", None)
        if price is not None and price.precision != instrument.price_precision:
            return f"price precision {price.precision} != instrument price precision {instrument.price_precision}"
        if price is not None and price.raw <= 0:
            return f"price {price} must be positive"
        quote = self._cache.quote_tick(order.instrument_id)
        reference = price
        if reference is None and quote is not None:
            reference = quote.ask_price if order.side == OrderSide.BUY else quote.bid_price
        max_notional = self._max_notional.get(order.instrument_id)
        if max_notional is not None and reference is not None:
            notional = instrument.notional_value(qty, reference).as_decimal()
            if notional > max_notional:
                return f"notional {notional} exceeds max_notional_per_order {max_notional} for {order.instrument_id}"
        if self._band is not None and price is not None and quote is not None:
            mid = (quote.bid_price.as_decimal() + quote.ask_price.as_decimal()) / 2
            if abs(price.as_decimal() - mid) > mid * self._band:
                return f"price {price} is outside the {self._band:%} band around the last mid {mid}"
        if order.reduce_only and not self._reduces(order, command.position_id):
            return "reduce-only order would open or increase a position (is the position already closed?)"
        if self.trading_state == TradingState.HALTED:
            return "trading state is HALTED"
        if self.trading_state == TradingState.REDUCING and not self._reduces(order, command.position_id):
            return "trading state is REDUCING and this order would increase the position"
        return self._check_rate()

    def _reduces(self, order, position_id=None) -> bool:
        if position_id is not None:
            position = self._cache.position(position_id)
            if position is None or not position.is_open:
                return False
            closing = OrderSide.SELL if position.signed_qty > 0 else OrderSide.BUY
            return order.side == closing and order.quantity <= position.quantity
        net = Decimal(0)
        for position in self._cache.positions_open(order.instrument_id, order.strategy_id):
            net += position.signed_qty
        if net == 0:
            return False
        if order.side == OrderSide.BUY:
            return net < 0 and order.quantity.as_decimal() <= -net
        return net > 0 and order.quantity.as_decimal() <= net

    def _check_rate(self) -> str | None:
        now = self._clock.timestamp_ns()
        recent = self._recent_submits
        while recent and recent[0] <= now - self._window_ns:
            recent.popleft()
        if len(recent) >= self.config.max_submit_rate:
            return (
                f"submit rate limit: {self.config.max_submit_rate} orders per "
                f"{self.config.submit_rate_interval_s}s exceeded"
            )
        return None

    def _deny(self, order, reason: str) -> None:
        self.denied_count += 1
        if not self._cache.order_exists(order.client_order_id):
            self._cache.add_order(order)
        ts = self._clock.timestamp_ns()
        denied = OrderDenied(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            reason=reason,
            ts_event=ts,
            ts_init=ts,
        )
        self._bus.send("ExecEngine.process", denied)

    def on_reset(self) -> None:
        self._recent_submits.clear()
        self.trading_state = TradingState.ACTIVE
        self.denied_count = 0


__all__ = ["RiskConfig", "RiskEngine", "TradingStateChanged"]
