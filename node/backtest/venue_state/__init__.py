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
  ``{key: bytes}``, cheap enough for every store commit: the *core* (everything but the done
  orders) is rewritten each time, the seen ids and done orders go into append-only chunks.

Where each part lives (each module's docstring says the why of its part):

* ``format``: the format version, the stored keys, the record encoders, the blob layouts.
* ``full``: the full snapshot, written and restored.
* ``log``: ``StateLog``, the core plus append-only seen-id chunks.
* ``log_restore``: ``restore_blobs``, a ``StateLog``'s blobs back, at a cost that follows what is
  live.
* ``blobs``: reading stored bytes back, checked (msgpack, version, chunk layout).
* ``decode``: records back into the exchange's objects (and ``done_order``), re-linked to the
  node's orders.
* ``apply``: checking the venue is the right, fresh one, then putting a decoded core into it.
* ``stored``: ``StoredOrders``, done orders decoded only when first needed.
* ``errors``: ``VenueStateError``: anything that does not add up raises it.
"""

from __future__ import annotations

from node.backtest.venue_state.decode import done_order
from node.backtest.venue_state.errors import VenueStateError
from node.backtest.venue_state.format import CORE_KEY, FORMAT_VERSION, SEEN_CHUNK, SEEN_PREFIX, seen_key
from node.backtest.venue_state.full import restore, snapshot
from node.backtest.venue_state.log import StateLog
from node.backtest.venue_state.log_restore import restore_blobs
from node.backtest.venue_state.stored import StoredOrders

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
