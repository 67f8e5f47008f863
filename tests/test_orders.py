"""Order FSM, fill bookkeeping, construction rules and order-event validation."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import pytest

from node.model.enums import LiquiditySide, OrderSide, OrderStatus, OrderType, TimeInForce
from node.model.errors import InvalidTimestampError, InvalidValueError
from node.model.events import (
    ORDER_EVENT_TYPES,
    InvalidEventError,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderInitialized,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
    OrderTriggered,
)
from node.model.identifiers import (
    AccountId,
    ClientOrderId,
    InstrumentId,
    PositionId,
    StrategyId,
    TradeId,
    TraderId,
    VenueOrderId,
)
from node.model.objects import USD, Money, Price, Quantity
from node.model.orders import (
    ORDER_TRANSITIONS,
    DuplicateFillError,
    InvalidOrderError,
    InvalidOrderTransition,
    LimitOrder,
    MarketOrder,
    Order,
    OrderEventMismatchError,
    OverfillError,
    StopMarketOrder,
    fill_status,
)

S = OrderStatus
TRADER = TraderId("TRADER-001")
STRATEGY = StrategyId("S-001")
INSTRUMENT = InstrumentId.from_str("EUR/USD.SIM")
ACCOUNT = AccountId("SIM-001")
VENUE_ID = VenueOrderId("V-1")
COID = ClientOrderId("O-S-001-1")


def _ids(client_order_id: ClientOrderId = COID) -> dict:
    return {
        "trader_id": TRADER,
        "strategy_id": STRATEGY,
        "instrument_id": INSTRUMENT,
        "client_order_id": client_order_id,
    }


def init_event(
    order_type: OrderType = OrderType.LIMIT,
    qty: str = "10",
    price: str | None = "1.00000",
    trigger: str | None = None,
    side: OrderSide = OrderSide.BUY,
    post_only: bool = False,
    client_order_id: ClientOrderId = COID,
) -> OrderInitialized:
    return OrderInitialized(
        **_ids(client_order_id),
        side=side,
        order_type=order_type,
        quantity=Quantity.from_str(qty),
        time_in_force=TimeInForce.GTC,
        price=Price.from_str(price) if price is not None else None,
        trigger_price=Price.from_str(trigger) if trigger is not None else None,
        post_only=post_only,
        ts_event=1,
        ts_init=1,
    )


def limit_order(qty: str = "10") -> Order:
    return Order.create(init_event(qty=qty))


def fill_event(
    qty: str,
    px: str,
    trade: str,
    side: OrderSide = OrderSide.BUY,
    client_order_id: ClientOrderId = COID,
    ts: int = 5,
) -> OrderFilled:
    return OrderFilled(
        **_ids(client_order_id),
        venue_order_id=VENUE_ID,
        account_id=ACCOUNT,
        trade_id=TradeId(trade),
        position_id=PositionId("P-1"),
        order_side=side,
        order_type=OrderType.LIMIT,
        last_qty=Quantity.from_str(qty),
        last_px=Price.from_str(px),
        currency=USD,
        commission=Money("0.20", USD),
        liquidity_side=LiquiditySide.MAKER,
        ts_event=ts,
        ts_init=ts,
    )


def make_event(event_type: type, order: Order, ts: int = 3):
    """One event of ``event_type`` for ``order``; a fill takes everything that is left."""
    common = {**_ids(order.client_order_id), "ts_event": ts, "ts_init": ts}
    venue = {"venue_order_id": VENUE_ID, "account_id": ACCOUNT}
    if event_type is OrderInitialized:
        return init_event(client_order_id=order.client_order_id)
    if event_type is OrderDenied:
        return OrderDenied(**common, reason="risk")
    if event_type is OrderSubmitted:
        return OrderSubmitted(**common, account_id=ACCOUNT)
    if event_type is OrderRejected:
        return OrderRejected(**common, account_id=ACCOUNT, reason="no")
    if event_type is OrderCancelRejected:
        return OrderCancelRejected(**common, **venue, reason="too late")
    if event_type is OrderFilled:
        leaves = order.leaves_qty if order.leaves_qty.is_positive() else Quantity(1, 0)
        return fill_event(str(leaves), "1.00000", f"T-{len(order.events)}", side=order.side, ts=ts)
    return event_type(**common, **venue)


# How to reach each status from INITIALIZED.
PATHS: dict[OrderStatus, list] = {
    S.INITIALIZED: [],
    S.DENIED: [OrderDenied],
    S.SUBMITTED: [OrderSubmitted],
    S.ACCEPTED: [OrderSubmitted, OrderAccepted],
    S.REJECTED: [OrderSubmitted, OrderRejected],
    S.CANCELED: [OrderSubmitted, OrderAccepted, OrderCanceled],
    S.EXPIRED: [OrderSubmitted, OrderAccepted, OrderExpired],
    S.TRIGGERED: [OrderSubmitted, OrderAccepted, OrderTriggered],
    S.PENDING_CANCEL: [OrderSubmitted, OrderAccepted, OrderPendingCancel],
    S.PARTIALLY_FILLED: [OrderSubmitted, OrderAccepted, "partial"],
    S.FILLED: [OrderSubmitted, OrderAccepted, OrderFilled],
}


def order_in(status: OrderStatus) -> Order:
    order = limit_order()
    for step in PATHS[status]:
        if step == "partial":
            order.apply(fill_event("4", "1.00000", "T-partial"))
        else:
            order.apply(make_event(step, order))
    assert order.status is status
    return order


# Written independently of the implementation, from the brief (plus the documented decisions).
EXPECTED: dict[tuple[OrderStatus, type], OrderStatus] = {
    (S.INITIALIZED, OrderDenied): S.DENIED,
    (S.INITIALIZED, OrderSubmitted): S.SUBMITTED,
    (S.INITIALIZED, OrderRejected): S.REJECTED,
    (S.INITIALIZED, OrderCanceled): S.CANCELED,
    (S.INITIALIZED, OrderExpired): S.EXPIRED,
    (S.INITIALIZED, OrderAccepted): S.ACCEPTED,
    (S.SUBMITTED, OrderAccepted): S.ACCEPTED,
    (S.SUBMITTED, OrderRejected): S.REJECTED,
    (S.SUBMITTED, OrderCanceled): S.CANCELED,
    (S.SUBMITTED, OrderPendingCancel): S.PENDING_CANCEL,
    (S.SUBMITTED, OrderFilled): S.FILLED,
    (S.SUBMITTED, OrderTriggered): S.TRIGGERED,
    (S.SUBMITTED, OrderExpired): S.EXPIRED,
    (S.ACCEPTED, OrderCanceled): S.CANCELED,
    (S.ACCEPTED, OrderPendingCancel): S.PENDING_CANCEL,
    (S.ACCEPTED, OrderExpired): S.EXPIRED,
    (S.ACCEPTED, OrderTriggered): S.TRIGGERED,
    (S.ACCEPTED, OrderFilled): S.FILLED,
    (S.ACCEPTED, OrderCancelRejected): S.ACCEPTED,
    (S.TRIGGERED, OrderCanceled): S.CANCELED,
    (S.TRIGGERED, OrderPendingCancel): S.PENDING_CANCEL,
    (S.TRIGGERED, OrderExpired): S.EXPIRED,
    (S.TRIGGERED, OrderFilled): S.FILLED,
    (S.TRIGGERED, OrderCancelRejected): S.TRIGGERED,
    (S.PENDING_CANCEL, OrderCanceled): S.CANCELED,
    (S.PENDING_CANCEL, OrderCancelRejected): S.ACCEPTED,  # back to the status before (ACCEPTED here)
    (S.PENDING_CANCEL, OrderFilled): S.FILLED,
    (S.PENDING_CANCEL, OrderExpired): S.EXPIRED,
    (S.PARTIALLY_FILLED, OrderFilled): S.FILLED,
    (S.PARTIALLY_FILLED, OrderCanceled): S.CANCELED,
    (S.PARTIALLY_FILLED, OrderPendingCancel): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, OrderExpired): S.EXPIRED,
    (S.PARTIALLY_FILLED, OrderCancelRejected): S.PARTIALLY_FILLED,
}

TERMINAL = (S.DENIED, S.REJECTED, S.CANCELED, S.EXPIRED, S.FILLED)


def test_table_is_exactly_the_expected_one():
    assert dict(ORDER_TRANSITIONS) == EXPECTED


def test_terminal_statuses_have_no_exit():
    assert not [key for key in ORDER_TRANSITIONS if key[0] in TERMINAL]


@pytest.mark.parametrize(
    ("status", "event_type"),
    list(itertools.product(OrderStatus, ORDER_EVENT_TYPES)),
    ids=lambda v: v.name if isinstance(v, OrderStatus) else v.__name__,
)
def test_every_status_event_pair(status, event_type):
    order = order_in(status)
    event = make_event(event_type, order)
    expected = EXPECTED.get((status, event_type))
    if expected is None:
        before = (order.status, len(order.events), order.filled_qty)
        with pytest.raises(InvalidOrderTransition) as info:
            order.apply(event)
        message = str(info.value)
        assert str(order.client_order_id) in message
        assert status.name in message
        assert event_type.__name__ in message
        assert (order.status, len(order.events), order.filled_qty) == before
    else:
        order.apply(event)
        assert order.status is expected
        assert order.events[-1] is event
        assert order.ts_last == 3


@pytest.mark.parametrize("before", [S.SUBMITTED, S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED])
def test_cancel_rejected_restores_status_before_pending_cancel(before):
    order = order_in(before)
    order.apply(make_event(OrderPendingCancel, order))
    assert order.status is S.PENDING_CANCEL
    assert order.is_inflight
    order.apply(make_event(OrderCancelRejected, order))
    assert order.status is before


def test_partial_then_full_fill_with_weighted_avg_px():
    order = order_in(S.ACCEPTED)
    order.apply(fill_event("4", "1.00010", "T-1"))
    assert order.status is S.PARTIALLY_FILLED
    assert order.filled_qty == Quantity(4, 0)
    assert order.leaves_qty == Quantity(6, 0)
    assert order.avg_px == Decimal("1.00010")
    assert order.is_open and not order.is_closed
    order.apply(fill_event("6", "1.00020", "T-2", ts=9))
    # (4 * 1.00010 + 6 * 1.00020) / 10 = 10.0016 / 10
    assert order.avg_px == Decimal("1.00016")
    assert order.status is S.FILLED
    assert order.filled_qty == Quantity(10, 0)
    assert order.leaves_qty.is_zero()
    assert order.is_closed and not order.is_open
    assert order.last_trade_id == TradeId("T-2")
    assert order.trade_ids == [TradeId("T-1"), TradeId("T-2")]
    assert order.position_id == PositionId("P-1")
    assert order.venue_order_id == VENUE_ID
    assert order.account_id == ACCOUNT
    assert order.ts_last == 9


def test_market_order_can_fill_straight_from_submitted():
    order = Order.create(init_event(order_type=OrderType.MARKET, price=None))
    order.apply(make_event(OrderSubmitted, order))
    order.apply(fill_event("3", "1.1", "T-1"))
    assert order.status is S.PARTIALLY_FILLED
    order.apply(fill_event("7", "1.2", "T-2"))
    assert order.status is S.FILLED
    assert order.avg_px == Decimal("1.17")  # (3*1.1 + 7*1.2) / 10


def test_fill_status_depends_only_on_leaves():
    assert fill_status(0) is S.FILLED
    assert fill_status(1) is S.PARTIALLY_FILLED


def test_overfill_raises_and_leaves_order_unchanged():
    order = order_in(S.ACCEPTED)
    order.apply(fill_event("4", "1.00010", "T-1"))
    with pytest.raises(OverfillError, match="would fill 11"):
        order.apply(fill_event("7", "1.00010", "T-2"))
    assert order.filled_qty == Quantity(4, 0)
    assert order.status is S.PARTIALLY_FILLED
    assert len(order.events) == 4


def test_duplicate_trade_id_raises():
    order = order_in(S.ACCEPTED)
    order.apply(fill_event("4", "1.00010", "T-1"))
    with pytest.raises(DuplicateFillError, match="T-1"):
        order.apply(fill_event("1", "1.00010", "T-1"))
    assert order.filled_qty == Quantity(4, 0)


def test_event_for_another_order_raises():
    order = order_in(S.SUBMITTED)
    other = OrderAccepted(
        **_ids(ClientOrderId("O-other")), venue_order_id=VENUE_ID, account_id=ACCOUNT, ts_event=2, ts_init=2
    )
    with pytest.raises(OrderEventMismatchError):
        order.apply(other)
    assert order.status is S.SUBMITTED


def test_fill_on_the_wrong_side_raises():
    order = order_in(S.ACCEPTED)
    with pytest.raises(OrderEventMismatchError, match="SELL"):
        order.apply(fill_event("1", "1.0", "T-1", side=OrderSide.SELL))


def test_rebuild_by_replay_gives_the_same_order():
    order = order_in(S.ACCEPTED)
    order.apply(fill_event("4", "1.00010", "T-1"))
    order.apply(make_event(OrderPendingCancel, order))
    order.apply(make_event(OrderCanceled, order))
    again = Order.rebuild(order.events)
    assert type(again) is LimitOrder
    assert again.to_dict() == order.to_dict()
    with pytest.raises(InvalidOrderError):
        Order.rebuild(order.events[1:])


@pytest.mark.parametrize(
    ("status", "is_open", "is_closed", "is_inflight"),
    [
        (S.INITIALIZED, False, False, False),
        (S.SUBMITTED, False, False, True),
        (S.ACCEPTED, True, False, False),
        (S.TRIGGERED, True, False, False),
        (S.PENDING_CANCEL, True, False, True),
        (S.PARTIALLY_FILLED, True, False, False),
        (S.DENIED, False, True, False),
        (S.REJECTED, False, True, False),
        (S.CANCELED, False, True, False),
        (S.EXPIRED, False, True, False),
        (S.FILLED, False, True, False),
    ],
)
def test_status_properties(status, is_open, is_closed, is_inflight):
    order = order_in(status)
    assert (order.is_open, order.is_closed, order.is_inflight) == (is_open, is_closed, is_inflight)


def test_side_and_type_properties():
    buy = limit_order()
    sell = Order.create(init_event(side=OrderSide.SELL, qty="2.5", order_type=OrderType.MARKET, price=None))
    assert buy.is_buy and not buy.is_sell and buy.is_passive
    assert sell.is_sell and not sell.is_buy and not sell.is_passive
    assert buy.signed_decimal_qty() == Decimal("10")
    assert sell.signed_decimal_qty() == Decimal("-2.5")


def test_create_returns_the_matching_subclass():
    assert type(Order.create(init_event(order_type=OrderType.MARKET, price=None))) is MarketOrder
    assert type(Order.create(init_event())) is LimitOrder
    stop = Order.create(init_event(order_type=OrderType.STOP_MARKET, price=None, trigger="0.99000"))
    assert type(stop) is StopMarketOrder
    assert stop.trigger_price == Price.from_str("0.99000")
    assert stop.price is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"qty": "0"},
        {"order_type": OrderType.LIMIT, "price": None},
        {"order_type": OrderType.LIMIT, "trigger": "1.0"},
        {"order_type": OrderType.MARKET},  # default price 1.00000 given
        {"order_type": OrderType.MARKET, "price": None, "trigger": "1.0"},
        {"order_type": OrderType.MARKET, "price": None, "post_only": True},
        {"order_type": OrderType.STOP_MARKET, "price": None},
        {"order_type": OrderType.STOP_MARKET, "trigger": "1.0"},
        {"side": OrderSide.NO_ORDER_SIDE},
    ],
)
def test_construction_validation(kwargs):
    with pytest.raises(InvalidOrderError):
        Order.create(init_event(**kwargs))


def test_subclass_refuses_other_order_type():
    with pytest.raises(InvalidOrderError, match="use Order.create"):
        MarketOrder(init_event(order_type=OrderType.LIMIT))


def test_order_errors_are_invalid_value_errors():
    for cls in (
        InvalidOrderError,
        InvalidOrderTransition,
        OverfillError,
        DuplicateFillError,
        InvalidEventError,
    ):
        assert issubclass(cls, InvalidValueError)


def test_order_to_dict_is_json_serialisable():
    order = order_in(S.ACCEPTED)
    order.apply(fill_event("4", "1.00010", "T-1"))
    snapshot = order.to_dict()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["type"] == "LimitOrder"
    assert snapshot["status"] == "PARTIALLY_FILLED"
    assert snapshot["side"] == "BUY"
    assert snapshot["quantity"] == "10"
    assert snapshot["filled_qty"] == "4"
    assert snapshot["price"] == "1.00000"
    assert snapshot["avg_px"] == "1.00010"
    assert snapshot["client_order_id"] == "O-S-001-1"
    assert snapshot["venue_order_id"] == "V-1"


@pytest.mark.parametrize("event_type", ORDER_EVENT_TYPES, ids=lambda t: t.__name__)
def test_every_order_event_to_dict_is_plain(event_type):
    event = make_event(event_type, limit_order())
    data = event.to_dict()
    assert data["type"] == event_type.__name__
    assert data["client_order_id"] == "O-S-001-1"
    assert data["instrument_id"] == "EUR/USD.SIM"
    assert type(data["client_order_id"]) is str  # not an Identifier subclass
    assert json.loads(json.dumps(data)) == data


def test_fill_to_dict_values():
    data = fill_event("4", "1.00010", "T-1").to_dict()
    assert data["last_qty"] == "4"
    assert data["last_px"] == "1.00010"
    assert data["commission"] == "0.20 USD"
    assert data["currency"] == "USD"
    assert data["order_side"] == "BUY"
    assert data["liquidity_side"] == "MAKER"
    assert data["position_id"] == "P-1"
    assert (data["ts_event"], data["ts_init"]) == (5, 5)


def test_events_are_frozen():
    event = fill_event("4", "1.00010", "T-1")
    with pytest.raises(AttributeError):
        event.last_qty = Quantity(5, 0)  # type: ignore[misc]


def test_event_field_types_are_validated():
    with pytest.raises(InvalidEventError, match="last_qty"):
        OrderFilled(
            **_ids(),
            venue_order_id=VENUE_ID,
            account_id=ACCOUNT,
            trade_id=TradeId("T-1"),
            order_side=OrderSide.BUY,
            order_type=OrderType.LIMIT,
            last_qty=4.0,  # type: ignore[arg-type]
            last_px=Price.from_str("1.0"),
            currency=USD,
            commission=Money(0, USD),
            liquidity_side=LiquiditySide.MAKER,
            ts_event=1,
            ts_init=1,
        )
    with pytest.raises(InvalidEventError, match="account_id"):
        OrderSubmitted(**_ids(), account_id="SIM-001", ts_event=1, ts_init=1)  # plain str, not AccountId
    with pytest.raises(InvalidTimestampError):
        OrderSubmitted(**_ids(), account_id=ACCOUNT, ts_event=-1, ts_init=1)


def test_zero_quantity_fill_is_refused():
    with pytest.raises(InvalidEventError, match="last_qty must be > 0"):
        fill_event("0", "1.0", "T-1")
