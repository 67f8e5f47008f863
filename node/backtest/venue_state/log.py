"""``StateLog``: the venue state as ``{key: bytes}``, cheap enough for every store commit.

``StateLog(exchange).blobs()`` (restored by ``restore_blobs(exchange, blobs, orders)``) gives the
same state as a full snapshot. ``"exchange"`` (the *core*: counters, ledger, market data, the
working orders) is rewritten each time, at a cost independent of the history; the seen ids never
change, nor do the records of orders that are *done* at the venue (rejected, filled, canceled), so
they go into append-only chunks ``"seen.000000"``, ``"seen.000001"``, ... of ``SEEN_CHUNK``
entries. ``blobs()`` returns the core plus only the chunks that changed since its previous call:
the caller upserts every key it gets and keeps the others (``blobs(full=True)`` returns all of
them, e.g. after a commit that failed). The core names how many chunks are valid; a restore reads
exactly those and ignores any other key. The blob layouts are in ``format``.
"""

from __future__ import annotations

from itertools import chain, islice

from node.backtest.matching import OrderStatusAtVenue
from node.backtest.venue_state.errors import venue_error
from node.backtest.venue_state.format import (
    CORE_KEY,
    FORMAT_VERSION,
    PENDING,
    SEEN_CHUNK,
    array_header,
    core_record,
    order_record,
    pack,
    seen_key,
)


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
        # the open chunk (number len(self._closed), see ``format``), each item packed
        # once: its arrived ids, their records (PENDING while working), its late ids, their records
        self._arrived: list[bytes] = []
        self._slots: list[bytes] = []
        self._late: list[bytes] = []
        self._late_records: list[bytes] = []
        self._pending = 0
        self._dirty: set[int] = set()  # chunks changed since the last blobs()
        if restored is not None:  # as read by restore_blobs
            self._working, self._closed, self._arrived, self._slots, self._late, self._late_records = restored
            self._pending = self._slots.count(PENDING)
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
                (array_header(3), array_header(len(arrived))),
                arrived,
                (array_header(len(late)),),
                late,
                (pack(self._pending),),
            )
        )
        records = b"".join(chain(self._slots, self._late_records))
        return pack([FORMAT_VERSION, "seen", len(self._closed), len(head), len(records)]) + head + records

    def _poll(self) -> None:
        """Move the new seen ids into the chunks, and the records of orders done since."""
        seen = self._exchange._seen
        new = len(seen) - self._cursor
        if new < 0:
            raise venue_error(self._exchange, "its seen client order ids shrank (reset?) under a StateLog")
        if new:
            tail = list(islice(reversed(seen.items()), new))
            tail.reverse()
            for i, (coid, wo) in enumerate(tail, self._cursor):
                self._arrived.append(pack(coid))
                if wo is not None and wo.status is OrderStatusAtVenue.WORKING:
                    self._working[coid] = (i, wo, len(self._closed), len(self._slots))
                    self._slots.append(PENDING)
                    self._pending += 1
                else:
                    self._slots.append(pack(None if wo is None else order_record(wo)))
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
                record = pack(order_record(wo))
                if chunk == len(self._closed):  # it arrived in the open chunk: fill in its slot
                    self._slots[slot] = record
                    self._pending -= 1
                    self._dirty.add(chunk)
                else:
                    self._late.append(pack(coid))
                    self._late_records.append(record)
                    self._added()

    def blobs(self, full: bool = False) -> dict[str, bytes]:
        """The core plus the seen chunks changed since the last call (all of them if ``full``)."""
        self._poll()
        working = self._working
        core = core_record(self._exchange, lambda coid: working[coid][0], self._cursor, self.chunks)
        out = {CORE_KEY: pack([FORMAT_VERSION, "core", core])}
        chunks = range(self.chunks) if full else sorted(self._dirty)
        closed = len(self._closed)
        for chunk in chunks:
            out[seen_key(chunk)] = self._closed[chunk] if chunk < closed else self._open_blob()
        self._dirty.clear()
        return out
