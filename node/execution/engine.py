"""The ExecutionEngine: routes trading commands to venue clients and applies venue events.

Commands come from the RiskEngine (``ExecEngine.execute``); events come back from clients
(``ExecEngine.process``). For every order event the engine applies it to the order's FSM,
re-indexes the cache and publishes it to ``events.order.<strategy_id>``. Fills also open,
change or close positions (published to ``events.position.<strategy_id>``).

Position ids are deterministic: ``<instrument>-<strategy>-<n>`` from a per-engine counter.
Under NETTING a strategy holds at most one open position per instrument, and a fill that
crosses through zero is split into a closing fill and an opening fill (commission prorated)
so the closed position is a complete round trip for statistics. Under HEDGING every entry
order opens its own position; an order that names a position id (``close_position``)
reduces that one.
"""

from __future__ import annotations

from dataclasses import replace

from node.common.component import Component
from node.execution.messages import CancelAllOrders, CancelOrder, SubmitOrder
from node.model.account import Account
from node.model.enums import OmsType, OrderSide, PositionSide
from node.model.events import (
    AccountState,
    OrderCancelRejected,
    OrderDenied,
    OrderFilled,
    OrderSubmitted,
    PositionChanged,
    PositionClosed,
    PositionOpened,
)
from node.model.identifiers import PositionId
from node.model.objects import Money, Quantity
from node.model.orders import OverfillError
from node.model.position import Position


class ExecutionEngineError(Exception):
    """A command or event the engine cannot route or apply."""


class ExecutionEngine(Component):
    def __init__(
        self, msgbus, cache, clock, logger=None, default_oms_type: OmsType = OmsType.NETTING
    ) -> None:
        super().__init__("ExecEngine", clock=clock, logger=logger, msgbus=msgbus)
        self._cache = cache
        self._bus = msgbus
        self._clients: dict = {}
        self._oms_types: dict = {}
        self._default_oms = OmsType(default_oms_type)
        self._position_count = 0
        self._order_topics: dict = {}
        self._position_topics: dict = {}
        self.command_count = 0
        self.event_count = 0
        msgbus.register("ExecEngine.execute", self.execute)
        msgbus.register("ExecEngine.process", self.process)

    # -- clients ---------------------------------------------------------------------------------
    def register_client(self, client, oms_type: OmsType | None = None) -> None:
        if client.venue in self._clients:
            raise ExecutionEngineError(f"an execution client for venue {client.venue} is already registered")
        self._clients[client.venue] = client
        self._oms_types[client.venue] = OmsType(oms_type or self._default_oms)
        client.bind(self.process)

    def client(self, venue):
        return self._clients.get(venue)

    @property
    def clients(self) -> list:
        return list(self._clients.values())

    @property
    def position_count(self) -> int:
        """How many position ids were issued (the next is ``position_count + 1``)."""
        return self._position_count

    def set_position_count(self, count: int) -> None:
        """Restore the position id counter (crash-only restart loads it from the store)."""
        self._position_count = count

    # -- commands --------------------------------------------------------------------------------
    def execute(self, command) -> None:
        self.command_count += 1
        client = self._clients.get(command.instrument_id.venue)
        if isinstance(command, SubmitOrder):
            order = command.order
            if not self._cache.order_exists(order.client_order_id):
                self._cache.add_order(order, command.position_id)
            if client is None:
                self._deny(
                    order, f"no execution client is registered for venue {command.instrument_id.venue}"
                )
                return
            self.process(
                OrderSubmitted(
                    trader_id=order.trader_id,
                    strategy_id=order.strategy_id,
                    instrument_id=order.instrument_id,
                    client_order_id=order.client_order_id,
                    account_id=client.account_id,
                    ts_event=self._clock.timestamp_ns(),
                    ts_init=self._clock.timestamp_ns(),
                )
            )
            client.submit_order(command)
        elif isinstance(command, CancelOrder | CancelAllOrders):
            if client is None:
                # Nothing can be working at a venue we have no client for: a no-op, not a crash
                # (a strategy cancelling on stop must not fault because a venue is absent).
                if self._log is not None:
                    self._log.warning(
                        f"{type(command).__name__} ignored: no client for {command.instrument_id.venue}"
                    )
                return
            if isinstance(command, CancelOrder):
                client.cancel_order(command)
            else:
                client.cancel_all_orders(command)
        else:
            raise ExecutionEngineError(f"unknown trading command {type(command).__name__}")

    def _deny(self, order, reason: str) -> None:
        ts = self._clock.timestamp_ns()
        self.process(
            OrderDenied(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                reason=reason,
                ts_event=ts,
                ts_init=ts,
            )
        )

    # -- events ----------------------------------------------------------------------------------
    def process(self, event) -> None:
        self.event_count += 1
        if isinstance(event, AccountState):
            self._apply_account_state(event)
            return
        order = self._cache.order(event.client_order_id)
        if order is None:
            raise ExecutionEngineError(
                f"{type(event).__name__} for unknown order {event.client_order_id}: the venue reported an order "
                "this node never submitted (reconciliation is needed)"
            )
        if isinstance(event, OrderFilled):
            self._handle_fill(order, event)
            return
        if order.is_closed and isinstance(event, OrderCancelRejected):
            # The ordinary race "cancel sent, order filled meanwhile": nothing left to cancel.
            if self._log is not None:
                self._log.info(f"cancel of {order.client_order_id} rejected after it closed: {event.reason}")
            return
        order.apply(event)
        self._cache.update_order(order)
        self._publish_order_event(event)

    def _publish_order_event(self, event) -> None:
        topic = self._order_topics.get(event.strategy_id)
        if topic is None:
            topic = self._order_topics[event.strategy_id] = f"events.order.{event.strategy_id}"
        self._bus.publish(topic, event)

    def _publish_position_event(self, event) -> None:
        topic = self._position_topics.get(event.strategy_id)
        if topic is None:
            topic = self._position_topics[event.strategy_id] = f"events.position.{event.strategy_id}"
        self._bus.publish(topic, event)

    def _apply_account_state(self, state) -> None:
        account = self._cache.account(state.account_id)
        if account is None:
            account = Account(state.account_id, state.account_type, state.base_currency)
            self._cache.add_account(account)
        account.apply(state)
        self._bus.publish(f"events.account.{state.account_id}", state)

    # -- fills and positions ---------------------------------------------------------------------
    def _oms_type(self, venue) -> OmsType:
        return self._oms_types.get(venue, self._default_oms)

    def _next_position_id(self, fill) -> PositionId:
        self._position_count += 1
        return PositionId(f"{fill.instrument_id}-{fill.strategy_id}-{self._position_count}")

    def _find_position(self, order, fill):
        """The position this fill applies to, or None when it opens a new one."""
        named = self._cache.position_id(order.client_order_id)
        if named is not None:
            position = self._cache.position(named)
            if position is not None and position.is_open:
                return position
        if self._oms_type(fill.instrument_id.venue) == OmsType.NETTING:
            for position in self._cache.positions_open(fill.instrument_id, fill.strategy_id):
                return position
        return None

    def _handle_fill(self, order, fill) -> None:
        instrument = self._cache.instrument(fill.instrument_id)
        if instrument is None:
            raise ExecutionEngineError(f"fill for {fill.instrument_id}, which is not in the cache")
        position = self._find_position(order, fill)
        parts = [(position, fill)]
        if position is not None and _crosses_zero(position, fill):
            # The two parts are applied one after the other: refuse an over-fill as a whole first,
            # or the closing part would be booked before the opening part is refused.
            if fill.last_qty > order.leaves_qty:
                raise OverfillError(
                    f"order {order.client_order_id}: fill {fill.trade_id} of {fill.last_qty} exceeds the "
                    f"leaves quantity {order.leaves_qty}; the venue reported more than was ordered"
                )
            closing, opening = _split_fill(position, fill)
            parts = [(position, closing), (None, opening)]
        failure: Exception | None = None
        for target, part in parts:
            if target is None:
                position_id = self._next_position_id(part)
                part = replace(part, position_id=position_id)
            else:
                part = replace(part, position_id=target.id)
            order.apply(part)
            self._cache.update_order(order)
            self._cache.add_position_id(order.client_order_id, part.position_id)
            # Order and position are both updated before anyone hears of the fill: a handler
            # that reacts (e.g. submits again) must see the position the fill produced.
            position_event = self._update_position(target, part, instrument)
            # A subscriber that raises (a strategy's bug) must not leave the fill half-booked:
            # both events go out and the second part is applied, then the error is raised.
            for publish, event in (
                (self._publish_order_event, part),
                (self._publish_position_event, position_event),
            ):
                try:
                    publish(event)
                except Exception as exc:
                    if failure is None:
                        failure = exc
        if failure is not None:
            raise failure

    def _update_position(self, position, fill, instrument):
        """Apply ``fill`` (opening a position if ``position`` is None); return the event to publish."""
        last = fill.last_px
        if position is None:
            position = Position(instrument, fill)
            self._cache.add_position(position)
            return PositionOpened.create(position, fill, position.unrealized_pnl(last))
        position.apply(fill)
        self._cache.update_position(position)
        event_type = PositionClosed if position.is_closed else PositionChanged
        return event_type.create(position, fill, position.unrealized_pnl(last))

    # -- lifecycle -------------------------------------------------------------------------------
    def on_start(self) -> None:
        for client in self._clients.values():
            client.connect()

    def on_stop(self) -> None:
        for client in self._clients.values():
            client.disconnect()

    def on_resume(self) -> None:
        for client in self._clients.values():
            client.connect()

    def on_reset(self) -> None:
        self._position_count = 0
        self.command_count = 0
        self.event_count = 0


def _crosses_zero(position, fill) -> bool:
    if position.side == PositionSide.FLAT:
        return False
    opposite = (position.side == PositionSide.LONG) == (fill.order_side == OrderSide.SELL)
    return opposite and fill.last_qty > position.quantity


def _split_fill(position, fill):
    """Split a zero-crossing fill into (closing part, opening remainder)."""
    total = fill.last_qty
    close_qty = Quantity(position.quantity.as_decimal(), total.precision)
    open_qty = total - close_qty
    commission = fill.commission
    close_comm_raw = commission.raw * close_qty.raw // total.raw if total.raw else 0
    close_comm = Money.from_raw(close_comm_raw, commission.currency)
    open_comm = Money.from_raw(commission.raw - close_comm_raw, commission.currency)
    closing = replace(fill, last_qty=close_qty, commission=close_comm)
    opening = replace(
        fill,
        last_qty=open_qty,
        commission=open_comm,
        trade_id=type(fill.trade_id)(f"{fill.trade_id}-2"),
    )
    return closing, opening
