"""The simulated venue's own state as bytes: snapshot it, restore it into a freshly built venue.

Why: in sandbox the ``SimulatedExchange`` lives in the node's process. A node killed with -9 loses
its venue too, and the venue must come back exactly as it was at the node's last store commit
(same working orders, ledger, counters, and the client order ids it has seen, so that a command
retried after the restart is still refused as a duplicate). The node stores these bytes in the
same transaction as its own state; it never looks inside them.

Two ways to take the state:

* ``snapshot(exchange) -> bytes`` / ``restore(exchange, data, orders)``: everything in one blob.
  Its size and cost grow with the number of client order ids the venue has ever seen.
* ``StateLog(exchange).blobs()`` / ``restore_blobs(exchange, blobs, orders)``: the same state as
  ``{key: bytes}``, cheap enough for every store commit. ``"exchange"`` (the *core*: counters,
  ledger, market data, the working orders) is rewritten each time, at a cost independent of the
  history; the seen ids never change, nor do the records of orders that are *done* at the venue
  (rejected, filled, canceled), so they go into append-only chunks ``"seen.000000"``,
  ``"seen.000001"``, ... of ``SEEN_CHUNK`` entries. ``blobs()`` returns the core plus only the
  chunks that changed since its previous call: the caller upserts every key it gets and keeps the
  others (``blobs(full=True)`` returns all of them, e.g. after a commit that failed). The core
  names how many chunks are valid; a restore reads exactly those and ignores any other key.

Format (msgpack, never pickle; ``FORMAT_VERSION`` first so a future format can be read or refused;
state of another version is refused, never migrated: it is sandbox state):

* full snapshot: ``[version, "full", core, [seen record, ...]]``; seen record: ``[arrival index,
  client order id, order record or None (rejected)]``, for every done order.
* core blob: ``[version, "core", core]``
* ``core``: a map with the venue's identity and config (checked on restore), counters, the number
  of seen ids and of chunks, the last reported balances, the ledger, and per instrument:
  precisions, latest quote/trade/bar and the working orders in time priority (as seen records).
* order record: every ``WorkingOrder`` field, raw ints.
* chunk blob: a msgpack stream: a header ``[version, "seen", chunk number, head size, records
  size]``, the head ``[arrived, late, pending]`` (head size bytes), then the records (records size
  bytes). ``arrived``: the client order ids (strings) that arrived while the chunk was the open
  one, in arrival order: the chunks' ``arrived`` arrays end to end are the seen ids in arrival
  order (an id's arrival index is its position there). ``late``: the ids of orders that arrived in
  an earlier chunk and were done while this one was open. The records: one packed value per id of
  ``arrived`` then of ``late``: the order record, ``None`` (rejected) or ``False`` for an arrived
  order still working when the chunk closed (its record is then in a later chunk's ``late`` part,
  or it is still working and in the core); ``pending`` counts those ``False``. A chunk closes at
  ``SEEN_CHUNK`` entries (``arrived`` plus ``late``); only the open (last) one is ever rewritten.
  The sizes let a restore decode the head alone, without copying the records.

``WorkingOrder.order`` is the node's ``Order``: a restore re-links it from ``orders`` (the node's
restored cache). An order still working at the venue must be there (``VenueStateError`` otherwise);
for a done order the venue never emits an event again, so ``restore`` links it if present, else
``None``.

``restore_blobs`` is on the critical path of a node restart, so its cost follows what is live, plus
a few passes in C per seen id: the working orders are decoded in full, but of the chunks only the
id arrays are: ``_seen`` is built from them by ``dict.fromkeys`` in arrival order (every done order
maps to one ``StoredOrders``), and the working orders are set over it. A done order's record is
only read when the venue first needs more than its id, i.e. to word an ``OrderCancelRejected``:
``StoredOrders.order()`` then finds its chunk (an index from id to chunk, built on that first
need), decodes that chunk's records, and the order (unlinked: ``order`` is ``None``); a damaged
record raises ``VenueStateError`` at that point. What is checked at restore, in bulk: chunk headers,
numbers and entry counts, the ids being strings, the seen count, no id arriving twice or done
twice, the working orders' arrival indexes, and that the ``pending`` counts add up to the late
and working orders. Closed chunks are kept as the stored bytes, never re-packed.

Anything that does not add up (bad bytes, another version, another venue, an instrument the venue
does not trade or of another precision, ids missing or twice) raises ``VenueStateError``.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from itertools import accumulate, chain, islice, pairwise
from operator import itemgetter

import msgpack

from node.backtest.account import _NetPosition
from node.backtest.matching import OrderStatusAtVenue, WorkingOrder
from node.model.data import Bar, BarType, QuoteTick, TradeTick
from node.model.enums import AggressorSide, OrderType, TimeInForce
from node.model.events import AccountBalance
from node.model.identifiers import ClientOrderId, InstrumentId, StrategyId, TradeId, VenueOrderId
from node.model.objects import Currency, Money, Price, Quantity

FORMAT_VERSION = 2
"""Version of the venue-state format; bump it when any record changes shape (1: chunks of seen
records ``[arrival index, id, order record]``; 2: chunks of id arrays plus the records apart)."""

SEEN_CHUNK = 256
"""Entries per chunk blob (the open chunk is rewritten at each ``blobs()`` that adds to it)."""

CORE_KEY = "exchange"
SEEN_PREFIX = "seen."

_ADVICE = (
    "the stored venue state does not belong to this venue or is damaged; if the node's store is "
    "otherwise intact, restore it from a backup, or start the node with a fresh state dir"
)

_PENDING = msgpack.packb(False)
"""A chunk's record for an arrived order that was still working (its record comes later)."""


class VenueStateError(RuntimeError):
    """Stored venue state that cannot be restored (corrupt, another version, another venue)."""


def seen_key(chunk: int) -> str:
    return f"{SEEN_PREFIX}{chunk:06d}"


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
    # a tuple: the stored record of a done order that restore_blobs left in a StoredOrders
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


_array_header = msgpack.Packer(use_bin_type=True).pack_array_header


def snapshot(exchange) -> bytes:
    """The whole venue state in one blob (cost grows with the number of seen client order ids)."""
    index = {coid: i for i, coid in enumerate(exchange._seen)}
    working = {wo.client_order_id for book in exchange._books.values() for wo in book.orders}
    seen = [
        _seen_record(i, coid, wo.record(exchange, coid) if type(wo) is StoredOrders else wo)
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

    def __init__(self, exchange, restored: tuple | None = None) -> None:
        self._exchange = exchange
        self._cursor = 0  # entries of exchange._seen examined so far
        # client order id -> (arrival index, WorkingOrder, chunk it arrived in, its slot there)
        # while WORKING at the venue
        self._working: dict = {}
        self._closed: list[bytes] = []  # full chunks, encoded
        # the open chunk (number len(self._closed), see the module docstring), each item packed
        # once: its arrived ids, their records (_PENDING while working), its late ids, their records
        self._arrived: list[bytes] = []
        self._slots: list[bytes] = []
        self._late: list[bytes] = []
        self._late_records: list[bytes] = []
        self._pending = 0
        self._dirty: set[int] = set()  # chunks changed since the last blobs()
        if restored is not None:  # as read by restore_blobs
            self._working, self._closed, self._arrived, self._slots, self._late, self._late_records = restored
            self._pending = self._slots.count(_PENDING)
            self._cursor = len(exchange._seen)

    @property
    def chunks(self) -> int:
        return len(self._closed) + (1 if self._arrived or self._late else 0)

    def _added(self) -> None:
        """One more entry in the open chunk: mark it changed, close it when full."""
        self._dirty.add(len(self._closed))
        if len(self._arrived) + len(self._late) == SEEN_CHUNK:
            self._closed.append(self._open_blob())
            self._arrived, self._slots, self._late, self._late_records = [], [], [], []
            self._pending = 0

    def _open_blob(self) -> bytes:
        arrived, late = self._arrived, self._late
        head = b"".join(
            chain(
                (_array_header(3), _array_header(len(arrived))),
                arrived,
                (_array_header(len(late)),),
                late,
                (_pack(self._pending),),
            )
        )
        records = b"".join(chain(self._slots, self._late_records))
        return _pack([FORMAT_VERSION, "seen", len(self._closed), len(head), len(records)]) + head + records

    def _poll(self) -> None:
        """Move the new seen ids into the chunks, and the records of orders done since."""
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
                self._arrived.append(_pack(coid))
                if wo is not None and wo.status is OrderStatusAtVenue.WORKING:
                    self._working[coid] = (i, wo, len(self._closed), len(self._slots))
                    self._slots.append(_PENDING)
                    self._pending += 1
                else:
                    self._slots.append(_pack(None if wo is None else _order_record(wo)))
                self._added()
            self._cursor = len(seen)
        done = [
            coid
            for coid, (_, wo, _, _) in self._working.items()
            if wo.status is not OrderStatusAtVenue.WORKING
        ]
        if done:
            done.sort(key=lambda coid: self._working[coid][0])
            for coid in done:
                _, wo, chunk, slot = self._working.pop(coid)
                record = _pack(_order_record(wo))
                if chunk == len(self._closed):  # it arrived in the open chunk: fill in its slot
                    self._slots[slot] = record
                    self._pending -= 1
                    self._dirty.add(chunk)
                else:
                    self._late.append(_pack(coid))
                    self._late_records.append(record)
                    self._added()

    def blobs(self, full: bool = False) -> dict[str, bytes]:
        """The core plus the seen chunks changed since the last call (all of them if ``full``)."""
        self._poll()
        working = self._working
        core = _core(self._exchange, lambda coid: working[coid][0], self._cursor, self.chunks)
        out = {CORE_KEY: _pack([FORMAT_VERSION, "core", core])}
        chunks = range(self.chunks) if full else sorted(self._dirty)
        closed = len(self._closed)
        for chunk in chunks:
            out[seen_key(chunk)] = self._closed[chunk] if chunk < closed else self._open_blob()
        self._dirty.clear()
        return out


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
    version = obj[0]
    if version != FORMAT_VERSION:
        if type(version) is int and 0 < version < FORMAT_VERSION:
            raise VenueStateError(
                f"venue {exchange.venue}: cannot restore its stored state: the sandbox venue state is "
                f"from an older version of the node ({what} has format version {version}, this node "
                f"reads version {FORMAT_VERSION}); sandbox venue state is not migrated: start the node "
                "with a fresh state dir (the sandbox venue then starts empty), or finish with that "
                "state on the version that wrote it"
            )
        raise _fail(
            exchange,
            f"{what} has format version {version!r}, this venue reads version {FORMAT_VERSION} "
            "(written by a newer version of the node?)",
        )
    if len(obj) != length or obj[1] != kind:
        raise _fail(exchange, f"{what} is not a {kind!r} record of length {length}")


_HEADER_MAX = 32
"""A chunk's header is at most this long (it is 5 small ints and a short str)."""


def _read_chunk(exchange, chunk: int, chunks: int, data) -> tuple[list, list, int, memoryview]:
    """A chunk's (arrived, late, pending, records): only the header and head are decoded, the
    records are a view of ``data``."""
    what = f"seen chunk {seen_key(chunk)!r}"
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _fail(exchange, f"{what} is {type(data).__name__}, not bytes")
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
    unpacker.feed(data[:_HEADER_MAX])
    try:
        header = unpacker.unpack()
    except msgpack.OutOfData:
        raise _fail(exchange, f"{what} is empty or truncated") from None
    except Exception as exc:
        raise _fail(exchange, f"{what} is not valid msgpack ({type(exc).__name__}: {exc})") from None
    _check_header(exchange, header, "seen", what, 5)
    _, _, number, head_size, records_size = header
    if number != chunk:
        raise _fail(exchange, f"{what} says it is chunk {number!r} (mixed up?)")
    start = unpacker.tell()
    if type(head_size) is not int or type(records_size) is not int or head_size < 0 or records_size < 0:
        raise _fail(exchange, f"{what} has a bad header {header!r}")
    if start + head_size + records_size != len(data):
        raise _fail(
            exchange,
            f"{what} is {len(data)} bytes, its header says {start + head_size + records_size} (truncated?)",
        )
    view = memoryview(data)
    head = _unpack(exchange, view[start : start + head_size], what)
    if not isinstance(head, list) or len(head) != 3:
        raise _fail(exchange, f"{what} has no [arrived ids, late ids, pending count] head")
    arrived, late, pending = head
    if (
        type(arrived) is not list
        or type(late) is not list
        or type(pending) is not int
        or not 0 <= pending <= len(arrived)
    ):
        raise _fail(exchange, f"{what} has no [arrived ids, late ids, pending count] head")
    entries = len(arrived) + len(late)
    if not 0 < entries <= SEEN_CHUNK or (chunk < chunks - 1 and entries != SEEN_CHUNK):
        raise _fail(
            exchange,
            f"{what} holds {entries} entries, a full one {SEEN_CHUNK}, the last one 1 to {SEEN_CHUNK}",
        )
    try:  # every id a str, checked in C
        "".join(arrived)
        "".join(late)
    except TypeError:
        bad = next(c for c in chain(arrived, late) if type(c) is not str)
        raise _fail(exchange, f"{what} holds a client order id that is not a string: {bad!r}") from None
    return arrived, late, pending, view[start + head_size :]


def _split_records(exchange, what: str, data: memoryview, count: int) -> list[bytes]:
    """``count`` packed records concatenated in ``data``, each as its own bytes."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
    unpacker.feed(data)
    ends = [0]
    try:
        for _ in range(count):
            unpacker.skip()
            ends.append(unpacker.tell())
    except Exception as exc:
        raise _fail(exchange, f"{what} holds fewer records than ids ({type(exc).__name__})") from None
    if ends[-1] != len(data):
        raise _fail(exchange, f"{what} holds more records than ids")
    return [bytes(data[a:b]) for a, b in pairwise(ends)]


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


class StoredOrders:
    """What ``_seen`` holds for every done order after ``restore_blobs()`` until the venue first
    needs more than its id (one object per restore, shared by all of them; see the module
    docstring). Raises VenueStateError for a record that turns out damaged."""

    __slots__ = ("_chunks", "_where", "_decoded")

    def __init__(self, chunks: list[tuple[list, list, memoryview]]) -> None:
        self._chunks = chunks  # per chunk: (arrived ids, late ids, records)
        self._where: dict | None = None  # client order id -> number of the chunk with its record
        self._decoded: dict = {}  # chunk number -> {client order id: stored value}

    def __repr__(self) -> str:
        return f"<StoredOrders in {len(self._chunks)} seen chunks>"

    def record(self, exchange, client_order_id) -> tuple | None:
        """The stored order record of a done order, or None: it was rejected."""
        where = self._where
        if where is None:  # the first need: index every id, in C
            where = {}
            for number, (arrived, _, _) in enumerate(self._chunks):
                where.update(dict.fromkeys(arrived, number))
            for number, (_, late, _) in enumerate(self._chunks):
                if late:  # done after the chunk it arrived in closed: the record is here
                    where.update(dict.fromkeys(late, number))
            self._where = where
        number = where.get(client_order_id)
        if number is None:
            raise _fail(exchange, f"done order {client_order_id} is in no seen chunk")
        key = seen_key(number)
        records = self._decoded.get(number)
        if records is None:
            arrived, late, data = self._chunks[number]
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, use_list=False)
            unpacker.feed(data)
            try:
                values = list(unpacker)
            except Exception as exc:
                raise _fail(
                    exchange,
                    f"seen chunk {key!r} has records that are not valid msgpack ({type(exc).__name__})",
                ) from None
            if len(values) != len(arrived) + len(late):
                raise _fail(
                    exchange,
                    f"seen chunk {key!r} holds {len(values)} records for {len(arrived) + len(late)} ids",
                )
            records = self._decoded[number] = dict(zip(chain(arrived, late), values, strict=True))
        value = records[client_order_id]
        if value is False:
            raise _fail(
                exchange,
                f"done order {client_order_id} was still working when seen chunk {key!r} closed, and no "
                "later chunk holds how it ended",
            )
        if value is not None and type(value) is not tuple:
            raise _fail(exchange, f"the stored record of done order {client_order_id} is {value!r}")
        return value

    def order(self, exchange, client_order_id) -> WorkingOrder | None:
        """The done order as the venue held it (unlinked: ``order`` is None), or None: rejected."""
        record = self.record(exchange, client_order_id)
        return None if record is None else done_order(exchange, client_order_id, record)


def done_order(exchange, client_order_id, record: tuple) -> WorkingOrder:
    """The WorkingOrder of a done order's stored order record (unlinked: ``order`` is ``None``).
    Raises VenueStateError."""
    dec = _Decoder(exchange, {}, context=f"the stored record of done order {client_order_id}: ")
    try:
        _, _, wo = dec.working_order((0, str(client_order_id), record), None, must_link=False)
    except VenueStateError:
        raise
    except Exception as exc:  # a field of the wrong shape or type, a value out of range
        raise dec.fail(f"it is malformed ({type(exc).__name__}: {exc})") from None
    return wo


def _seen_from_records(seen_records: list):
    """A ``_seen`` builder for ``_apply``: from a snapshot's seen records, all decoded now."""

    def build(dec: _Decoder, seen_count: int, working: list) -> dict:
        indexes = [index for index, _, _ in working]  # three columns: arrival index, id, _seen value
        coids = [coid for _, coid, _ in working]
        values = [wo for _, _, wo in working]
        for record in seen_records:
            index, coid, wo = dec.working_order(record, None, must_link=False)
            indexes.append(index)
            coids.append(coid)
            values.append(wo)
        # Arrival order, at C speed (the done records come mostly in order already: timsort runs).
        order = sorted(range(len(indexes)), key=indexes.__getitem__)
        arrival = _take(indexes, order)
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
        return seen

    return build


def _seen_from_chunks(parts: list, stored: StoredOrders, open_slots: list[bytes]):
    """A ``_seen`` builder for ``_apply``: from the chunks' id arrays, in C (see the module docstring);
    ``open_slots``: the open chunk's records of its arrived ids, packed (none if it is closed)."""

    def build(dec: _Decoder, seen_count: int, working: list) -> dict:
        starts = list(accumulate([len(part[0]) for part in parts], initial=0))  # arrival index of each
        if starts[-1] != seen_count:
            raise dec.fail(
                f"it names {seen_count} seen client order ids but its chunks hold {starts[-1]} "
                "(truncated or mixed up)"
            )
        # The live venue keys _seen by ClientOrderId (a str subclass). CPython rebuilds a dict whose
        # keys are all exact str as a general one when a key of a str subclass first goes in (here
        # a working order's, else the first order after the restart): ~35 ns per id. A dict whose
        # first key is not an exact str is a general one from the start.
        ids = chain.from_iterable([part[0] for part in parts])
        first = next(ids, None)
        seen = dict.fromkeys(chain(() if first is None else (ClientOrderId(first),), ids), stored)
        if len(seen) != seen_count:
            raise dec.fail("a client order id arrived twice")
        late_count = sum([len(part[1]) for part in parts])
        settled = dict.fromkeys(chain.from_iterable([part[1] for part in parts]))
        if len(settled) != late_count:
            raise dec.fail("an order is done twice in the seen chunks")
        if not settled.keys() <= seen.keys():
            raise dec.fail("a seen chunk holds a done order that never arrived")
        open_start = seen_count - len(open_slots)
        for index, coid, wo in working:
            chunk = bisect_right(starts, index) - 1
            if not 0 <= index < seen_count or parts[chunk][0][index - starts[chunk]] != coid:
                raise dec.fail(f"working order {coid} has arrival index {index}, its seen chunks disagree")
            if coid in settled:
                raise dec.fail(f"order {coid} is working but a seen chunk holds it done")
            if index >= open_start and open_slots[index - open_start] != _PENDING:
                raise dec.fail(f"order {coid} is working but the open seen chunk holds it done")
            seen[coid] = wo
        pending = sum([part[2] for part in parts])
        if pending != late_count + len(working):
            raise dec.fail(
                f"its seen chunks hold {pending} orders as working when their chunk closed, but "
                f"{late_count} done later and {len(working)} working (mixed up?)"
            )
        return seen

    return build


def _apply(exchange, core, orders: Mapping, seen_of) -> dict:
    """Restore ``core`` and ``_seen`` as built by ``seen_of(decoder, seen count, working orders as
    [(arrival index, client order id, WorkingOrder)])``; returns the working orders
    (client order id -> (arrival index, WorkingOrder))."""
    if not isinstance(core, dict):
        raise _fail(exchange, "the core record is not a map")
    _check_fresh(exchange, core)
    dec = _Decoder(exchange, orders)
    try:
        return _apply_checked(exchange, dec, core, seen_of)
    except VenueStateError:
        raise
    except Exception as exc:  # a field of the wrong shape or type, a value out of range
        raise dec.fail(f"a record is malformed ({type(exc).__name__}: {exc})") from None


def _apply_checked(exchange, dec: _Decoder, core: dict, seen_of) -> dict:
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


def restore(exchange, data: bytes, orders: Mapping) -> None:
    """Restore a ``snapshot()`` into a freshly built ``exchange`` (same venue, config, instruments)."""
    obj = _unpack(exchange, data, "the snapshot")
    _check_header(exchange, obj, "full", "the snapshot", 4)
    if not isinstance(obj[3], list):
        raise _fail(exchange, "the snapshot's seen records are not a list")
    _apply(exchange, obj[2], orders, _seen_from_records(obj[3]))


def restore_blobs(exchange, blobs: Mapping[str, bytes], orders: Mapping) -> StateLog:
    """Restore ``StateLog.blobs()`` output (all stored keys) into a freshly built ``exchange``.

    Returns the StateLog that carries on from the restored state (its next ``blobs()`` adds to the
    same chunks).
    """
    # A restore allocates many small objects that all stay alive (the msgpack objects of the core,
    # the ids, the working orders): with the collector on, they trigger young collections and, as
    # the survivors pile up, full (gen-2) ones that walk the whole heap again and again: several
    # times the cost of the restore itself. Nothing here makes a reference cycle, so there is
    # nothing to collect; the collector's previous state (enabled or not) is put back whatever
    # happens.
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
        parts.append(_read_chunk(exchange, chunk, chunks, blobs[key]))
    # Closed chunks never change again: the StateLog keeps their stored bytes. Only the open (last,
    # not full) chunk's records are split, for it to go on filling that chunk.
    is_open = bool(parts) and len(parts[-1][0]) + len(parts[-1][1]) < SEEN_CHUNK
    closed = len(parts) - is_open
    arrived, late, slots, late_records = [], [], [], []
    if is_open:
        arrived, late, _, records = parts[-1]
        what = f"seen chunk {seen_key(closed)!r}"
        pieces = _split_records(exchange, what, records, len(arrived) + len(late))
        slots, late_records = pieces[: len(arrived)], pieces[len(arrived) :]
    stored = StoredOrders([(a, lt, records) for a, lt, _, records in parts])
    working = _apply(exchange, core, orders, _seen_from_chunks(parts, stored, slots))
    open_start = len(exchange._seen) - len(arrived)
    log_working = {
        coid: (index, wo, closed, index - open_start) if index >= open_start else (index, wo, -1, -1)
        for coid, (index, wo) in working.items()
    }
    closed_blobs = [bytes(blobs[seen_key(chunk)]) for chunk in range(closed)]
    restored = (log_working, closed_blobs, [*map(_pack, arrived)], slots, [*map(_pack, late)], late_records)
    return StateLog(exchange, restored=restored)


__all__ = [
    "CORE_KEY",
    "FORMAT_VERSION",
    "SEEN_CHUNK",
    "SEEN_PREFIX",
    "StateLog",
    "StoredOrders",
    "VenueStateError",
    "done_order",
    "restore",
    "restore_blobs",
    "seen_key",
    "snapshot",
]
