"""Events: immutable records of what happened to an order, a position or an account.

Why events and not just mutable state: an order or a position is *defined* by the events applied
to it, so it can be rebuilt after a crash by replaying them, and the same records are what the
strategy, the portfolio, the persistence store and the orchestrator's journal receive. That is also
why they are frozen: a record everyone shares must not change under anyone's feet.

Every event carries ``ts_event`` (when it happened, venue or simulated time) and ``ts_init`` (when
this node created the object), both UNIX nanoseconds, and serialises through one generic
``to_dict()`` into plain JSON/msgpack values (identifiers, fixed-point values and Decimals become
strings, enums their names). The shape follows from the dataclass fields, so a new event type needs
no serialisation code of its own.

Construction validates each field against its declared type (one generic check, driven by the
dataclass annotations): a float where a ``Quantity`` belongs, or a negative timestamp, fails here,
at the source, rather than deep inside the execution engine.

Events carry no random ids (no uuid4): a backtest must produce byte-identical output every run.
"""

import types
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, get_args, get_origin

from node.model.enums import (
    AccountType,
    LiquiditySide,
    OrderSide,
    OrderType,
    PositionSide,
    TimeInForce,
)
from node.model.errors import InvalidValueError
from node.model.identifiers import (
    AccountId,
    ClientOrderId,
    Identifier,
    InstrumentId,
    PositionId,
    StrategyId,
    TradeId,
    TraderId,
    VenueOrderId,
)
from node.model.objects import Currency, FixedPoint, Money, Price, Quantity
from node.model.timestamps import UNIX_NANOS_MAX, check_unix_nanos

if TYPE_CHECKING:  # only for annotations; position.py imports this module
    from node.model.position import Position


class InvalidEventError(InvalidValueError):
    """An event field has the wrong type or breaks an invariant of that event."""


class InvalidAccountBalanceError(InvalidValueError):
    """An account balance whose parts do not add up or mix currencies."""


_TS_FIELDS = ("ts_event", "ts_init")


def to_plain(value: Any) -> Any:
    """Convert a model value into JSON/msgpack-friendly primitives.

    The single converter used by every ``to_dict`` in the model (events, orders, positions), so
    the wire format of, say, a Price is decided in exactly one place.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Identifier | FixedPoint | Currency):  # before str: an Identifier is a str
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Enum):  # before int: IntEnum is an int
        return value.name
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")  # never scientific notation ("1E+1")
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"cannot convert {type(value).__name__} to a plain value; add a rule to to_plain()")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _is_int(value: Any) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def _predicate(tp: Any):
    """Compile the annotation ``tp`` (classes, ``X | None``, ``tuple[X, ...]``) into a fast check."""
    if tp is Any:
        return lambda value: True
    if tp is type(None):
        return lambda value: value is None
    if tp is int:
        return _is_int
    if isinstance(tp, types.UnionType):
        members = get_args(tp)
        others = tuple(m for m in members if m is not type(None))
        if len(others) == 1 and isinstance(others[0], type) and others[0] is not int:
            cls = others[0]
            return lambda value: value is None or isinstance(value, cls)
        checks = tuple(_predicate(m) for m in members)
        return lambda value: any(check(value) for check in checks)
    if get_origin(tp) is tuple:
        item = _predicate(get_args(tp)[0])
        return lambda value: isinstance(value, tuple) and all(item(v) for v in value)
    return lambda value: isinstance(value, tp)


def _field_checks(cls: type) -> tuple:
    """Per class, computed once: (name, predicate, annotation, is_timestamp) for each field.

    Building the checks from the annotations on every construction cost ~10-20 us per event;
    compiled once they cost a few hundred ns, which matters on a backtest's order path.
    """
    checks = cls.__dict__.get("_FIELD_CHECKS")
    if checks is None:
        checks = tuple(
            (f.name, _predicate(f.type), f.type, f.name in _TS_FIELDS or f.name in ("ts_opened", "ts_closed"))
            for f in fields(cls)
        )
        type.__setattr__(cls, "_FIELD_CHECKS", checks)
    return checks


def compile_field_checks() -> int:
    """Compile the field checks of every event class now (a process that restarts nodes does this
    before it is needed, instead of on the first event of each type); returns how many."""
    count = 0
    pending = [Event]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        _field_checks(cls)
        count += 1
    return count


def _check_fields(obj: Any) -> None:
    """Validate every dataclass field of ``obj`` against its annotation (and timestamps' range)."""
    for name, ok, tp, is_ts in _field_checks(type(obj)):
        value = getattr(obj, name)
        if not ok(value):
            owner = type(obj).__name__
            raise InvalidEventError(
                f"{owner}.{name} must be {_type_name(tp)}, got {type(value).__name__} {value!r}; "
                f"construct it with the model type (e.g. Quantity(...), Price(...), an Identifier)"
            )
        if is_ts and value is not None and (type(value) is not int or value < 0 or value > UNIX_NANOS_MAX):
            check_unix_nanos(value, f"{type(obj).__name__}.{name}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all events: timestamps, validation and the generic ``to_dict``."""

    ts_event: int
    ts_init: int

    def __post_init__(self) -> None:
        _check_fields(self)
        self._check_invariants()

    def _check_invariants(self) -> None:
        """Hook for rules beyond field types; the default has none."""

    def to_dict(self) -> dict[str, Any]:
        """``{"type": <class name>, <fields...>, "ts_event": ..., "ts_init": ...}`` in plain values."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in fields(self):
            if f.name not in _TS_FIELDS:
                out[f.name] = to_plain(getattr(self, f.name))
        out["ts_event"] = self.ts_event
        out["ts_init"] = self.ts_init
        return out


# -- order events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent(Event):
    """Base of the events in an order's life; ``client_order_id`` says which order."""

    trader_id: TraderId
    strategy_id: StrategyId
    instrument_id: InstrumentId
    client_order_id: ClientOrderId


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderInitialized(OrderEvent):
    """The order's birth certificate: every other attribute of an order derives from this."""

    side: OrderSide
    order_type: OrderType
    quantity: Quantity
    time_in_force: TimeInForce
    price: Price | None = None
    trigger_price: Price | None = None
    reduce_only: bool = False
    post_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(OrderEvent):
    """Refused before leaving the node (pre-trade risk check)."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(OrderEvent):
    """Sent to the venue; no answer yet."""

    account_id: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(OrderEvent):
    """The venue acknowledged the order and gave it a venue id."""

    venue_order_id: VenueOrderId
    account_id: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(OrderEvent):
    """The venue refused the order."""

    account_id: AccountId
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(OrderEvent):
    """Canceled; the ids are None when the order never reached the venue.

    ``reason`` says why when the venue canceled on its own (IOC remainder, unaffordable stop).
    """

    venue_order_id: VenueOrderId | None = None
    account_id: AccountId | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(OrderEvent):
    """Its time in force ran out."""

    venue_order_id: VenueOrderId
    account_id: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTriggered(OrderEvent):
    """A stop order's trigger price was reached."""

    venue_order_id: VenueOrderId
    account_id: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPendingCancel(OrderEvent):
    """A cancel request is on its way to the venue."""

    venue_order_id: VenueOrderId
    account_id: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRejected(OrderEvent):
    """The venue refused to cancel (e.g. too late); the order carries on as before.

    ``venue_order_id`` is None when the venue never knew the order.
    """

    venue_order_id: VenueOrderId | None
    account_id: AccountId
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(OrderEvent):
    """One execution against the order; ``trade_id`` is unique per instrument at the venue."""

    venue_order_id: VenueOrderId
    account_id: AccountId
    trade_id: TradeId
    position_id: PositionId | None = None
    order_side: OrderSide
    order_type: OrderType
    last_qty: Quantity
    last_px: Price
    currency: Currency
    commission: Money
    liquidity_side: LiquiditySide

    def _check_invariants(self) -> None:
        if not self.last_qty.is_positive():
            raise InvalidEventError(
                f"OrderFilled {self.client_order_id} trade {self.trade_id}: last_qty must be > 0, got {self.last_qty}"
            )
        if self.order_side == OrderSide.NO_ORDER_SIDE:
            raise InvalidEventError(
                f"OrderFilled {self.client_order_id} trade {self.trade_id}: order_side must be BUY or SELL"
            )

    @property
    def is_buy(self) -> bool:
        return self.order_side == OrderSide.BUY

    @property
    def is_sell(self) -> bool:
        return self.order_side == OrderSide.SELL


ORDER_EVENT_TYPES: tuple[type[OrderEvent], ...] = (
    OrderInitialized,
    OrderDenied,
    OrderSubmitted,
    OrderAccepted,
    OrderRejected,
    OrderCanceled,
    OrderExpired,
    OrderTriggered,
    OrderPendingCancel,
    OrderCancelRejected,
    OrderFilled,
)


# -- position events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionEvent(Event):
    """A full snapshot of a position right after a fill changed it.

    A snapshot rather than a delta so a consumer (portfolio, dashboard, journal reader) needs no
    earlier event to make sense of this one.
    """

    trader_id: TraderId
    strategy_id: StrategyId
    instrument_id: InstrumentId
    position_id: PositionId
    account_id: AccountId
    opening_order_id: ClientOrderId
    closing_order_id: ClientOrderId | None
    entry: OrderSide
    side: PositionSide
    signed_qty: Decimal
    quantity: Quantity
    peak_qty: Quantity
    last_qty: Quantity
    last_px: Price
    currency: Currency
    avg_px_open: Decimal
    avg_px_close: Decimal | None
    realized_pnl: Money
    unrealized_pnl: Money
    ts_opened: int
    ts_closed: int | None
    duration_ns: int

    @classmethod
    def create(cls, position: "Position", fill: OrderFilled, unrealized_pnl: Money):
        """Snapshot ``position`` as it stands after ``fill`` (timestamps are the fill's)."""
        return cls(
            trader_id=position.trader_id,
            strategy_id=position.strategy_id,
            instrument_id=position.instrument_id,
            position_id=position.id,
            account_id=position.account_id,
            opening_order_id=position.opening_order_id,
            closing_order_id=position.closing_order_id,
            entry=position.entry,
            side=position.side,
            signed_qty=position.signed_qty,
            quantity=position.quantity,
            peak_qty=position.peak_qty,
            last_qty=fill.last_qty,
            last_px=fill.last_px,
            currency=position.settlement_currency,
            avg_px_open=position.avg_px_open,
            avg_px_close=position.avg_px_close,
            realized_pnl=position.realized_pnl,
            unrealized_pnl=unrealized_pnl,
            ts_opened=position.ts_opened,
            ts_closed=position.ts_closed,
            duration_ns=position.duration_ns,
            ts_event=fill.ts_event,
            ts_init=fill.ts_init,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened(PositionEvent):
    """The first fill of a position."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionChanged(PositionEvent):
    """A fill increased, reduced or flipped an open position."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(PositionEvent):
    """A fill brought the position to FLAT."""

    def _check_invariants(self) -> None:
        if self.side != PositionSide.FLAT or self.ts_closed is None:
            raise InvalidEventError(
                f"PositionClosed {self.position_id} needs side FLAT and ts_closed set, "
                f"got side {self.side.name}, ts_closed {self.ts_closed}; emit PositionChanged instead"
            )


POSITION_EVENT_TYPES: tuple[type[PositionEvent], ...] = (PositionOpened, PositionChanged, PositionClosed)


# -- account events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountBalance:
    """One currency's balance: ``total == locked + free``, all in the same currency."""

    total: Money
    locked: Money
    free: Money

    def __post_init__(self) -> None:
        _check_fields(self)
        currencies = {self.total.currency.code, self.locked.currency.code, self.free.currency.code}
        if len(currencies) != 1:
            raise InvalidAccountBalanceError(
                f"AccountBalance mixes currencies: total {self.total}, locked {self.locked}, free {self.free}; "
                f"keep one balance per currency"
            )
        if self.total.raw != self.locked.raw + self.free.raw:
            raise InvalidAccountBalanceError(
                f"AccountBalance does not add up: total {self.total} != locked {self.locked} + free {self.free}"
            )

    @property
    def currency(self) -> Currency:
        return self.total.currency

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountState(Event):
    """An account's balances at one moment; ``is_reported`` says the venue (not the node) computed it."""

    account_id: AccountId
    account_type: AccountType
    base_currency: Currency | None
    balances: tuple[AccountBalance, ...]
    is_reported: bool

    def _check_invariants(self) -> None:
        codes = [b.currency.code for b in self.balances]
        if len(codes) != len(set(codes)):
            raise InvalidEventError(
                f"AccountState {self.account_id} lists a currency twice ({', '.join(codes)}); "
                f"give one AccountBalance per currency"
            )
