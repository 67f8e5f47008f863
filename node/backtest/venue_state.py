"""The simulated venue's own state as bytes: snapshot it, restore it into a freshly built venue.

Why: in sandbox the ``SimulatedExchange`` lives in the node's process. A node killed with -9 loses
its venue too, and the venue must come back exactly as it was at the node's last store commit
(same working orders, ledger, counters, and the client order ids it has seen, so that a command
retried after the restart is still refused as a duplicate). The node stores these bytes in the
same transaction as its own state; it never looks inside them.

Two ways to take the state, one format of record:

* ``snapshot(exchange) -> bytes`` / ``restore(exchange, data, orders)``: everything in one blob.
  Its size and cost grow with the number of client order ids the venue has ever seen.
* ``StateLog(exchange).blobs()`` / ``restore_blobs(exchange, blobs, orders)``: the same state as
  ``{key: bytes}``, cheap enough for every store commit. ``"exchange"`` (the *core*: counters,
  ledger, market data, the working orders) is rewritten each time, at a cost independent of the
  history; the seen ids of orders that are *done* at the venue (rejected, filled, canceled) never
  change again, so they go into append-only chunks ``"seen.000000"``, ``"seen.000001"``, ... of
  ``SEEN_CHUNK`` records. ``blobs()`` returns the core plus only the chunks that changed since its
  previous call: the caller upserts every key it gets and keeps the others (``blobs(full=True)``
  returns all of them, e.g. after a commit that failed). The core names how many chunks are
  valid; a restore reads exactly those and ignores any other key.

Format (msgpack, never pickle; ``FORMAT_VERSION`` first so a future format can be read or refused):

* full snapshot: ``[version, "full", core, [seen record, ...]]``
* core blob: ``[version, "core", core]``
* chunk blob: a stream of msgpack objects: ``[version, "seen", chunk number, record count]``, then
  that many seen records (records are packed once, when the order is done, and concatenated).
* ``core``: a map with the venue's identity and config (checked on restore), counters, the last
  reported balances, the ledger, and per instrument: precisions, latest quote/trade/bar and the
  working orders in time priority.
* seen record: ``[arrival index, client order id, order record or None (rejected)]``; the arrival
  index restores ``_seen`` in arrival order. Order record: every ``WorkingOrder`` field, raw ints.

``WorkingOrder.order`` is the node's ``Order``: a restore re-links it from ``orders`` (the node's
restored cache). An order still working at the venue must be there (``VenueStateError`` otherwise);
for a done order the venue never emits an event again, so ``restore`` links it if present, else
``None``.

``restore_blobs`` is on the critical path of a node restart, so its cost follows what is live, plus
a few passes in C per seen id: the working orders are decoded in full, but a done order stays in
``_seen`` (under a plain ``str`` key) as its stored order record, a tuple, until the venue first
needs more than its id, i.e. to word an ``OrderCancelRejected``: ``done_order()`` decodes it then
(unlinked: ``order`` is ``None``), and a damaged record raises ``VenueStateError`` at that point.
What is checked at restore, in bulk: chunk headers, counts and exact lengths, the shape and types of
each seen record, every arrival index once, no client order id twice. Closed chunks are kept as the
stored bytes, never re-packed; only the open chunk's records are.

Anything that does not add up (bad bytes, another version, another venue, an instrument the venue
does not trade or of another precision, ids missing or twice) raises ``VenueStateError``.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from itertools import chain, islice
from operator import itemgetter

import msgpack

from node.backtest.account import _NetPosition
from node.backtest.matching import OrderStatusAtVenue, WorkingOrder
from node.model.data import Bar, BarType, QuoteTick, TradeTick
from node.model.enums import AggressorSide, OrderType, TimeInForce
from node.model.events import AccountBalance
from node.model.identifiers import ClientOrderId, InstrumentId, StrategyId, TradeId, VenueOrderId
from node.model.objects import Currency, Money, Price, Quantity

FORMAT_VERSION = 1
"""Version of the venue-state format; bump it when any record changes shape."""

SEEN_CHUNK = 256
"""Seen-id records per chunk blob (the open chunk is rewritten at each ``blobs()`` that adds to it)."""

CORE_KEY = "exchange"
SEEN_PREFIX = "seen."

_ADVICE = (
    "the stored venue state does not belong to this venue or is damaged; if the node's store is "
    "otherwise intact, restore it from a backup, or start the node with a fresh state dir"
)


class VenueStateError(RuntimeError):
    """Stored venue state that cannot be restored (corrupt, another version, another venue)."""


def seen_key(chunk: int) -> str:
    return f"{SEEN_PREFIX}{chunk:06d}"


# -- encoding ------------------------------------------------------------------------------------


def _order_record(wo: WorkingOrder) -> list:
    return [
        wo.venue_order_id,
        wo.strategy_id,
        wo.instrument_id,
        wo.is_buy,
        int(wo.order_type),
        wo.price_raw,
        wo.trigger_raw,
        wo.quantity_raw,
        wo.leaves_raw,
        int(wo.time_in_force),
        wo.queued,
        wo.triggered,
        int(wo.status),
    ]


def _seen_record(index: int, client_order_id, wo: WorkingOrder | tuple | None) -> list:
    # a tuple: a done order restored by restore_blobs and not decoded since: its stored record
    return [index, client_order_id, wo if wo is None or type(wo) is tuple else _order_record(wo)]


def _quote_record(q: QuoteTick | None):
    if q is None:
        return None
    return [
        q.bid_price.raw,
        q.ask_price.raw,
        q.bid_price.precision,
        q.bid_size.raw,
        q.bid_size.precision,
        q.ask_size.raw,
        q.ask_size.precision,
        q.ts_event,
        q.ts_init,
    ]


def _trade_record(t: TradeTick | None):
    if t is None:
        return None
    return [
        t.price.raw,
        t.price.precision,
        t.size.raw,
        t.size.precision,
        int(t.aggressor_side),
        t.trade_id,
        t.ts_event,
        t.ts_init,
    ]


def _bar_record(b: Bar | None):
    if b is None:
        return None
    return [
        str(b.bar_type),
        b.open.raw,
        b.high.raw,
        b.low.raw,
        b.close.raw,
        b.open.precision,
        b.volume.raw,
        b.volume.precision,
        b.ts_event,
        b.ts_init,
    ]


def _asset(asset) -> list:
    """[0, code] for a currency, [1, instrument id] for shares of an instrument."""
    return [0, asset.code] if isinstance(asset, Currency) else [1, asset]


def _core(exchange, index_of, seen_count: int, chunks: int) -> dict:
    """The venue's state except the records of done orders; ``index_of(coid)`` = arrival index."""
    acct = exchange.account
    books = []
    for iid, book in exchange._books.items():
        inst = book.instrument
        books.append(
            [
                iid,
                inst.price_precision,
                inst.size_precision,
                _quote_record(book.quote),
                _trade_record(book.trade),
                _bar_record(book.bar),
                [_seen_record(index_of(wo.client_order_id), wo.client_order_id, wo) for wo in book.orders],
            ]
        )
    reported = exchange._last_reported
    return {
        "venue": exchange.venue,
        "account_id": exchange.account_id,
        "oms_type": int(exchange.oms_type),
        "account_type": int(acct.account_type),
        "base_currency": None if acct.base_currency is None else acct.base_currency.code,
        "order_count": exchange._order_count,
        "trade_count": exchange._trade_count,
        "seen_count": seen_count,
        "seen_chunks": chunks,
        "last_reported": None
        if reported is None
        else [[b.currency.code, b.total.raw, b.locked.raw, b.free.raw] for b in reported],
        "totals": [[*_asset(a), raw] for a, raw in acct._totals.items()],
        "locks": [[coid, *_asset(a), raw] for coid, (a, raw) in acct._locks.items()],
        "locked": [[*_asset(a), raw] for a, raw in acct._locked.items()],
        "positions": [[iid, p.qty_raw, str(p.avg_px), p.maint_raw] for iid, p in acct._positions.items()],
        "maint": acct._maint_raw,
        "books": books,
    }


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def snapshot(exchange) -> bytes:
    """The whole venue state in one blob (cost grows with the number of seen client order ids)."""
    index = {coid: i for i, coid in enumerate(exchange._seen)}
    working = {wo.client_order_id for book in exchange._books.values() for wo in book.orders}
    seen = [
        _seen_record(i, coid, wo)
        for i, (coid, wo) in enumerate(exchange._seen.items())
        if coid not in working
    ]
    core = _core(exchange, index.__getitem__, len(index), 0)
    return _pack([FORMAT_VERSION, "full", core, seen])


class StateLog:
    """Incremental state of one exchange: ``blobs()`` at each commit (see the module docstring).

    It reads ``exchange._seen`` from where it stopped last time (a dict keeps insertion order and
    the venue only ever adds to it), so the venue's per-order path is untouched: no hook, no copy.
    """

    def __init__(self, exchange, restored=None) -> None:
        self._exchange = exchange
        self._cursor = 0  # entries of exchange._seen examined so far
        self._working: dict = {}  # client order id -> (arrival index, WorkingOrder) while WORKING
        self._closed: list[bytes] = []  # full chunks, encoded
        self._open: list[bytes] = []  # packed records of the chunk being filled
        self._dirty: set[int] = set()  # chunks changed since the last blobs()
        if restored is not None:  # (working, closed chunk blobs as stored, open chunk's records packed)
            self._working, self._closed, self._open = restored
            self._cursor = len(exchange._seen)

    @property
    def chunks(self) -> int:
        return len(self._closed) + (1 if self._open else 0)

    def _append(self, packed: bytes) -> None:
        self._open.append(packed)
        chunk = len(self._closed)
        self._dirty.add(chunk)
        if len(self._open) == SEEN_CHUNK:
            self._closed.append(_chunk_blob(chunk, self._open))
            self._open = []

    def _poll(self) -> None:
        """Move seen ids that are done at the venue into the chunks."""
        seen = self._exchange._seen
        new = len(seen) - self._cursor
        if new < 0:
            raise VenueStateError(
                f"venue {self._exchange.venue}: its seen client order ids shrank (reset?) under a StateLog"
            )
        if new:
            tail = list(islice(reversed(seen.items()), new))
            tail.reverse()
            for i, (coid, wo) in enumerate(tail, self._cursor):
                if wo is not None and wo.status is OrderStatusAtVenue.WORKING:
                    self._working[coid] = (i, wo)
                else:
                    self._append(_pack(_seen_record(i, coid, wo)))
            self._cursor = len(seen)
        done = [
            coid for coid, (_, wo) in self._working.items() if wo.status is not OrderStatusAtVenue.WORKING
        ]
        if done:
            done.sort(key=lambda coid: self._working[coid][0])
            for coid in done:
                i, wo = self._working.pop(coid)
                self._append(_pack(_seen_record(i, coid, wo)))

    def blobs(self, full: bool = False) -> dict[str, bytes]:
        """The core plus the seen chunks changed since the last call (all of them if ``full``)."""
        self._poll()
        working = self._working
        core = _core(self._exchange, lambda coid: working[coid][0], self._cursor, self.chunks)
        out = {CORE_KEY: _pack([FORMAT_VERSION, "core", core])}
        chunks = range(self.chunks) if full else sorted(self._dirty)
        closed = len(self._closed)
        for chunk in chunks:
            out[seen_key(chunk)] = self._closed[chunk] if chunk < closed else _chunk_blob(chunk, self._open)
        self._dirty.clear()
        return out


def _chunk_blob(chunk: int, records: list[bytes]) -> bytes:
    return _pack([FORMAT_VERSION, "seen", chunk, len(records)]) + b"".join(records)


# -- decoding ------------------------------------------------------------------------------------


def _fail(exchange, what: str) -> VenueStateError:
    return VenueStateError(f"venue {exchange.venue}: cannot restore its stored state: {what}; {_ADVICE}")


def _unpack(exchange, data, what: str):
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _fail(exchange, f"{what} is {type(data).__name__}, not bytes")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise _fail(exchange, f"{what} is not valid msgpack ({type(exc).__name__}: {exc})") from None


def _check_header(exchange, obj, kind: str, what: str, length: int):
    if not isinstance(obj, list | tuple) or not obj:
        raise _fail(exchange, f"{what} is not a venue-state record")
    if obj[0] != FORMAT_VERSION:
        raise _fail(
            exchange,
            f"{what} has format version {obj[0]!r}, this venue reads version {FORMAT_VERSION}",
        )
    if len(obj) != length or obj[1] != kind:
        raise _fail(exchange, f"{what} is not a {kind!r} record of length {length}")


def _read_chunk(exchange, chunk: int, data) -> list:
    """The chunk's seen records, as tuples (cheaper to build than lists)."""
    what = f"seen chunk {seen_key(chunk)!r}"
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _fail(exchange, f"{what} is {type(data).__name__}, not bytes")
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, use_list=False)
    unpacker.feed(data)
    try:
        header = unpacker.unpack()
        records = list(unpacker)
    except msgpack.OutOfData:
        raise _fail(exchange, f"{what} is empty") from None
    except Exception as exc:
        raise _fail(exchange, f"{what} is not valid msgpack ({type(exc).__name__}: {exc})") from None
    _check_header(exchange, header, "seen", what, 4)
    _, _, number, count = header
    if number != chunk or count != len(records):
        raise _fail(
            exchange,
            f"{what} says chunk {number!r} of {count!r} records but holds {len(records)} (truncated?)",
        )
    if unpacker.tell() != len(data):  # a closed chunk's bytes are kept as they are: they must be exact
        raise _fail(exchange, f"{what} ends in {len(data) - unpacker.tell()} bytes that are no record")
    return records


def _check_fresh(exchange, core: dict) -> None:
    acct = exchange.account
    mine = {
        "venue": str(exchange.venue),
        "account_id": str(exchange.account_id),
        "oms_type": int(exchange.oms_type),
        "account_type": int(acct.account_type),
        "base_currency": None if acct.base_currency is None else acct.base_currency.code,
    }
    for key, value in mine.items():
        if core.get(key) != value:
            raise VenueStateError(
                f"venue {exchange.venue}: the stored venue state is for {key} {core.get(key)!r}, this venue "
                f"has {value!r}; the venue's config changed since the state was stored: restore with the "
                "config it was stored with, or start the node with a fresh state dir"
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
        raise VenueStateError(
            f"venue {exchange.venue}: restore needs a freshly built venue, this one has already traded "
            "or seen market data"
        )


_ORDER_TYPES = {m.value: m for m in OrderType}
_TIMES_IN_FORCE = {m.value: m for m in TimeInForce}
_STATUSES = {m.value: m for m in OrderStatusAtVenue}


class _Decoder:
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
        return _fail(self.exchange, self.context + what)

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
            raise VenueStateError(
                f"venue {self.exchange.venue}: order {coid} is working at the venue but is missing from "
                "the node's restored orders; the node's store and the venue state disagree (were they "
                "written by different commits?); start the node with a fresh state dir"
            )
        instrument_id = self.instrument_id(iid)
        if book_iid is not None and instrument_id != book_iid:
            raise self.fail(f"order {coid} is for {iid} but works in the {book_iid} book")
        if order is not None and (
            order.instrument_id != instrument_id or order.strategy_id != sid or order.is_buy != is_buy
        ):
            raise VenueStateError(
                f"venue {self.exchange.venue}: order {coid} in the node's restored orders "
                f"({order.strategy_id} {order.instrument_id} {'BUY' if order.is_buy else 'SELL'}) is not "
                f"the one the venue holds ({sid} {iid} {'BUY' if is_buy else 'SELL'}); start the node "
                "with a fresh state dir"
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


def _take(seq, order: list) -> tuple:
    """``seq``'s items in ``order``, picked in C (``itemgetter`` of 2+ items returns a tuple)."""
    return itemgetter(*order)(seq) if len(order) > 1 else tuple(seq[i] for i in order)


def _done_columns(dec: _Decoder, records: list) -> tuple:
    """(arrival indexes, client order ids, order records or None) of done orders' seen records.

    Checked in bulk, by zip/map/set running in C: no Python code runs per record, a restart must
    not pay microseconds per seen id. What is checked: each record is a triple of an int
    (arrival index), a str (client order id) and a tuple or None (order record); with the caller's
    checks (every arrival index once, no id twice), the seen ids are exactly the stored ones. An
    order record's fields are checked when ``done_order()`` decodes it, a client order id's text
    when a ``ClientOrderId`` is made of it (``done_order()``, ``seen_client_order_ids()``).
    """
    if not records:
        return (), (), ()
    try:
        indexes, coids, values = zip(*records, strict=True)
    except (TypeError, ValueError):  # a record that is not a sequence, or not of 3 items
        bad = next((r for r in records if type(r) is not tuple or len(r) != 3), records[0])
        raise dec.fail(f"bad seen record {bad!r}") from None
    value_types = {tuple, type(None)}
    if (
        not set(map(type, indexes)) <= {int}
        or not set(map(type, coids)) <= {str}
        or not set(map(type, values)) <= value_types
    ):
        bad = next(
            r
            for r in records
            if type(r) is not tuple or (type(r[0]), type(r[1])) != (int, str) or type(r[2]) not in value_types
        )
        raise dec.fail(f"bad seen record {bad!r}")
    return indexes, coids, values


def done_order(exchange, client_order_id, record: tuple) -> WorkingOrder:
    """The WorkingOrder of a done order that ``restore_blobs`` left in ``_seen`` as its stored order
    record (decoded on first use; unlinked: ``order`` is ``None``). Raises VenueStateError."""
    dec = _Decoder(exchange, {}, context=f"the stored record of done order {client_order_id}: ")
    try:
        _, _, wo = dec.working_order((0, str(client_order_id), record), None, must_link=False)
    except VenueStateError:
        raise
    except Exception as exc:  # a field of the wrong shape or type, a value out of range
        raise dec.fail(f"it is malformed ({type(exc).__name__}: {exc})") from None
    return wo


def _apply(exchange, core, seen_records: list, orders: Mapping, lazy: bool = False) -> dict:
    """Restore ``core`` + the seen records of done orders; returns the working orders for StateLog
    (client order id -> (arrival index, WorkingOrder)). ``lazy``: done orders stay as their order
    records (tuples) in ``_seen``, see ``done_order()``; else they are decoded now."""
    if not isinstance(core, dict):
        raise _fail(exchange, "the core record is not a map")
    _check_fresh(exchange, core)
    dec = _Decoder(exchange, orders)
    try:
        return _apply_checked(exchange, dec, core, seen_records, lazy)
    except VenueStateError:
        raise
    except Exception as exc:  # a field of the wrong shape or type, a value out of range
        raise dec.fail(f"a record is malformed ({type(exc).__name__}: {exc})") from None


def _apply_checked(exchange, dec: _Decoder, core: dict, seen_records: list, lazy: bool) -> dict:
    # Decode everything first; touch the exchange only once all of it made sense.
    indexes: list = []  # seen ids as three columns: arrival index, client order id, _seen value
    coids: list = []
    values: list = []
    working: dict = {}
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
            indexes.append(index)
            coids.append(coid)
            values.append(wo)
            working[coid] = (index, wo)
            book_orders.append(wo)
        books.append((iid, dec.quote(iid, quote), dec.trade(iid, trade), dec.bar(iid, bar), book_orders))
    if lazy:
        done_indexes, done_coids, done_values = _done_columns(dec, seen_records)
        indexes.extend(done_indexes)
        coids.extend(done_coids)
        values.extend(done_values)
    else:
        for record in seen_records:
            index, coid, wo = dec.working_order(record, None, must_link=False)
            indexes.append(index)
            coids.append(coid)
            values.append(wo)
    # Arrival order, at C speed (the done records come mostly in order already: timsort runs).
    order = sorted(range(len(indexes)), key=indexes.__getitem__)
    arrival = _take(indexes, order)
    seen_count = core["seen_count"]
    if arrival != tuple(range(seen_count)):
        twice = next((i for i in range(len(arrival) - 1) if arrival[i] == arrival[i + 1]), None)
        if twice is not None:
            raise dec.fail(
                f"arrival index {arrival[twice]} appears twice "
                f"({coids[order[twice]]} and {coids[order[twice + 1]]})"
            )
        missing = seen_count - len(arrival)
        raise dec.fail(
            f"it names {seen_count} seen client order ids but holds {len(arrival)} "
            f"({'missing ' + str(missing) if missing > 0 else 'others out of range'}: truncated or mixed up)"
        )
    seen = dict(zip(_take(coids, order), _take(values, order), strict=True))
    if len(seen) != len(order):
        raise dec.fail("a client order id appears twice")
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


def restore(exchange, data: bytes, orders: Mapping) -> None:
    """Restore a ``snapshot()`` into a freshly built ``exchange`` (same venue, config, instruments)."""
    obj = _unpack(exchange, data, "the snapshot")
    _check_header(exchange, obj, "full", "the snapshot", 4)
    if not isinstance(obj[3], list):
        raise _fail(exchange, "the snapshot's seen records are not a list")
    _apply(exchange, obj[2], obj[3], orders)


def restore_blobs(exchange, blobs: Mapping[str, bytes], orders: Mapping) -> StateLog:
    """Restore ``StateLog.blobs()`` output (all stored keys) into a freshly built ``exchange``.

    Returns the StateLog that carries on from the restored state (its next ``blobs()`` adds to the
    same chunks).
    """
    # A restore allocates tens of thousands of small containers (the msgpack objects of the core
    # and of every seen record, the working orders) that all stay alive: with the collector on,
    # they trigger young collections and, as the survivors pile up, full (gen-2) ones that walk the
    # whole heap again and again: several times the cost of the restore itself. Nothing here makes
    # a reference cycle, so there is nothing to collect; the collector's previous state (enabled or
    # not) is put back whatever happens.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _restore_blobs(exchange, blobs, orders)
    finally:
        if gc_was_enabled:
            gc.enable()


def _restore_blobs(exchange, blobs: Mapping[str, bytes], orders: Mapping) -> StateLog:
    if CORE_KEY not in blobs:
        raise _fail(exchange, f"no {CORE_KEY!r} blob among the stored keys {sorted(blobs)}")
    obj = _unpack(exchange, blobs[CORE_KEY], f"the {CORE_KEY!r} blob")
    _check_header(exchange, obj, "core", f"the {CORE_KEY!r} blob", 3)
    core = obj[2]
    if not isinstance(core, dict):
        raise _fail(exchange, "the core record is not a map")
    _check_fresh(exchange, core)  # another venue or a used one: say so before reading the chunks
    chunks = core.get("seen_chunks")
    if type(chunks) is not int or chunks < 0:
        raise _fail(exchange, f"the {CORE_KEY!r} blob has no valid seen chunk count")
    parts = []
    for chunk in range(chunks):
        key = seen_key(chunk)
        if key not in blobs:
            raise _fail(exchange, f"seen chunk {key!r} is missing ({chunks} expected)")
        part = _read_chunk(exchange, chunk, blobs[key])
        if chunk < chunks - 1 and len(part) != SEEN_CHUNK:
            raise _fail(exchange, f"seen chunk {key!r} holds {len(part)} records, a full one {SEEN_CHUNK}")
        parts.append(part)
    working = _apply(exchange, core, list(chain.from_iterable(parts)), orders, lazy=True)
    # Closed chunks never change again: the StateLog keeps their stored bytes. Only the open (last,
    # not full) chunk's records are packed again, for it to append to.
    closed = len(parts) - 1 if parts and len(parts[-1]) < SEEN_CHUNK else len(parts)
    closed_blobs = [bytes(blobs[seen_key(chunk)]) for chunk in range(closed)]
    open_records = [_pack(record) for record in parts[closed]] if closed < len(parts) else []
    return StateLog(exchange, restored=(working, closed_blobs, open_records))


__all__ = [
    "CORE_KEY",
    "FORMAT_VERSION",
    "SEEN_CHUNK",
    "SEEN_PREFIX",
    "StateLog",
    "VenueStateError",
    "done_order",
    "restore",
    "restore_blobs",
    "seen_key",
    "snapshot",
]
