"""Position: the running result of the fills on one instrument under one position id.

Why it is built only from fills: like an order, a position must be reproducible from stored events
after a crash, so ``apply(fill)`` is the one way to change it and the fills it has seen are kept.

Arithmetic. Quantities and average prices are ``Decimal`` (exact sums; divisions at the default
28 significant digits, identical on every run). Money is rounded half-even to the settlement
currency's precision *per fill*, the way a venue books each trade, so the realized PnL is the sum of
the amounts shown on the individual fills.

PnL (multiplier m from the instrument, settlement currency = the instrument's quote currency):

* long, closing q at px:  (px - avg_px_open) * q * m
* short, closing q at px: (avg_px_open - px) * q * m
* every fill's commission is subtracted from ``realized_pnl`` and added to ``commissions``; a
  commission in another currency than the settlement currency is refused (it cannot be netted
  without a conversion rate, and silently ignoring it would overstate PnL).

Crossing through zero (a flip): a fill larger than the open quantity on the other side first
closes the position (the closed part realizes PnL as above), and the remainder opens the opposite
side at the fill price. The new leg starts afresh: ``entry`` is the fill's side, ``avg_px_open`` the
fill price, ``avg_px_close`` None, ``opening_order_id`` the fill's order, ``ts_opened`` the fill's
time. ``realized_pnl``, ``commissions``, ``peak_qty`` and the fill history cover the whole life of
the object, so nothing realized before the flip is lost. An engine that wants one object per leg
splits the fill itself before applying it.

A closed (FLAT) position accepts no more fills: netting that reuses a position id creates a new
``Position`` for the next round trip. Netting vs hedging is the ExecutionEngine's business.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from node.model.enums import OrderSide, PositionSide
from node.model.errors import InvalidValueError
from node.model.events import OrderFilled, to_plain
from node.model.identifiers import TradeId
from node.model.instruments import Instrument
from node.model.objects import Money, Price, Quantity

_ZERO = Decimal(0)


class InvalidPositionError(InvalidValueError):
    """A fill that cannot be applied to this position (wrong instrument, id, currency, closed, ...)."""


class DuplicatePositionFillError(InvalidPositionError):
    """A fill whose trade id this position has already applied."""


class Position:
    """One position; open it with its first fill: ``Position(instrument, fill)``.

    Attributes are read-only by convention: only :meth:`apply` changes them. Positions compare by
    identity, not by id: a netting engine may reuse one id for successive round trips.
    """

    __slots__ = (
        "id",
        "trader_id",
        "strategy_id",
        "instrument_id",
        "account_id",
        "opening_order_id",
        "closing_order_id",
        "entry",
        "side",
        "signed_qty",
        "quantity",
        "peak_qty",
        "avg_px_open",
        "avg_px_close",
        "realized_pnl",
        "commissions",
        "settlement_currency",
        "multiplier",
        "size_precision",
        "last_px",
        "last_qty",
        "last_trade_id",
        "ts_opened",
        "ts_last",
        "ts_closed",
        "duration_ns",
        "events",
        "trade_ids",
        "_closed_qty",
    )

    def __init__(self, instrument: Instrument, fill: OrderFilled) -> None:
        if not isinstance(instrument, Instrument):
            raise InvalidPositionError(f"a Position needs an Instrument, got {type(instrument).__name__}")
        if type(fill) is not OrderFilled:
            raise InvalidPositionError(f"a Position is opened by an OrderFilled, got {type(fill).__name__}")
        if fill.position_id is None:
            raise InvalidPositionError(
                f"fill {fill.trade_id} has no position_id; the ExecutionEngine must assign one before opening"
            )
        if fill.instrument_id != instrument.id:
            raise InvalidPositionError(
                f"fill {fill.trade_id} is for {fill.instrument_id}, instrument is {instrument.id}"
            )
        currency = instrument.settlement_currency
        self.id = fill.position_id
        self.trader_id = fill.trader_id
        self.strategy_id = fill.strategy_id
        self.instrument_id = fill.instrument_id
        self.account_id = fill.account_id
        self.opening_order_id = fill.client_order_id
        self.closing_order_id = None
        self.entry = fill.order_side
        self.side = PositionSide.FLAT
        self.signed_qty = _ZERO
        self.size_precision = instrument.size_precision
        self.quantity = Quantity.from_raw(0, self.size_precision)
        self.peak_qty = self.quantity
        self.avg_px_open = fill.last_px.as_decimal()
        self.avg_px_close: Decimal | None = None
        self.settlement_currency = currency
        self.realized_pnl = Money.from_raw(0, currency)
        self.commissions = Money.from_raw(0, currency)
        self.multiplier = instrument.multiplier.as_decimal()
        self.last_px: Price = fill.last_px
        self.last_qty: Quantity = fill.last_qty
        self.last_trade_id: TradeId = fill.trade_id
        self.ts_opened = fill.ts_event
        self.ts_last = fill.ts_event
        self.ts_closed: int | None = None
        self.duration_ns = 0
        self.events: list[OrderFilled] = []
        self.trade_ids: list[TradeId] = []
        self._closed_qty = _ZERO  # quantity closed in the current leg, weights avg_px_close
        self.apply(fill)

    # -- state ----------------------------------------------------------------------------------

    def apply(self, fill: OrderFilled) -> None:
        """Apply a fill: open, increase, reduce, close or flip (see the module docstring)."""
        self._check(fill)
        qty = fill.last_qty.as_decimal()
        px = fill.last_px.as_decimal()
        signed = qty if fill.order_side == OrderSide.BUY else -qty
        current = self.signed_qty

        if current == 0 or (current > 0) == (signed > 0):
            self._increase(qty, px, abs(current))
        else:
            closing = min(qty, abs(current))
            self._realize(closing, px, long=current > 0)
            remaining = current + signed
            if remaining == 0:
                self.closing_order_id = fill.client_order_id
                self.ts_closed = fill.ts_event
                self.duration_ns = fill.ts_event - self.ts_opened
            elif (remaining > 0) != (current > 0):
                self._start_leg(fill)

        self.signed_qty = current + signed
        self.side = _side_of(self.signed_qty)
        self.quantity = Quantity(abs(self.signed_qty), self.size_precision)
        if self.quantity > self.peak_qty:
            self.peak_qty = self.quantity
        if fill.commission.raw:  # a zero commission may be in any currency
            self.realized_pnl = self.realized_pnl - fill.commission
            self.commissions = self.commissions + fill.commission
        self.last_px = fill.last_px
        self.last_qty = fill.last_qty
        self.last_trade_id = fill.trade_id
        self.ts_last = fill.ts_event
        self.events.append(fill)
        self.trade_ids.append(fill.trade_id)

    def _check(self, fill: OrderFilled) -> None:
        """Refuse a fill that does not belong here, before anything changes."""
        if type(fill) is not OrderFilled:
            raise InvalidPositionError(
                f"position {self.id}: apply() takes an OrderFilled, got {type(fill).__name__}"
            )
        if fill.instrument_id != self.instrument_id:
            raise InvalidPositionError(
                f"position {self.id} is on {self.instrument_id}; fill {fill.trade_id} is on {fill.instrument_id}"
            )
        if fill.position_id is not None and fill.position_id != self.id:
            raise InvalidPositionError(
                f"fill {fill.trade_id} is for position {fill.position_id}, not {self.id}; route it by position_id"
            )
        if fill.trade_id in self.trade_ids:
            raise DuplicatePositionFillError(
                f"position {self.id}: trade {fill.trade_id} was already applied; drop the duplicate"
            )
        if self.events and self.side == PositionSide.FLAT:
            raise InvalidPositionError(
                f"position {self.id} is closed; open a new Position for fill {fill.trade_id}"
            )
        if fill.commission.raw and fill.commission.currency != self.settlement_currency:
            raise InvalidPositionError(
                f"position {self.id}: commission {fill.commission} is not in the settlement currency "
                f"{self.settlement_currency}; convert it before applying the fill"
            )
        if (
            Quantity(fill.last_qty.as_decimal(), self.size_precision).as_decimal()
            != fill.last_qty.as_decimal()
        ):
            raise InvalidPositionError(
                f"position {self.id}: fill quantity {fill.last_qty} is finer than the instrument's size "
                f"precision {self.size_precision}; round it with instrument.make_qty()"
            )

    def _increase(self, qty: Decimal, px: Decimal, open_qty: Decimal) -> None:
        self.avg_px_open = (self.avg_px_open * open_qty + px * qty) / (open_qty + qty)

    def _realize(self, closing: Decimal, px: Decimal, long: bool) -> None:
        diff = px - self.avg_px_open if long else self.avg_px_open - px
        self.realized_pnl = self.realized_pnl + self._money(diff * closing * self.multiplier)
        if self.avg_px_close is None:
            self.avg_px_close = px
        else:
            total = self._closed_qty + closing
            self.avg_px_close = (self.avg_px_close * self._closed_qty + px * closing) / total
        self._closed_qty += closing

    def _start_leg(self, fill: OrderFilled) -> None:
        """The remainder of a flip opens the opposite side at the fill price."""
        self.entry = fill.order_side
        self.avg_px_open = fill.last_px.as_decimal()
        self.avg_px_close = None
        self._closed_qty = _ZERO
        self.opening_order_id = fill.client_order_id
        self.closing_order_id = None
        self.ts_opened = fill.ts_event
        self.ts_closed = None
        self.duration_ns = 0

    def _money(self, value: Decimal) -> Money:
        return Money(value, self.settlement_currency)  # half-even to the currency precision

    # -- queries --------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.side != PositionSide.FLAT

    @property
    def is_closed(self) -> bool:
        return self.side == PositionSide.FLAT

    @property
    def is_long(self) -> bool:
        return self.side == PositionSide.LONG

    @property
    def is_short(self) -> bool:
        return self.side == PositionSide.SHORT

    def is_opposite_side(self, side: OrderSide) -> bool:
        """True if an order on ``side`` would reduce this position."""
        return (self.is_long and side == OrderSide.SELL) or (self.is_short and side == OrderSide.BUY)

    def unrealized_pnl(self, last: Price) -> Money:
        """PnL if the open quantity were closed at ``last`` (zero when flat); commissions excluded."""
        if self.signed_qty == 0:
            return Money.from_raw(0, self.settlement_currency)
        px = last.as_decimal()
        diff = px - self.avg_px_open if self.signed_qty > 0 else self.avg_px_open - px
        return self._money(diff * abs(self.signed_qty) * self.multiplier)

    def total_pnl(self, last: Price) -> Money:
        """Realized (net of commissions) plus unrealized at ``last``."""
        return self.realized_pnl + self.unrealized_pnl(last)

    def notional_value(self, last: Price) -> Money:
        """Open quantity x ``last`` x multiplier, in the settlement currency."""
        return self._money(abs(self.signed_qty) * last.as_decimal() * self.multiplier)

    def to_dict(self) -> dict[str, Any]:
        """A plain-value snapshot (JSON/msgpack-friendly)."""
        return {
            "type": "Position",
            "position_id": to_plain(self.id),
            "trader_id": to_plain(self.trader_id),
            "strategy_id": to_plain(self.strategy_id),
            "instrument_id": to_plain(self.instrument_id),
            "account_id": to_plain(self.account_id),
            "opening_order_id": to_plain(self.opening_order_id),
            "closing_order_id": to_plain(self.closing_order_id),
            "entry": to_plain(self.entry),
            "side": to_plain(self.side),
            "signed_qty": to_plain(self.signed_qty),
            "quantity": to_plain(self.quantity),
            "peak_qty": to_plain(self.peak_qty),
            "avg_px_open": to_plain(self.avg_px_open),
            "avg_px_close": to_plain(self.avg_px_close),
            "realized_pnl": to_plain(self.realized_pnl),
            "commissions": to_plain(self.commissions),
            "currency": to_plain(self.settlement_currency),
            "last_px": to_plain(self.last_px),
            "last_trade_id": to_plain(self.last_trade_id),
            "fill_count": len(self.events),
            "ts_opened": self.ts_opened,
            "ts_last": self.ts_last,
            "ts_closed": self.ts_closed,
            "duration_ns": self.duration_ns,
        }

    def __repr__(self) -> str:
        return f"Position({self.id} {self.instrument_id} {self.side.name} {self.quantity})"


def _side_of(signed_qty: Decimal) -> PositionSide:
    if signed_qty > 0:
        return PositionSide.LONG
    if signed_qty < 0:
        return PositionSide.SHORT
    return PositionSide.FLAT
