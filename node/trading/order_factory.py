"""OrderFactory: the one place a strategy's orders get their client order ids and timestamps.

Why deterministic ids (``O-{strategy_id}-{n}`` from a counter, never uuid4): a backtest must give
the same output every run, and after a crash the node restores the counter (``set_count``) so a
retried command carries the same id and the venue refuses the duplicate instead of trading twice
(DESIGN.md section 2, crash-only).

Every order is built from an ``OrderInitialized`` event stamped with the clock's time, so the order
and its stored history agree from the first moment. The counter only advances once an order has
been built: an invalid request (say, a zero quantity) raises and does not use up an id.
"""

from __future__ import annotations

from typing import Protocol

from node.model.enums import OrderSide, OrderType, TimeInForce
from node.model.errors import InvalidValueError
from node.model.events import OrderInitialized
from node.model.identifiers import ClientOrderId, InstrumentId, StrategyId, TraderId
from node.model.objects import Price, Quantity
from node.model.orders import LimitOrder, MarketOrder, Order, StopMarketOrder


class InvalidOrderCountError(InvalidValueError):
    """An order counter that is not a non-negative int."""


class Clock(Protocol):
    """What the factory needs from a clock (test, live or simulated)."""

    def timestamp_ns(self) -> int: ...


def _check_count(value: int, what: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidOrderCountError(f"{what} must be a non-negative int, got {value!r}")
    return value


class OrderFactory:
    """Builds orders for one strategy with sequential ids ``O-{strategy_id}-{n}`` (n from 1)."""

    __slots__ = ("trader_id", "strategy_id", "_clock", "_count")

    def __init__(
        self, trader_id: TraderId, strategy_id: StrategyId, clock: Clock, initial_count: int = 0
    ) -> None:
        self.trader_id = trader_id
        self.strategy_id = strategy_id
        self._clock = clock
        self._count = _check_count(initial_count, "initial_count")

    @property
    def count(self) -> int:
        """How many ids have been used; the next order gets ``count + 1``."""
        return self._count

    def set_count(self, count: int) -> None:
        """Restore the counter (e.g. from the state store after a restart)."""
        self._count = _check_count(count, "count")

    def reset(self) -> None:
        """Start again from ``O-{strategy_id}-1`` (a strategy reset between backtest runs)."""
        self._count = 0

    def next_client_order_id(self) -> ClientOrderId:
        """The id the next order will get (does not advance the counter)."""
        return ClientOrderId(f"O-{self.strategy_id}-{self._count + 1}")

    def market(
        self,
        instrument_id: InstrumentId,
        order_side: OrderSide,
        quantity: Quantity,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
    ) -> MarketOrder:
        return self._build(  # type: ignore[return-value]
            instrument_id, order_side, OrderType.MARKET, quantity, time_in_force, reduce_only=reduce_only
        )

    def limit(
        self,
        instrument_id: InstrumentId,
        order_side: OrderSide,
        quantity: Quantity,
        price: Price,
        time_in_force: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        reduce_only: bool = False,
    ) -> LimitOrder:
        return self._build(  # type: ignore[return-value]
            instrument_id,
            order_side,
            OrderType.LIMIT,
            quantity,
            time_in_force,
            price=price,
            post_only=post_only,
            reduce_only=reduce_only,
        )

    def stop_market(
        self,
        instrument_id: InstrumentId,
        order_side: OrderSide,
        quantity: Quantity,
        trigger_price: Price,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
    ) -> StopMarketOrder:
        return self._build(  # type: ignore[return-value]
            instrument_id,
            order_side,
            OrderType.STOP_MARKET,
            quantity,
            time_in_force,
            trigger_price=trigger_price,
            reduce_only=reduce_only,
        )

    def _build(
        self,
        instrument_id: InstrumentId,
        order_side: OrderSide,
        order_type: OrderType,
        quantity: Quantity,
        time_in_force: TimeInForce,
        price: Price | None = None,
        trigger_price: Price | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
    ) -> Order:
        ts = self._clock.timestamp_ns()
        init = OrderInitialized(
            trader_id=self.trader_id,
            strategy_id=self.strategy_id,
            instrument_id=instrument_id,
            client_order_id=self.next_client_order_id(),
            side=order_side,
            order_type=order_type,
            quantity=quantity,
            time_in_force=time_in_force,
            price=price,
            trigger_price=trigger_price,
            reduce_only=reduce_only,
            post_only=post_only,
            ts_event=ts,
            ts_init=ts,
        )
        order = Order.create(init)
        self._count += 1  # only once the order exists: a refused request uses no id
        return order
