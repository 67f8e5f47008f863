"""A recording venue adapter for engine tests: the ExecutionClient port, driven by the test.

It stands in for an external venue (the one part of the system we do not own): it records
the commands the ExecutionEngine routes to it and emits the venue events a test asks for.
"""

from __future__ import annotations

from node.execution.client import ExecutionClient
from node.execution.messages import SubmitOrder
from node.model.enums import LiquiditySide, OrderStatus
from node.model.events import OrderAccepted, OrderFilled
from node.model.identifiers import AccountId, TradeId, Venue, VenueOrderId
from node.model.objects import USD, Money, Price, Quantity


class RecordingVenue(ExecutionClient):
    def __init__(self, venue: str = "SIM") -> None:
        super().__init__(venue, Venue(venue), AccountId(f"{venue}-001"))
        self.submitted: list[SubmitOrder] = []
        self.canceled: list = []
        self.canceled_all: list = []
        self.status_seen_at_submit: list[OrderStatus] = []
        self._trade = 0

    def submit_order(self, command) -> None:
        self.submitted.append(command)
        self.status_seen_at_submit.append(command.order.status)

    def cancel_order(self, command) -> None:
        self.canceled.append(command)

    def cancel_all_orders(self, command) -> None:
        self.canceled_all.append(command)

    def accept(self, order, ts: int = 0) -> None:
        self.emit(
            OrderAccepted(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                venue_order_id=VenueOrderId(f"V-{order.client_order_id}"),
                account_id=self.account_id,
                ts_event=ts,
                ts_init=ts,
            )
        )

    def fill(self, order, qty: int | None, px: str, commission: str = "0", ts: int = 0) -> None:
        """Report a fill of ``qty`` (None: the whole order) at ``px``."""
        self._trade += 1
        self.emit(
            OrderFilled(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                venue_order_id=VenueOrderId(f"V-{order.client_order_id}"),
                account_id=self.account_id,
                trade_id=TradeId(f"T-{self._trade}"),
                order_side=order.side,
                order_type=order.order_type,
                last_qty=order.quantity if qty is None else Quantity(qty, 0),
                last_px=Price.from_str(px),
                currency=USD,
                commission=Money(commission, USD),
                liquidity_side=LiquiditySide.TAKER,
                ts_event=ts,
                ts_init=ts,
            )
        )
