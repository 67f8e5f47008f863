"""The full snapshot: the whole venue state in one blob, ``snapshot(exchange) -> bytes`` and
``restore(exchange, data, orders)``.

Simple, but its size and cost grow with the number of client order ids the venue has ever seen
(every done order's record is in it); for every store commit there is ``StateLog`` (``log``).
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter

from node.backtest.venue_state.apply import apply, checked_core
from node.backtest.venue_state.blobs import check_header, unpack
from node.backtest.venue_state.decode import Decoder
from node.backtest.venue_state.errors import fail
from node.backtest.venue_state.format import FORMAT_VERSION, core_record, pack, seen_record
from node.backtest.venue_state.stored import StoredOrders


def snapshot(exchange) -> bytes:
    """The whole venue state in one blob (cost grows with the number of seen client order ids)."""
    index = {coid: i for i, coid in enumerate(exchange._seen)}
    working = {wo.client_order_id for book in exchange._books.values() for wo in book.orders}
    seen = [
        seen_record(i, coid, wo.record(exchange, coid) if type(wo) is StoredOrders else wo)
        for i, (coid, wo) in enumerate(exchange._seen.items())
        if coid not in working
    ]
    core = core_record(exchange, index.__getitem__, len(index), 0)
    return pack([FORMAT_VERSION, "full", core, seen])


def restore(exchange, data: bytes, orders: Mapping) -> None:
    """Restore a ``snapshot()`` into a freshly built ``exchange`` (same venue, config, instruments)."""
    obj = unpack(exchange, data, "the snapshot")
    check_header(exchange, obj, "full", "the snapshot", 4)
    if not isinstance(obj[3], list):
        raise fail(exchange, "the snapshot's seen records are not a list")
    apply(exchange, checked_core(exchange, obj[2]), orders, _seen_from_records(obj[3]))


def _take(seq, order: list) -> tuple:
    """``seq``'s items in ``order``, picked in C (``itemgetter`` of 2+ items returns a tuple)."""
    return itemgetter(*order)(seq) if len(order) > 1 else tuple(seq[i] for i in order)


def _seen_from_records(seen_records: list):
    """A ``_seen`` builder for ``apply``: from a snapshot's seen records, all decoded now."""

    def build(dec: Decoder, seen_count: int, working: list) -> dict:
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
