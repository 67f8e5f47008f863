"""Strategy: an Actor that trades.

Orders are built by ``order_factory`` (deterministic client order ids) and go
strategy -> RiskEngine -> ExecutionEngine -> venue; the resulting order and position events
come back on the strategy's own topics (``events.order.<id>``, ``events.position.<id>``)
and are dispatched to the ``on_order_*`` / ``on_position_*`` hooks.
"""

from __future__ import annotations

from node.execution.messages import CancelAllOrders, CancelOrder, SubmitOrder
from node.model.enums import OrderSide, PositionSide
from node.model.identifiers import StrategyId
from node.trading.actor import Actor
from node.trading.order_factory import OrderFactory

_ORDER_HOOKS = {
    "OrderInitialized": "on_order_initialized",
    "OrderDenied": "on_order_denied",
    "OrderSubmitted": "on_order_submitted",
    "OrderAccepted": "on_order_accepted",
    "OrderRejected": "on_order_rejected",
    "OrderCanceled": "on_order_canceled",
    "OrderExpired": "on_order_expired",
    "OrderTriggered": "on_order_triggered",
    "OrderPendingCancel": "on_order_pending_cancel",
    "OrderCancelRejected": "on_order_cancel_rejected",
    "OrderFilled": "on_order_filled",
}
_POSITION_HOOKS = {
    "PositionOpened": "on_position_opened",
    "PositionChanged": "on_position_changed",
    "PositionClosed": "on_position_closed",
}


class StrategyConfig:
    """Base config: ``order_id_tag`` makes two instances of one class distinct."""

    def __init__(self, strategy_id: str | None = None, order_id_tag: str = "000", **kwargs) -> None:
        self.strategy_id = strategy_id
        self.order_id_tag = order_id_tag
        for key, value in kwargs.items():
            setattr(self, key, value)


class Strategy(Actor):
    def __init__(self, config=None) -> None:
        tag = getattr(config, "order_id_tag", "000")
        sid = getattr(config, "strategy_id", None) or f"{type(self).__name__}-{tag}"
        super().__init__(config, component_id=sid)
        self.strategy_id = StrategyId(sid)
        self.order_factory: OrderFactory | None = None

    def register(self, trader_id, msgbus, cache, clock, logger, portfolio=None) -> None:
        super().register(trader_id, msgbus, cache, clock, logger, portfolio)
        self.order_factory = OrderFactory(trader_id, self.strategy_id, clock)
        msgbus.subscribe(f"events.order.{self.strategy_id}", self.handle_order_event)
        msgbus.subscribe(f"events.position.{self.strategy_id}", self.handle_position_event)

    # -- commands --------------------------------------------------------------------------------
    def submit_order(self, order, position_id=None) -> None:
        """Send ``order`` through the RiskEngine; the outcome arrives as order events."""
        if not self.cache.order_exists(order.client_order_id):
            self.cache.add_order(order, position_id)
        command = SubmitOrder(
            trader_id=self.trader_id,
            strategy_id=self.strategy_id,
            instrument_id=order.instrument_id,
            ts_init=self._clock.timestamp_ns(),
            order=order,
            position_id=position_id,
        )
        self._msgbus.send("RiskEngine.execute", command)

    def cancel_order(self, order) -> None:
        command = CancelOrder(
            trader_id=self.trader_id,
            strategy_id=self.strategy_id,
            instrument_id=order.instrument_id,
            ts_init=self._clock.timestamp_ns(),
            client_order_id=order.client_order_id,
        )
        self._msgbus.send("RiskEngine.execute", command)

    def cancel_all_orders(self, instrument_id) -> None:
        command = CancelAllOrders(
            trader_id=self.trader_id,
            strategy_id=self.strategy_id,
            instrument_id=instrument_id,
            ts_init=self._clock.timestamp_ns(),
        )
        self._msgbus.send("RiskEngine.execute", command)

    def close_position(self, position) -> None:
        """Flatten ``position`` with a reduce-only market order for its full quantity."""
        if position.is_closed or position.side == PositionSide.FLAT:
            return
        side = OrderSide.SELL if position.side == PositionSide.LONG else OrderSide.BUY
        order = self.order_factory.market(position.instrument_id, side, position.quantity, reduce_only=True)
        self.submit_order(order, position_id=position.id)

    def close_all_positions(self, instrument_id=None) -> None:
        for position in self.cache.positions_open(instrument_id, self.strategy_id):
            self.close_position(position)

    # -- event dispatch --------------------------------------------------------------------------
    def handle_order_event(self, event) -> None:
        hook = _ORDER_HOOKS.get(type(event).__name__)
        if hook is not None:
            getattr(self, hook)(event)
        self.on_order_event(event)

    def handle_position_event(self, event) -> None:
        hook = _POSITION_HOOKS.get(type(event).__name__)
        if hook is not None:
            getattr(self, hook)(event)
        self.on_position_event(event)

    def reset(self) -> None:
        if self.order_factory is not None:
            self.order_factory.reset()
        super().reset()

    # -- user hooks ------------------------------------------------------------------------------
    def on_order_event(self, event) -> None:
        pass

    def on_order_initialized(self, event) -> None:
        pass

    def on_order_denied(self, event) -> None:
        pass

    def on_order_submitted(self, event) -> None:
        pass

    def on_order_accepted(self, event) -> None:
        pass

    def on_order_rejected(self, event) -> None:
        pass

    def on_order_canceled(self, event) -> None:
        pass

    def on_order_expired(self, event) -> None:
        pass

    def on_order_triggered(self, event) -> None:
        pass

    def on_order_pending_cancel(self, event) -> None:
        pass

    def on_order_cancel_rejected(self, event) -> None:
        pass

    def on_order_filled(self, event) -> None:
        pass

    def on_position_event(self, event) -> None:
        pass

    def on_position_opened(self, event) -> None:
        pass

    def on_position_changed(self, event) -> None:
        pass

    def on_position_closed(self, event) -> None:
        pass
