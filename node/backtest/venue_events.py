"""VenueEvents: the events a SimulatedExchange emits, and when it reports its account.

Every event leaves through ``_emit`` (the execution client, which the ExecutionEngine applies at
once); ``_report`` emits an ``AccountState`` only when the balances changed since the last one, and
is called before the order event that caused the change (see ``exchange.py`` for the contract).
Also here: rejections, and why a cancel is refused (which reads the venue's record of seen orders).
Kept apart from ``exchange.py`` so event construction reads in one place; it is a mixin of
``SimulatedExchange`` and works on the state that class's ``__init__`` sets.
"""

from __future__ import annotations

from node.backtest import venue_state
from node.backtest.matching import OrderStatusAtVenue, WorkingOrder
from node.model.events import OrderAccepted, OrderCancelRejected, OrderRejected, OrderTriggered


class VenueEvents:
    """``SimulatedExchange`` event output: emit, account reports, rejections, cancel rejections."""

    def _emit(self, event) -> None:
        self.exec_client.emit(event)

    def _report(self) -> None:
        """Emit an AccountState if the balances differ from the last ones reported."""
        balances = self.account.balances()
        if balances != self._last_reported:
            self._last_reported = balances
            self._emit(self.account.state(self._clock.timestamp_ns()))

    def _reject(self, order, reason: str) -> None:
        ts = self._clock.timestamp_ns()
        self._emit(
            OrderRejected(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                account_id=self.account_id,
                reason=reason,
                ts_event=ts,
                ts_init=ts,
            )
        )

    def _venue_event(self, event_type, wo: WorkingOrder, **fields):
        """An order event about ``wo`` at the current time, with the ids every such event carries."""
        ts = self._clock.timestamp_ns()
        return event_type(
            trader_id=wo.order.trader_id,
            strategy_id=wo.strategy_id,
            instrument_id=wo.instrument_id,
            client_order_id=wo.client_order_id,
            venue_order_id=wo.venue_order_id,
            account_id=self.account_id,
            ts_event=ts,
            ts_init=ts,
            **fields,
        )

    def _accepted(self, wo: WorkingOrder) -> OrderAccepted:
        return self._venue_event(OrderAccepted, wo)

    def _triggered(self, wo: WorkingOrder) -> OrderTriggered:
        return self._venue_event(OrderTriggered, wo)

    def _seen_order(self, client_order_id) -> WorkingOrder | None:
        """The venue's record of a seen order (None: rejected, or never seen); a done order that
        ``restore_blobs()`` left stored is decoded now, once."""
        known = self._seen.get(client_order_id)
        if type(known) is venue_state.StoredOrders:
            known = self._seen[client_order_id] = known.order(self, client_order_id)
        return known

    def _cancel_reject(self, command, client_order_id) -> None:
        known = self._seen_order(client_order_id)
        ts = self._clock.timestamp_ns()
        self._emit(
            OrderCancelRejected(
                trader_id=command.trader_id,
                strategy_id=command.strategy_id,
                instrument_id=command.instrument_id,
                client_order_id=client_order_id,
                venue_order_id=None if known is None else known.venue_order_id,
                account_id=self.account_id,
                reason=self._why_not_cancelable(command, client_order_id, known),
                ts_event=ts,
                ts_init=ts,
            )
        )

    def _why_not_cancelable(self, command, client_order_id, known: WorkingOrder | None) -> str:
        if client_order_id not in self._seen:
            return f"order {client_order_id} is unknown to venue {self.venue}"
        if known is None:
            return f"order {client_order_id} was rejected by venue {self.venue}"
        if known.instrument_id != command.instrument_id:
            return f"order {client_order_id} is for {known.instrument_id}, not {command.instrument_id}"
        if known.strategy_id != command.strategy_id:
            return (
                f"order {client_order_id} belongs to strategy {known.strategy_id}, not {command.strategy_id}"
            )
        if known.status is not OrderStatusAtVenue.WORKING:
            return f"order {client_order_id} is already {known.status.name.lower()}"
        return (
            f"order {client_order_id} is executing (market, triggered or marketable) and cannot be canceled"
        )
