"""What a child reports: its ``status`` reply and the counters its heartbeats carry.

Part of :class:`orchestrator.child.session.ChildSession`, as a mixin. The heartbeat's counters
are read at every heartbeat (every ``heartbeat_interval``), so they are cheap sums of the node's
own stats; the PnL is computed from the portfolio and never fails a heartbeat (a bug there must
not look like a hang to the parent).
"""

from __future__ import annotations

import os
import sys

from node.live.node import TradingNode
from orchestrator.child.heartbeat import pnl_micros


class ChildReports:
    """The child's status and heartbeat counters (module docstring)."""

    def _child_stats(self) -> dict:
        assignment = self._assignment
        stats = {
            "slot": self._options.slot,
            "pid": os.getpid(),
            "phase": self._phase,
            "node": assignment.node if assignment else None,
            "incarnation": assignment.incarnation if assignment else None,
            "warmup_ms": round(self._warmup_s * 1000, 3),
            "rehearsal_ms": None if self._rehearsal is None else round(self._rehearsal.seconds * 1000, 3),
            "prepared_nodes": len(self._prepared),  # built ahead and not used (yet)
            "prepared": self._prepared.used,  # the assigned node was built ahead
            "waiting_for_pid": self._waiting_for,  # the predecessor (hung or crashed) whose end it awaits
            "late_imports": sorted(set(sys.modules) - self._modules_at_hello),
            "parent_heartbeats": self._watchdog.beats,
            "malformed_frames": self.malformed_frames,
            "unexpected_messages": self.unexpected_messages,
            "parent_errors": self.parent_errors,
            "commands": self.commands,
            "repeated_commands": self._replies.repeats,
        }
        if self._outbox is not None:
            stats.update(self._outbox.stats())
        return stats

    def _status(self) -> dict:
        node = self._node
        if node is None:
            return {"child": self._child_stats()}
        return {**node.stats(), "child": self._child_stats()}

    def _counters(self, node: TradingNode) -> dict[str, int]:
        stats = node.stats()
        queues = stats["queues"].values()
        stream = stats["stream"]
        counters = {
            "events_published": stream["published"],
            "stream_buffered": stream["buffered"],
            "sink_errors": stream["sink_errors"],
            "data_dropped": sum(q["dropped"] for q in queues),
            "queue_errors": sum(q["errors"] for q in queues),
            "commands_executed": stats["commands"]["executed"],
            "commands_failed": stats["commands"]["failed"],
            "liveness_ticks": stats["liveness"]["count"],
            "malformed_frames": self.malformed_frames,
        }
        if self._outbox is not None:
            counters.update(self._outbox.stats())
        pnl = self._pnl_micros(node)
        if pnl is not None:
            counters["pnl_micros"] = pnl
        return counters

    def _pnl_micros(self, node: TradingNode) -> int | None:
        """The node's PnL for the heartbeat (see ``heartbeat.pnl_micros``); never fails the heartbeat."""
        kernel = node.kernel
        try:
            return pnl_micros(kernel.portfolio, kernel.cache.accounts())
        except Exception as exc:  # a bug here must not look like a hang (no hb) to the parent
            if not self._pnl_failed:
                self._pnl_failed = True
                self._log.exception("computing the node's PnL for the heartbeat failed", exc)
            return None


__all__ = ["ChildReports"]
