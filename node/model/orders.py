"""Orders: a state machine driven only by events.

Why events drive everything: an order's state must be the same whether we watched it live or
rebuilt it after a crash from the stored events, so ``Order`` has no setters for status or fills;
``apply(event)`` is the one way in, and replaying the same events gives the same order.

The legal moves are one table, ``ORDER_TRANSITIONS``; nothing else decides legality. Two targets
depend on more than (status, event type), and both are settled in one function,
``_resolve_status``, rather than scattered through ``apply``:

* ``OrderFilled``: the table says FILLED ("a fill is legal here"); the order lands on
  PARTIALLY_FILLED instead while quantity remains (``fill_status``).
* ``OrderCancelRejected`` from PENDING_CANCEL: the table says ACCEPTED (the usual case); the order
  actually returns to whatever status it had before PENDING_CANCEL (SUBMITTED, ACCEPTED, TRIGGERED or
  PARTIALLY_FILLED).

Decisions beyond the brief (all visible in the table):

* ACCEPTED -> REJECTED is *not* legal: a rejection answers a submission. A venue that drops an
  order it already accepted reports it as canceled or expired, which is how the order must be
  accounted (it may have been partially live).
* A cancel-reject in ACCEPTED, TRIGGERED or PARTIALLY_FILLED keeps the status. This is the race
  "cancel sent -> partial fill arrives -> cancel rejected": the fill already moved the order out of
  PENDING_CANCEL, and the late reject must not blow up the execution engine.
* SUBMITTED -> EXPIRED and PENDING_CANCEL -> EXPIRED are legal: an IOC/FOK/GTD order can expire at
  the venue before its acknowledgement or cancel is processed.
* Terminal statuses (DENIED, REJECTED, CANCELED, EXPIRED, FILLED) accept nothing: a late event for a
  closed order raises, and the execution engine decides whether to log and drop it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from node.model.enums import OrderSide, OrderStatus, OrderType
from node.model.errors import InvalidValueError
from node.model.events import (
    ORDER_EVENT_TYPES,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderInitialized,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
    OrderTriggered,
    to_plain,
)
from node.model.identifiers import AccountId, ClientOrderId, PositionId, TradeId, VenueOrderId
from node.model.objects import Price, Quantity


class InvalidOrderError(InvalidValueError):
    """An order whose shape is wrong at construction (zero quantity, missing price, ...)."""


class InvalidOrderTransition(InvalidValueError):
    """An event that the transition table does not allow from the order's current status."""

    def __init__(self, client_order_id: ClientOrderId, status: OrderStatus, event_type: type) -> None:
        self.client_order_id = client_order_id
        self.status = status
        self.event_type = event_type
        allowed = ", ".join(t.__name__ for t in _ALLOWED_EVENTS[status]) or "none (terminal status)"
        super().__init__(
            f"order {client_order_id} in status {status.name} cannot apply {event_type.__name__}; "
            f"events allowed here: {allowed}"
        )


class OrderEventMismatchError(InvalidValueError):
    """An event applied to an order it does not belong to (or that is not an order event)."""


class OverfillError(InvalidValueError):
    """A fill that would take the filled quantity above the order quantity."""


class DuplicateFillError(InvalidValueError):
    """A fill whose trade id was already applied to this order."""


_S = OrderStatus

ORDER_TRANSITIONS: Mapping[tuple[OrderStatus, type[OrderEvent]], OrderStatus] = MappingProxyType(
    {
        (_S.INITIALIZED, OrderDenied): _S.DENIED,
        (_S.INITIALIZED, OrderSubmitted): _S.SUBMITTED,
        (_S.INITIALIZED, OrderRejected): _S.REJECTED,
        (_S.INITIALIZED, OrderCanceled): _S.CANCELED,
        (_S.INITIALIZED, OrderExpired): _S.EXPIRED,
        (_S.INITIALIZED, OrderAccepted): _S.ACCEPTED,  # an order first seen at the venue (reconciliation)
        (_S.SUBMITTED, OrderAccepted): _S.ACCEPTED,
        (_S.SUBMITTED, OrderRejected): _S.REJECTED,
        (_S.SUBMITTED, OrderCanceled): _S.CANCELED,
        (_S.SUBMITTED, OrderPendingCancel): _S.PENDING_CANCEL,
        (_S.SUBMITTED, OrderTriggered): _S.TRIGGERED,
        (_S.SUBMITTED, OrderExpired): _S.EXPIRED,
        (_S.SUBMITTED, OrderFilled): _S.FILLED,  # market orders can fill before an ack
        (_S.ACCEPTED, OrderCanceled): _S.CANCELED,
        (_S.ACCEPTED, OrderPendingCancel): _S.PENDING_CANCEL,
        (_S.ACCEPTED, OrderExpired): _S.EXPIRED,
        (_S.ACCEPTED, OrderTriggered): _S.TRIGGERED,
        (_S.ACCEPTED, OrderCancelRejected): _S.ACCEPTED,
        (_S.ACCEPTED, OrderFilled): _S.FILLED,
        (_S.TRIGGERED, OrderCanceled): _S.CANCELED,
        (_S.TRIGGERED, OrderPendingCancel): _S.PENDING_CANCEL,
        (_S.TRIGGERED, OrderExpired): _S.EXPIRED,
        (_S.TRIGGERED, OrderCancelRejected): _S.TRIGGERED,
        (_S.TRIGGERED, OrderFilled): _S.FILLED,
        (_S.PENDING_CANCEL, OrderCanceled): _S.CANCELED,
        (_S.PENDING_CANCEL, OrderCancelRejected): _S.ACCEPTED,  # really: the status before PENDING_CANCEL
        (_S.PENDING_CANCEL, OrderExpired): _S.EXPIRED,
        (_S.PENDING_CANCEL, OrderFilled): _S.FILLED,
        (_S.PARTIALLY_FILLED, OrderCanceled): _S.CANCELED,
        (_S.PARTIALLY_FILLED, OrderPendingCancel): _S.PENDING_CANCEL,
        (_S.PARTIALLY_FILLED, OrderExpired): _S.EXPIRED,
        (_S.PARTIALLY_FILLED, OrderCancelRejected): _S.PARTIALLY_FILLED,
        (_S.PARTIALLY_FILLED, OrderFilled): _S.FILLED,
    }
)
"""The only statement of which (status, event type) moves are legal. Fills: see ``fill_status``."""

# Derived from the table (never written by hand) so errors can list what *is* allowed.
_ALLOWED_EVENTS: Mapping[OrderStatus, tuple[type[OrderEvent], ...]] = MappingProxyType(
    {s: tuple(t for t in ORDER_EVENT_TYPES if (s, t) in ORDER_TRANSITIONS) for s in OrderStatus}
)

OPEN_STATUSES = frozenset({_S.ACCEPTED, _S.TRIGGERED, _S.PENDING_CANCEL, _S.PARTIALLY_FILLED})
INFLIGHT_STATUSES = frozenset({_S.SUBMITTED, _S.PENDING_CANCEL})
TERMINAL_STATUSES = frozenset({_S.DENIED, _S.REJECTED, _S.CANCELED, _S.EXPIRED, _S.FILLED})


def fill_status(leaves_raw_after: int) -> OrderStatus:
    """Where a fill lands: FILLED when nothing is left, else PARTIALLY_FILLED."""
    return _S.FILLED if leaves_raw_after == 0 else _S.PARTIALLY_FILLED


def _resolve_status(
    order: Order, event: OrderEvent, nominal: OrderStatus, leaves_raw_after: int
) -> OrderStatus:
    """Turn the table's nominal target into the actual one (the two documented special cases)."""
    if type(event) is OrderFilled:
        return fill_status(leaves_raw_after)
    if type(event) is OrderCancelRejected and order.status is _S.PENDING_CANCEL:
        return order.previous_status
    return nominal


class Order:
    """Base order, built from its ``OrderInitialized`` event; use :meth:`create` to get the subclass.

    Attributes are read-only by convention: only :meth:`apply` changes them.
    """

    __slots__ = (
        "trader_id",
        "strategy_id",
        "instrument_id",
        "client_order_id",
        "venue_order_id",
        "position_id",
        "account_id",
        "side",
        "order_type",
        "quantity",
        "filled_qty",
        "leaves_qty",
        "avg_px",
        "time_in_force",
        "reduce_only",
        "status",
        "previous_status",
        "events",
        "trade_ids",
        "ts_init",
        "ts_last",
        "last_trade_id",
    )

    order_type_expected: OrderType | None = None  # set by each subclass

    def __init__(self, init: OrderInitialized) -> None:
        if type(init) is not OrderInitialized:
            raise InvalidOrderError(
                f"an order is built from an OrderInitialized event, got {type(init).__name__}"
            )
        if self.order_type_expected is not None and init.order_type is not self.order_type_expected:
            raise InvalidOrderError(
                f"order {init.client_order_id}: {type(self).__name__} needs order_type "
                f"{self.order_type_expected.name}, got {init.order_type.name}; use Order.create(init)"
            )
        if not init.quantity.is_positive():
            raise InvalidOrderError(
                f"order {init.client_order_id}: quantity must be > 0, got {init.quantity}"
            )
        if init.side not in (OrderSide.BUY, OrderSide.SELL):
            raise InvalidOrderError(
                f"order {init.client_order_id}: side must be BUY or SELL, got {init.side.name}"
            )
        self._check_shape(init)
        self.trader_id = init.trader_id
        self.strategy_id = init.strategy_id
        self.instrument_id = init.instrument_id
        self.client_order_id = init.client_order_id
        self.venue_order_id: VenueOrderId | None = None
        self.position_id: PositionId | None = None
        self.account_id: AccountId | None = None
        self.side = init.side
        self.order_type = init.order_type
        self.quantity = init.quantity
        self.filled_qty = Quantity.from_raw(0, init.quantity.precision)
        self.leaves_qty = init.quantity
        self.avg_px: Decimal | None = None
        self.time_in_force = init.time_in_force
        self.reduce_only = init.reduce_only
        self.status = _S.INITIALIZED
        self.previous_status = _S.INITIALIZED
        self.events: list[OrderEvent] = [init]
        self.trade_ids: list[TradeId] = []
        self.ts_init = init.ts_init
        self.ts_last = init.ts_event
        self.last_trade_id: TradeId | None = None

    # -- construction ---------------------------------------------------------------------------

    @staticmethod
    def _check_shape(init: OrderInitialized) -> None:
        """Subclass hook: which of price / trigger_price / post_only this order type takes."""

    @staticmethod
    def create(init: OrderInitialized) -> Order:
        """Build the subclass that matches ``init.order_type``."""
        classes: Mapping[OrderType, type[Order]] = {
            OrderType.MARKET: MarketOrder,
            OrderType.LIMIT: LimitOrder,
            OrderType.STOP_MARKET: StopMarketOrder,
        }
        cls = classes.get(init.order_type)
        if cls is None:
            raise InvalidOrderError(f"no order class for order_type {init.order_type!r}")
        return cls(init)

    @staticmethod
    def rebuild(events: Iterable[OrderEvent]) -> Order:
        """Replay stored events (the first must be ``OrderInitialized``) into an order."""
        it = iter(events)
        first = next(it, None)
        if type(first) is not OrderInitialized:
            raise InvalidOrderError(f"replay must start with OrderInitialized, got {type(first).__name__}")
        order = Order.create(first)
        for event in it:
            order.apply(event)
        return order

    @property
    def init_event(self) -> OrderInitialized:
        return self.events[0]  # type: ignore[return-value]

    # -- state ----------------------------------------------------------------------------------

    def apply(self, event: OrderEvent) -> None:
        """Apply one event: check it belongs here, move along the table, update the bookkeeping.

        Raises (leaving the order unchanged): OrderEventMismatchError, InvalidOrderTransition,
        DuplicateFillError, OverfillError.
        """
        if not isinstance(event, ORDER_EVENT_TYPES):
            raise OrderEventMismatchError(
                f"order {self.client_order_id}: {type(event).__name__} is not an order event"
            )
        if event.client_order_id != self.client_order_id or event.instrument_id != self.instrument_id:
            raise OrderEventMismatchError(
                f"{type(event).__name__} for order {event.client_order_id} ({event.instrument_id}) applied to "
                f"order {self.client_order_id} ({self.instrument_id}); route it by client_order_id"
            )
        nominal = ORDER_TRANSITIONS.get((self.status, type(event)))
        if nominal is None:
            raise InvalidOrderTransition(self.client_order_id, self.status, type(event))

        leaves_raw_after = self.leaves_qty.raw
        if type(event) is OrderFilled:
            leaves_raw_after = self._check_fill(event)

        new_status = _resolve_status(self, event, nominal, leaves_raw_after)

        venue_order_id = getattr(event, "venue_order_id", None)
        if venue_order_id is not None:
            self.venue_order_id = venue_order_id
        account_id = getattr(event, "account_id", None)
        if account_id is not None:
            self.account_id = account_id
        if type(event) is OrderFilled:
            self._book_fill(event)
        self.previous_status = self.status
        self.status = new_status
        self.ts_last = event.ts_event
        self.events.append(event)

    def _check_fill(self, fill: OrderFilled) -> int:
        """Validate a fill before any change; return the leaves quantity (raw) it would leave."""
        if fill.trade_id in self.trade_ids:
            raise DuplicateFillError(
                f"order {self.client_order_id}: trade {fill.trade_id} was already applied; drop the duplicate"
            )
        if fill.order_side != self.side:
            raise OrderEventMismatchError(
                f"order {self.client_order_id} is {self.side.name} but fill {fill.trade_id} is {fill.order_side.name}"
            )
        new_filled = self.filled_qty + fill.last_qty
        if new_filled > self.quantity:
            raise OverfillError(
                f"order {self.client_order_id}: fill {fill.trade_id} of {fill.last_qty} would fill {new_filled} "
                f"of quantity {self.quantity} (leaves {self.leaves_qty}); the venue reported more than was ordered"
            )
        return (self.quantity - new_filled).raw

    def _book_fill(self, fill: OrderFilled) -> None:
        old = self.filled_qty.as_decimal()
        last = fill.last_qty.as_decimal()
        px = fill.last_px.as_decimal()
        self.avg_px = px if self.avg_px is None else (self.avg_px * old + px * last) / (old + last)
        self.filled_qty = self.filled_qty + fill.last_qty
        self.leaves_qty = self.quantity - self.filled_qty
        if fill.position_id is not None:
            self.position_id = fill.position_id
        self.trade_ids.append(fill.trade_id)
        self.last_trade_id = fill.trade_id

    # -- properties -----------------------------------------------------------------------------

    @property
    def is_buy(self) -> bool:
        return self.side == OrderSide.BUY

    @property
    def is_sell(self) -> bool:
        return self.side == OrderSide.SELL

    @property
    def is_open(self) -> bool:
        """Working at the venue: ACCEPTED, TRIGGERED, PENDING_CANCEL or PARTIALLY_FILLED."""
        return self.status in OPEN_STATUSES

    @property
    def is_closed(self) -> bool:
        """Terminal: DENIED, REJECTED, CANCELED, EXPIRED or FILLED."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_inflight(self) -> bool:
        """Waiting on the venue: SUBMITTED or PENDING_CANCEL."""
        return self.status in INFLIGHT_STATUSES

    @property
    def is_passive(self) -> bool:
        """Rests on the book (any type but MARKET)."""
        return self.order_type != OrderType.MARKET

    @property
    def is_aggressive(self) -> bool:
        return self.order_type == OrderType.MARKET

    @property
    def price(self) -> Price | None:
        return self.init_event.price

    @property
    def trigger_price(self) -> Price | None:
        return self.init_event.trigger_price

    @property
    def post_only(self) -> bool:
        return self.init_event.post_only

    def signed_decimal_qty(self) -> Decimal:
        """The order quantity, positive for BUY and negative for SELL."""
        qty = self.quantity.as_decimal()
        return qty if self.side == OrderSide.BUY else -qty

    def to_dict(self) -> dict[str, Any]:
        """A plain-value snapshot (JSON/msgpack-friendly) of the order as it stands."""
        return {
            "type": type(self).__name__,
            "trader_id": to_plain(self.trader_id),
            "strategy_id": to_plain(self.strategy_id),
            "instrument_id": to_plain(self.instrument_id),
            "client_order_id": to_plain(self.client_order_id),
            "venue_order_id": to_plain(self.venue_order_id),
            "position_id": to_plain(self.position_id),
            "account_id": to_plain(self.account_id),
            "side": to_plain(self.side),
            "order_type": to_plain(self.order_type),
            "quantity": to_plain(self.quantity),
            "filled_qty": to_plain(self.filled_qty),
            "leaves_qty": to_plain(self.leaves_qty),
            "price": to_plain(self.price),
            "trigger_price": to_plain(self.trigger_price),
            "avg_px": to_plain(self.avg_px),
            "time_in_force": to_plain(self.time_in_force),
            "reduce_only": self.reduce_only,
            "post_only": self.post_only,
            "status": to_plain(self.status),
            "last_trade_id": to_plain(self.last_trade_id),
            "event_count": len(self.events),
            "ts_init": self.ts_init,
            "ts_last": self.ts_last,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Order) and other.client_order_id == self.client_order_id

    def __hash__(self) -> int:
        return hash(self.client_order_id)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.client_order_id} {self.side.name} {self.quantity} "
            f"{self.instrument_id} {self.status.name})"
        )


def _forbid(init: OrderInitialized, field: str, cls_name: str) -> None:
    if getattr(init, field) is not None:
        raise InvalidOrderError(
            f"order {init.client_order_id}: a {cls_name} takes no {field} (got {getattr(init, field)}); "
            f"use the order type that has one"
        )


def _require(init: OrderInitialized, field: str, cls_name: str) -> None:
    if getattr(init, field) is None:
        raise InvalidOrderError(f"order {init.client_order_id}: a {cls_name} needs a {field}")


class MarketOrder(Order):
    """Fill now at the best available price; no price, no trigger."""

    __slots__ = ()
    order_type_expected = OrderType.MARKET

    @staticmethod
    def _check_shape(init: OrderInitialized) -> None:
        _forbid(init, "price", "MarketOrder")
        _forbid(init, "trigger_price", "MarketOrder")
        if init.post_only:
            raise InvalidOrderError(f"order {init.client_order_id}: a MarketOrder cannot be post_only")


class LimitOrder(Order):
    """Rest at ``price`` or better; ``post_only`` refuses to take liquidity."""

    __slots__ = ()
    order_type_expected = OrderType.LIMIT

    @staticmethod
    def _check_shape(init: OrderInitialized) -> None:
        _require(init, "price", "LimitOrder")
        _forbid(init, "trigger_price", "LimitOrder")


class StopMarketOrder(Order):
    """Becomes a market order once ``trigger_price`` trades."""

    __slots__ = ()
    order_type_expected = OrderType.STOP_MARKET

    @staticmethod
    def _check_shape(init: OrderInitialized) -> None:
        _require(init, "trigger_price", "StopMarketOrder")
        _forbid(init, "price", "StopMarketOrder")
        if init.post_only:
            raise InvalidOrderError(f"order {init.client_order_id}: a StopMarketOrder cannot be post_only")
