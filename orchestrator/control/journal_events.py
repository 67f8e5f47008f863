"""A node's journaled events, decoded: what `events` prints and the control server pages out.

A journal record is one relayed ``evt`` frame (its seq is the frame's last event's). Decoded
leniently: the relay checked the envelope and the seqs, not the event bodies, so an odd body
(int keys, bad UTF-8 in its data) is shown, not fatal. Damage (``JournalCorruptError``, or a
record whose payload is not a frame, :class:`UnreadableFrame`) is raised once every event
before it has been yielded, so a reader gives what is good and then says where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgpack

from orchestrator.journal import journal_path, read_journal


class UnreadableFrame(Exception):
    """A journal record with a valid checksum whose payload is not a relayed frame."""


def journaled_events(state_dir: Path, node: str, since: int = 0) -> Iterator[list]:
    """``node``'s events with seq >= ``since``, oldest first, each ``[seq, ts_ns, topic, type, data]``.

    ``FileNotFoundError`` if the node has no journal.
    """
    path = journal_path(state_dir, node)
    records = read_journal(path, max(since, 1))
    try:
        for record in records:
            try:
                frame = msgpack.unpackb(
                    record.payload, raw=False, strict_map_key=False, unicode_errors="replace"
                )
                events = [e for e in frame["events"] if e[0] >= since]
            except Exception as exc:  # noqa: BLE001 - any undecodable frame is reported the same way
                raise UnreadableFrame(
                    f"journal {path}: record seq {record.seq} is not an event frame ({exc})"
                ) from None
            yield from events
    finally:
        records.close()


__all__ = ["UnreadableFrame", "journaled_events"]
