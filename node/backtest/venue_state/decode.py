"""Records back into the exchange's objects (the inverse of ``format``'s encoders), checked.

``WorkingOrder.order`` is the node's ``Order``: a restore re-links it from ``orders`` (the node's
restored cache). An order still working at the venue must be there (``VenueStateError`` otherwise);
for a done order the venue never emits an event again, so ``restore`` links it if present, else
``None``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from node.backtest.matching import OrderStatusAtVenue, WorkingOrder
from node.backtest.venue_state.errors import VenueStateError, fail, venue_error
from node.model.data import Bar, BarType, QuoteTick, TradeTick
from node.model.enums import AggressorSide, OrderType, TimeInForce
from node.model.identifiers import ClientOrderId, InstrumentId, StrategyId, TradeId, VenueOrderId
from node.model.objects import Currency, Price, Quantity

_ORDER_TYPES = {m.value: m for m in OrderType}
_TIMES_IN_FORCE = {m.value: m for m in TimeInForce}
_STATUSES = {m.value: m for m in OrderStatusAtVenue}


class Decoder:
    """Turns a core map and seen records back into the exchange's objects; raises VenueStateError."""

    def __init__(self, exchange, orders: Mapping, context: str = "") -> None:
        self.exchange = exchange
        self.orders = orders
        self.context = context  # what is being decoded, for the messages
        currencies = {m.currency.code: m.currency for m in exchange.account._starting}
        if exchange.account.base_currency is not None:
            currencies[exchange.account.base_currency.code] = exchange.account.base_currency
        for book in exchange._books.values():
            inst = book.instrument
            currencies.setdefault(inst.quote_currency.code, inst.quote_currency)
            base = getattr(inst, "base_currency", None)
            if base is not None:
                currencies.setdefault(base.code, base)
        self.currencies = currencies
        self.instrument_ids = {str(iid): iid for iid in exchange._books}

    def fail(self, what: str) -> VenueStateError:
        return fail(self.exchange, self.context + what)

    @contextmanager
    def malformed(self, what: str) -> Iterator[None]:
        """Turns any other error inside into a VenueStateError: ``what`` (the error's words)."""
        try:
            yield
        except VenueStateError:
            raise
        except Exception as exc:  # a field of the wrong shape or type, a value out of range
            raise self.fail(f"{what} ({type(exc).__name__}: {exc})") from None

    def currency(self, code) -> Currency:
        try:
            return self.currencies[code]
        except (KeyError, TypeError):
            raise self.fail(
                f"currency {code!r} is neither a starting balance nor a currency of its instruments"
            ) from None

    def instrument_id(self, value) -> InstrumentId:
        iid = self.instrument_ids.get(value) if isinstance(value, str) else None
        if iid is None:
            known = ", ".join(self.instrument_ids) or "none"
            raise self.fail(f"instrument {value!r} is not traded on this venue (instruments: {known})")
        return iid

    def asset(self, kind, value):
        if kind == 0:
            return self.currency(value)
        if kind == 1:
            return self.instrument_id(value)
        raise self.fail(f"unknown asset kind {kind!r}")

    def working_order(
        self, record, book_iid=None, must_link: bool = True
    ) -> tuple[int, ClientOrderId, WorkingOrder | None]:
        index, coid_s, rec = record
        if not isinstance(index, int) or not isinstance(coid_s, str):
            raise self.fail(f"bad seen record {record!r}")
        if rec is None:
            coid = ClientOrderId(coid_s)
            if book_iid is not None:
                raise self.fail(f"working order {coid} has no order record")
            return index, coid, None
        (vid, sid, iid, is_buy, otype, price, trigger, qty, leaves, tif, queued, triggered, status) = rec
        # identifiers hash and compare as str: the plain str finds the node's order (whose id is valid)
        order = self.orders.get(coid_s)
        coid = ClientOrderId(coid_s) if order is None else order.client_order_id
        if order is None and must_link:
            raise venue_error(
                self.exchange,
                f"order {coid} is working at the venue but is missing from the node's restored orders; "
                "the node's store and the venue state disagree (were they written by different "
                "commits?); start the node with a fresh state dir",
            )
        instrument_id = self.instrument_id(iid)
        if book_iid is not None and instrument_id != book_iid:
            raise self.fail(f"order {coid} is for {iid} but works in the {book_iid} book")
        if order is not None and (
            order.instrument_id != instrument_id or order.strategy_id != sid or order.is_buy != is_buy
        ):
            raise venue_error(
                self.exchange,
                f"order {coid} in the node's restored orders "
                f"({order.strategy_id} {order.instrument_id} {'BUY' if order.is_buy else 'SELL'}) is not "
                f"the one the venue holds ({sid} {iid} {'BUY' if is_buy else 'SELL'}); start the node "
                "with a fresh state dir",
            )
        wo = WorkingOrder.__new__(WorkingOrder)
        wo.order = order
        wo.client_order_id = coid
        wo.venue_order_id = None if vid is None else VenueOrderId(vid)
        wo.strategy_id = StrategyId(sid) if order is None else order.strategy_id
        wo.instrument_id = instrument_id
        wo.is_buy = bool(is_buy)
        # enum members by value through a dict: as Enum(value), a fraction of the cost
        wo.order_type = _ORDER_TYPES[otype]
        wo.is_limit = wo.order_type is OrderType.LIMIT
        wo.price_raw = price
        wo.trigger_raw = trigger
        wo.quantity_raw = qty
        wo.leaves_raw = leaves
        wo.time_in_force = _TIMES_IN_FORCE[tif]
        wo.queued = bool(queued)
        wo.triggered = bool(triggered)
        wo.status = _STATUSES[status]
        if book_iid is not None and wo.status is not OrderStatusAtVenue.WORKING:
            raise self.fail(f"order {coid} is on the book but {wo.status.name}")
        if book_iid is None and wo.status is OrderStatusAtVenue.WORKING:
            raise self.fail(f"order {coid} is WORKING but on no book")
        return index, coid, wo

    @staticmethod
    def quote(iid, r) -> QuoteTick | None:
        if r is None:
            return None
        bid, ask, pp, bsz, bsp, asz, asp, ts_event, ts_init = r
        return QuoteTick(
            iid,
            Price.from_raw(bid, pp),
            Price.from_raw(ask, pp),
            Quantity.from_raw(bsz, bsp),
            Quantity.from_raw(asz, asp),
            ts_event,
            ts_init,
        )

    @staticmethod
    def trade(iid, r) -> TradeTick | None:
        if r is None:
            return None
        px, pp, size, sp, aggressor, trade_id, ts_event, ts_init = r
        return TradeTick(
            iid,
            Price.from_raw(px, pp),
            Quantity.from_raw(size, sp),
            AggressorSide(aggressor),
            TradeId(trade_id),
            ts_event,
            ts_init,
        )

    def bar(self, iid, r) -> Bar | None:
        if r is None:
            return None
        bar_type_s, o, h, low, c, pp, vol, vp, ts_event, ts_init = r
        bar_type = BarType.from_str(bar_type_s)
        if bar_type.instrument_id != iid:
            raise self.fail(f"bar type {bar_type_s} stored in the {iid} book")
        return Bar(
            bar_type,
            Price.from_raw(o, pp),
            Price.from_raw(h, pp),
            Price.from_raw(low, pp),
            Price.from_raw(c, pp),
            Quantity.from_raw(vol, vp),
            ts_event,
            ts_init,
        )


def done_order(exchange, client_order_id, record: tuple) -> WorkingOrder:
    """The WorkingOrder of a done order's stored order record (unlinked: ``order`` is ``None``).
    Raises VenueStateError."""
    dec = Decoder(exchange, {}, context=f"the stored record of done order {client_order_id}: ")
    with dec.malformed("it is malformed"):
        _, _, wo = dec.working_order((0, str(client_order_id), record), None, must_link=False)
    return wo
