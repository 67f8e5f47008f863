"""``StoredOrders``: the done orders of a ``restore_blobs()``, decoded only when first needed.

A done order's record is only read when the venue first needs more than its id, i.e. to word an
``OrderCancelRejected``: ``StoredOrders.order()`` then finds its chunk (an index from id to chunk,
built on that first need), decodes that chunk's records, and the order (unlinked: ``order`` is
``None``); a damaged record raises ``VenueStateError`` at that point.
"""

from __future__ import annotations

from itertools import chain

import msgpack

from node.backtest.matching import WorkingOrder
from node.backtest.venue_state.decode import done_order
from node.backtest.venue_state.errors import fail
from node.backtest.venue_state.format import seen_key


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
            raise fail(exchange, f"done order {client_order_id} is in no seen chunk")
        key = seen_key(number)
        records = self._decoded.get(number)
        if records is None:
            arrived, late, data = self._chunks[number]
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, use_list=False)
            unpacker.feed(data)
            try:
                values = list(unpacker)
            except Exception as exc:
                raise fail(
                    exchange,
                    f"seen chunk {key!r} has records that are not valid msgpack ({type(exc).__name__})",
                ) from None
            if len(values) != len(arrived) + len(late):
                raise fail(
                    exchange,
                    f"seen chunk {key!r} holds {len(values)} records for {len(arrived) + len(late)} ids",
                )
            records = self._decoded[number] = dict(zip(chain(arrived, late), values, strict=True))
        value = records[client_order_id]
        if value is False:
            raise fail(
                exchange,
                f"done order {client_order_id} was still working when seen chunk {key!r} closed, and no "
                "later chunk holds how it ended",
            )
        if value is not None and type(value) is not tuple:
            raise fail(exchange, f"the stored record of done order {client_order_id} is {value!r}")
        return value

    def order(self, exchange, client_order_id) -> WorkingOrder | None:
        """The done order as the venue held it (unlinked: ``order`` is None), or None: rejected."""
        record = self.record(exchange, client_order_id)
        return None if record is None else done_order(exchange, client_order_id, record)
