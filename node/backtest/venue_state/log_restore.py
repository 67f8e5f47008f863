"""``restore_blobs``: a ``StateLog``'s stored blobs back into a freshly built venue.

``restore_blobs`` is on the critical path of a node restart, so its cost follows what is live, plus
a few passes in C per seen id: the working orders are decoded in full, but of the chunks only the
id arrays are: ``_seen`` is built from them by ``dict.fromkeys`` in arrival order (every done order
maps to one ``StoredOrders``, decoded when first needed: see ``stored``), and the working orders are
set over it. What is checked at restore, in bulk: chunk headers, numbers and entry counts, the ids
being strings, the seen count, no id arriving twice or done twice, the working orders' arrival
indexes, and that the ``pending`` counts add up to the late and working orders. Closed chunks are
kept as the stored bytes, never re-packed.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Mapping
from itertools import accumulate, chain

from node.backtest.venue_state.apply import apply, checked_core
from node.backtest.venue_state.blobs import check_header, read_chunk, split_records, unpack
from node.backtest.venue_state.decode import Decoder
from node.backtest.venue_state.errors import fail
from node.backtest.venue_state.format import CORE_KEY, PENDING, SEEN_CHUNK, pack, seen_key
from node.backtest.venue_state.log import StateLog
from node.backtest.venue_state.stored import StoredOrders
from node.model.identifiers import ClientOrderId


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
        raise fail(exchange, f"no {CORE_KEY!r} blob among the stored keys {sorted(blobs)}")
    obj = unpack(exchange, blobs[CORE_KEY], f"the {CORE_KEY!r} blob")
    check_header(exchange, obj, "core", f"the {CORE_KEY!r} blob", 3)
    core = checked_core(exchange, obj[2])  # another venue or a used one: say so before the chunks
    chunks = core.get("seen_chunks")
    if type(chunks) is not int or chunks < 0:
        raise fail(exchange, f"the {CORE_KEY!r} blob has no valid seen chunk count")
    parts = []
    for chunk in range(chunks):
        key = seen_key(chunk)
        if key not in blobs:
            raise fail(exchange, f"seen chunk {key!r} is missing ({chunks} expected)")
        parts.append(read_chunk(exchange, chunk, chunks, blobs[key]))
    # Closed chunks never change again: the StateLog keeps their stored bytes. Only the open (last,
    # not full) chunk's records are split, for it to go on filling that chunk.
    is_open = bool(parts) and len(parts[-1][0]) + len(parts[-1][1]) < SEEN_CHUNK
    closed = len(parts) - is_open
    arrived, late, slots, late_records = [], [], [], []
    if is_open:
        arrived, late, _, records = parts[-1]
        what = f"seen chunk {seen_key(closed)!r}"
        pieces = split_records(exchange, what, records, len(arrived) + len(late))
        slots, late_records = pieces[: len(arrived)], pieces[len(arrived) :]
    stored = StoredOrders([(a, lt, records) for a, lt, _, records in parts])
    working = apply(exchange, core, orders, _seen_from_chunks(parts, stored, slots))
    open_start = len(exchange._seen) - len(arrived)
    log_working = {
        coid: (index, wo, closed, index - open_start) if index >= open_start else (index, wo, -1, -1)
        for coid, (index, wo) in working.items()
    }
    closed_blobs = [bytes(blobs[seen_key(chunk)]) for chunk in range(closed)]
    restored = (log_working, closed_blobs, [*map(pack, arrived)], slots, [*map(pack, late)], late_records)
    return StateLog(exchange, restored=restored)


def _seen_from_chunks(parts: list, stored: StoredOrders, open_slots: list[bytes]):
    """A ``_seen`` builder for ``apply``: from the chunks' id arrays, in C (see the module docstring);
    ``open_slots``: the open chunk's records of its arrived ids, packed (none if it is closed)."""

    def build(dec: Decoder, seen_count: int, working: list) -> dict:
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
            if index >= open_start and open_slots[index - open_start] != PENDING:
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
