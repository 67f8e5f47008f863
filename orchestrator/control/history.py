"""A bounded, in-memory history of the events the orchestrator relayed, per node.

Why it exists: ``events --since SEQ`` must replay what a subscriber missed, and the PUB keeps
nothing. The durable per-node journal (append-only, checksummed, DESIGN §3) is issue #5; until
then this history is what can be replayed: the last ``per_node`` events of each node, lost when
the orchestrator stops. Bounded so a long-running fleet cannot grow the orchestrator's memory.
"""

from __future__ import annotations

import collections

DEFAULT_PER_NODE = 2000


class EventHistory:
    """``record(node, events)`` from the relay; ``since(...)`` for the control socket."""

    def __init__(self, per_node: int = DEFAULT_PER_NODE) -> None:
        if per_node < 1:
            raise ValueError(f"per_node must be >= 1, got {per_node}")
        self._per_node = per_node
        self._events: dict[str, collections.deque] = {}

    def record(self, node: str, events: list) -> None:
        """Keep ``events`` (each ``[seq, ts_ns, topic, type, data]``) of ``node``; oldest fall off."""
        kept = self._events.get(node)
        if kept is None:
            kept = self._events[node] = collections.deque(maxlen=self._per_node)
        last = kept[-1][0] if kept else 0
        kept.extend(e for e in events if e[0] > last)  # a resend overlapping what we have

    def oldest(self, node: str) -> int | None:
        kept = self._events.get(node)
        return kept[0][0] if kept else None

    def since(self, node: str | None = None, since: int = 0, limit: int = 1000) -> dict:
        """Events with ``seq >= since`` (per node), at most ``limit``, oldest first within a node.

        ``first_kept`` tells the caller, per node, where the history starts: a ``since`` below it
        means older events are no longer available here.
        """
        nodes = [node] if node is not None else sorted(self._events)
        out: list = []
        first_kept: dict[str, int | None] = {}
        truncated = False
        for name in nodes:
            kept = self._events.get(name, ())
            first_kept[name] = kept[0][0] if kept else None
            for record in kept:
                if record[0] < since:
                    continue
                if len(out) >= limit:
                    truncated = True
                    break
                out.append([name, *record])
        return {"events": out, "first_kept": first_kept, "truncated": truncated}
