"""The venue-state format: its version, the stored keys, and the records the venue is written as.

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

The core blob is stored under ``CORE_KEY``, chunk ``n`` under ``seen_key(n)``.
"""

from __future__ import annotations

import msgpack

from node.backtest.matching import WorkingOrder
from node.model.data import Bar, QuoteTick, TradeTick
from node.model.objects import Currency

FORMAT_VERSION = 2
"""Version of the venue-state format; bump it when any record changes shape (1: chunks of seen
records ``[arrival index, id, order record]``; 2: chunks of id arrays plus the records apart)."""

SEEN_CHUNK = 256
"""Entries per chunk blob (the open chunk is rewritten at each ``blobs()`` that adds to it)."""

CORE_KEY = "exchange"
SEEN_PREFIX = "seen."

PENDING = msgpack.packb(False)
"""A chunk's record for an arrived order that was still working (its record comes later)."""


def seen_key(chunk: int) -> str:
    return f"{SEEN_PREFIX}{chunk:06d}"


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


array_header = msgpack.Packer(use_bin_type=True).pack_array_header


def order_record(wo: WorkingOrder) -> list:
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


def seen_record(index: int, client_order_id, wo: WorkingOrder | tuple | None) -> list:
    # a tuple: the stored record of a done order that restore_blobs left in a StoredOrders
    return [index, client_order_id, wo if wo is None or type(wo) is tuple else order_record(wo)]


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


def venue_identity(exchange) -> dict:
    """The venue's identity and config as the core holds them (a restore checks they match)."""
    acct = exchange.account
    return {
        "venue": str(exchange.venue),
        "account_id": str(exchange.account_id),
        "oms_type": int(exchange.oms_type),
        "account_type": int(acct.account_type),
        "base_currency": None if acct.base_currency is None else acct.base_currency.code,
    }


def core_record(exchange, index_of, seen_count: int, chunks: int) -> dict:
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
                [seen_record(index_of(wo.client_order_id), wo.client_order_id, wo) for wo in book.orders],
            ]
        )
    reported = exchange._last_reported
    return {
        **venue_identity(exchange),
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
