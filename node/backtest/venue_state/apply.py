"""Applying a decoded core to a freshly built exchange: decode all of it first (``Decoder``),
touch the exchange only once all of it made sense.

The venue's identity and config must be those the state was stored with, and the venue fresh (never
traded, no market data); ``_seen`` is built by the caller's ``seen_of`` (from a full snapshot's
records or from the seen chunks), the rest of the core is the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from node.backtest.account import _NetPosition
from node.backtest.venue_state.decode import Decoder
from node.backtest.venue_state.errors import fail, venue_error
from node.backtest.venue_state.format import venue_identity
from node.model.events import AccountBalance
from node.model.identifiers import ClientOrderId
from node.model.objects import Money


def checked_core(exchange, core) -> dict:
    """``core`` if it is a map of this venue's identity and config and the venue is fresh."""
    if not isinstance(core, dict):
        raise fail(exchange, "the core record is not a map")
    for key, value in venue_identity(exchange).items():
        if core.get(key) != value:
            raise venue_error(
                exchange,
                f"the stored venue state is for {key} {core.get(key)!r}, this venue "
                f"has {value!r}; the venue's config changed since the state was stored: restore with the "
                "config it was stored with, or start the node with a fresh state dir",
            )
    busy = (
        exchange._seen
        or exchange._order_count
        or exchange._trade_count
        or exchange._last_reported is not None
        or any(
            b.orders or b.quote is not None or b.trade is not None or b.bar is not None
            for b in exchange._books.values()
        )
    )
    if busy:
        raise venue_error(
            exchange, "restore needs a freshly built venue, this one has already traded or seen market data"
        )
    return core


def apply(exchange, core: dict, orders: Mapping, seen_of) -> dict:
    """Restore ``core`` (as returned by ``checked_core``) and ``_seen`` as built by
    ``seen_of(decoder, seen count, working orders as [(arrival index, client order id,
    WorkingOrder)])``; returns the working orders (client order id -> (arrival index,
    WorkingOrder))."""
    dec = Decoder(exchange, orders)
    with dec.malformed("a record is malformed"):
        return _apply_checked(exchange, dec, core, seen_of)


def _apply_checked(exchange, dec: Decoder, core: dict, seen_of) -> dict:
    # Decode everything first; touch the exchange only once all of it made sense.
    working_orders: list = []  # (arrival index, client order id, WorkingOrder)
    books = []

    for entry in core["books"]:
        iid_s, pp, sp, quote, trade, bar, wos = entry
        iid = dec.instrument_id(iid_s)
        inst = exchange._books[iid].instrument
        if (pp, sp) != (inst.price_precision, inst.size_precision):
            raise dec.fail(
                f"{iid} was stored with price/size precision {pp}/{sp}, the instrument now has "
                f"{inst.price_precision}/{inst.size_precision}"
            )
        book_orders = []
        for record in wos:
            index, coid, wo = dec.working_order(record, iid, must_link=True)
            working_orders.append((index, coid, wo))
            book_orders.append(wo)
        books.append((iid, dec.quote(iid, quote), dec.trade(iid, trade), dec.bar(iid, bar), book_orders))
    working = {coid: (index, wo) for index, coid, wo in working_orders}
    if len(working) != len(working_orders):
        raise dec.fail("a working order appears twice")
    seen_count = core["seen_count"]
    if type(seen_count) is not int or seen_count < 0:
        raise dec.fail(f"bad seen count {seen_count!r}")
    seen = seen_of(dec, seen_count, working_orders)
    totals = {dec.asset(k, v): raw for k, v, raw in core["totals"]}
    locks = {ClientOrderId(c): (dec.asset(k, v), raw) for c, k, v, raw in core["locks"]}
    locked = {dec.asset(k, v): raw for k, v, raw in core["locked"]}
    positions = {}
    for iid_s, qty, avg, maint in core["positions"]:
        pos = _NetPosition()
        pos.qty_raw = qty
        try:
            pos.avg_px = Decimal(avg)
        except InvalidOperation:
            raise dec.fail(f"position average price {avg!r} is not a decimal") from None
        pos.maint_raw = maint
        positions[dec.instrument_id(iid_s)] = pos
    reported = core["last_reported"]
    if reported is not None:
        reported = tuple(
            AccountBalance(
                total=Money.from_raw(t, cur),
                locked=Money.from_raw(lk, cur),
                free=Money.from_raw(f, cur),
            )
            for cur, t, lk, f in ((dec.currency(code), t, lk, f) for code, t, lk, f in reported)
        )
    counts = (core["order_count"], core["trade_count"], core["maint"])
    if not all(type(n) is int and n >= 0 for n in counts[:2]) or type(counts[2]) is not int:
        raise dec.fail(f"bad counters {counts!r}")
    if not all(type(n) is int for n in [*totals.values(), *locked.values()] + [r for _, r in locks.values()]):
        raise dec.fail("a ledger amount is not an integer")

    # Apply.
    acct = exchange.account
    acct._totals = totals
    acct._locks = locks
    acct._locked = locked
    acct._positions = positions
    acct._maint_raw = counts[2]
    for iid, quote, trade, bar, book_orders in books:
        book = exchange._books[iid]
        book.quote, book.trade, book.bar = quote, trade, bar
        for wo in book_orders:
            book.add(wo)
    exchange._seen = seen
    exchange._order_count, exchange._trade_count = counts[0], counts[1]
    exchange._last_reported = reported
    return working
