"""What a child's tasks tell its main task (control items), and the phases of a child's life.

``orchestrator.child.session`` has the main task, which alone decides what the child does next;
the receiver (``orchestrator.child.inbound``), the parent watchdog, the signal watcher and the
node's own task only post these items on its control channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.child.assignment import Assignment

SPARE = "spare"
"""Phase: waiting for an assign."""
NODE = "node"
"""Phase: assigned; the node is built, runs or stops."""
ENDING = "ending"
"""Phase: the child is ending (an assign now is refused)."""

ASSIGNED = "ASSIGNED"
"""The state of the heartbeat that answers an assign at once, before the node is built."""


@dataclass(frozen=True, slots=True)
class Assigned:
    assignment: Assignment


@dataclass(frozen=True, slots=True)
class SpareStop:
    cmd_id: str


@dataclass(frozen=True, slots=True)
class ParentLost:
    reason: str


@dataclass(frozen=True, slots=True)
class Signalled:
    signum: int


@dataclass(frozen=True, slots=True)
class NodeEnded:
    error: BaseException | None
    stop_reason: str


__all__ = [
    "ASSIGNED",
    "ENDING",
    "NODE",
    "SPARE",
    "Assigned",
    "NodeEnded",
    "ParentLost",
    "Signalled",
    "SpareStop",
]
