"""After a restart, resend what the parent never journaled, from the node's state store.

A node with a state store writes every event to its store's outbox, in the same transaction as
the state it changed, before the event leaves the process (``node.live.recorder``); the parent's
``ack`` deletes what it has journaled. So when a node starts (first start, restart after kill -9,
or a restarted parent), its outbox holds exactly the events the parent may not have, and the
``assign`` says which seq the parent has up to (``resume_after``). This module compares the two
and queues the missing events ahead of anything the node publishes.

Two cases are refused or reported instead of being papered over:

* the store's sequence is *behind* the parent's journal: the state file is older than the events
  already relayed (restored from a backup, replaced, deleted). Starting would issue those seq
  numbers again for different events, and the parent would drop them as duplicates: lost events
  and a node whose state disagrees with its history. :class:`StateBehindJournal`, exit CONFIG.
* the outbox lacks events between ``resume_after`` and the store's last seq (they were acked,
  so the parent had them, but its journal lost them since: a journal with fsync ``never`` after
  a power loss). They cannot be recovered; the gap is logged with its range, and the stream goes on.
"""

from __future__ import annotations

from collections.abc import Callable

from node.live.recorder import unpack_data


class StateBehindJournal(Exception):
    """The node's state store is older than the events the parent has journaled for it."""


async def resend_unacked(
    outbox, store, store_last_seq: int, resume_after: int, warn: Callable[[str], None]
) -> int:
    """Queue the store's outbox entries after ``resume_after`` on ``outbox``; return how many."""
    if store_last_seq < resume_after:
        raise StateBehindJournal(
            f"the state store {store.path} holds events up to seq {store_last_seq}, but the parent has "
            f"journaled up to {resume_after}: the state file is older than the node's event history. "
            "Put back the state file that belongs with the journal, or, to start this node afresh, "
            "move away both its state file and its journal"
        )
    expected = resume_after + 1
    count = 0
    for entry in store.outbox_after(resume_after):
        if entry.seq != expected:
            warn(
                f"events {expected}..{entry.seq - 1} were acked by the parent but are missing from its "
                "journal; they cannot be resent"
            )
        waited = outbox(
            outbox.stream_record(entry.seq, entry.topic, entry.event_type, unpack_data(entry.payload))
        )
        if waited is not None:
            await waited
        expected = entry.seq + 1
        count += 1
    if expected <= store_last_seq:
        warn(
            f"events {expected}..{store_last_seq} were acked by the parent but are missing from its "
            "journal; they cannot be resent"
        )
    return count


__all__ = ["StateBehindJournal", "resend_unacked"]
