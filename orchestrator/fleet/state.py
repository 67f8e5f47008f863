"""A managed node's lifecycle as the orchestrator sees it, as one transition table.

This is the supervisor's view, not the node's own FSM: it covers the process around the
node (assigned to a child, crashed, waiting to restart, given up on). Every change is also
published as an event of the orchestrator itself (``orchestrator.node.<id>``), so a
subscriber sees starting -> running -> crashed -> restarting -> running without polling.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType


class NodeState(enum.Enum):
    PENDING = "pending"  # configured, never started (or stopped by the user)
    STARTING = "starting"  # assigned to a child, waiting for the node to report RUNNING
    RUNNING = "running"
    STOPPING = "stopping"  # asked to stop; waiting for the child to end
    STOPPED = "stopped"  # ended cleanly on request
    CRASHED = "crashed"  # the child ended unexpectedly (exit, signal, hang, fault)
    RESTARTING = "restarting"  # waiting out the backoff before the next start
    FAILED = "failed"  # supervision gave up (intensity exceeded, fault policy, temporary)


class Transition(enum.Enum):
    START = "start"
    STARTED = "started"
    STOP = "stop"
    EXITED = "exited"  # the process ended while we expected it to run
    STOPPED = "stopped"  # the process ended after a stop request
    RETRY = "retry"  # the supervisor decided to restart after a backoff
    GIVE_UP = "give_up"


TRANSITIONS = MappingProxyType(
    {
        (NodeState.PENDING, Transition.START): NodeState.STARTING,
        (NodeState.STOPPED, Transition.START): NodeState.STARTING,
        (NodeState.FAILED, Transition.START): NodeState.STARTING,
        (NodeState.STARTING, Transition.STARTED): NodeState.RUNNING,
        (NodeState.STARTING, Transition.EXITED): NodeState.CRASHED,
        (NodeState.STARTING, Transition.STOP): NodeState.STOPPING,
        (NodeState.RUNNING, Transition.EXITED): NodeState.CRASHED,
        (NodeState.RUNNING, Transition.STOP): NodeState.STOPPING,
        (NodeState.STOPPING, Transition.STOPPED): NodeState.STOPPED,
        (NodeState.STOPPING, Transition.EXITED): NodeState.STOPPED,
        (NodeState.CRASHED, Transition.RETRY): NodeState.RESTARTING,
        (NodeState.CRASHED, Transition.GIVE_UP): NodeState.FAILED,
        (NodeState.CRASHED, Transition.STOP): NodeState.STOPPED,
        (NodeState.RESTARTING, Transition.START): NodeState.STARTING,
        (NodeState.RESTARTING, Transition.STOP): NodeState.STOPPED,
    }
)


class InvalidNodeTransition(Exception):
    """A lifecycle step that makes no sense in the node's current state (a bug, or a stale event)."""


@dataclass
class NodeStatus:
    """Everything ``status`` reports about one node (and what supervision needs to decide)."""

    node: str
    state: NodeState = NodeState.PENDING
    pid: int | None = None
    slot: str | None = None
    incarnation: int = 0
    restarts: int = 0
    started_at: float | None = None  # trio clock, when the node last reported RUNNING
    last_heartbeat: float | None = None
    events: int = 0  # events relayed for this node
    last_seq: int = 0  # highest node event sequence number relayed
    last_exit: str | None = None  # readable: "killed by SIGKILL (heartbeat missed ...)"
    last_reason: str | None = None  # ExitReason value the supervisor decided on
    cold_start: bool = False
    history: list = field(default_factory=list)  # (time, old state, transition, new state)

    def apply(self, transition: Transition, now: float | None = None) -> NodeState:
        try:
            new = TRANSITIONS[(self.state, transition)]
        except KeyError:
            valid = sorted(t.value for (s, t) in TRANSITIONS if s is self.state)
            raise InvalidNodeTransition(
                f"node {self.node!r} in state {self.state.value} cannot {transition.value}; valid here: {valid}"
            ) from None
        self.history.append((now, self.state, transition, new))
        del self.history[:-64]  # a long-lived node keeps only its recent changes
        self.state = new
        return new

    def to_dict(self, now: float) -> dict:
        """The ``status --json`` record."""
        return {
            "node": self.node,
            "state": self.state.value,
            "pid": self.pid,
            "incarnation": self.incarnation,
            "restarts": self.restarts,
            "uptime_s": None
            if self.started_at is None or self.state is not NodeState.RUNNING
            else round(now - self.started_at, 3),
            "heartbeat_age_ms": None
            if self.last_heartbeat is None
            else round((now - self.last_heartbeat) * 1000, 1),
            "events": self.events,
            "last_exit": self.last_exit,
        }
