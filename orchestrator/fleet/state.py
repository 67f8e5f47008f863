"""A managed node's lifecycle as the orchestrator sees it, as one transition table.

This is the supervisor's view, not the node's own FSM: it covers the process around the
node (assigned to a child, crashed, waiting to restart, given up on). Every change is also
published as an event of the orchestrator itself (``orchestrator.node.<id>``), so a
subscriber sees starting -> running -> crashed -> restarting -> running without polling.
"""

from __future__ import annotations

import collections
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
        (NodeState.FAILED, Transition.STOP): NodeState.STOPPED,  # an operator's "keep it down"
        (NodeState.RESTARTING, Transition.START): NodeState.STARTING,
        (NodeState.RESTARTING, Transition.STOP): NodeState.STOPPED,
    }
)


class EventRate:
    """Events per second over the last ``window_s``, from counts kept in ``bucket_s`` buckets.

    Why buckets rather than "events since the last look": the rate is read by whoever asks
    (the live view twice a second, ``status`` now and then) and each must see the same recent
    rate. Adding is O(1) per relayed batch and memory is bounded by the window; a node that
    started less than a window ago is averaged over the time it has existed, not the whole
    window, so its first figures are not understated.
    """

    def __init__(self, window_s: float = 3.0, bucket_s: float = 0.25) -> None:
        if not 0 < bucket_s <= window_s:
            raise ValueError(f"need 0 < bucket_s <= window_s, got {bucket_s}, {window_s}")
        self.window_s = window_s
        self.bucket_s = bucket_s
        self._n = max(1, round(window_s / bucket_s))
        self._buckets: collections.deque[list] = collections.deque()  # [bucket index, count]
        self._since: float | None = None  # when counting started (the first add or start())

    def start(self, now: float) -> None:
        """Count from ``now`` even if nothing arrives (so an idle node reads 0, not None)."""
        if self._since is None:
            self._since = now

    def add(self, now: float, count: int) -> None:
        self.start(now)
        index = int(now // self.bucket_s)
        if self._buckets and self._buckets[-1][0] == index:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([index, count])
            self._prune(index)

    def per_second(self, now: float) -> float | None:
        """The rate over the last window; None if counting never started."""
        if self._since is None:
            return None
        index = int(now // self.bucket_s)
        self._prune(index)
        first = index - self._n + 1
        span = now - max(self._since, first * self.bucket_s)
        if span <= 0:
            return 0.0
        return sum(c for i, c in self._buckets if i >= first) / span

    def _prune(self, index: int) -> None:
        while self._buckets and self._buckets[0][0] <= index - self._n:
            self._buckets.popleft()


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
    pnl_micros: int | None = None  # the node's last reported PnL (account currency, millionths)
    event_rate: EventRate = field(default_factory=EventRate)
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
        """The ``status --json`` record.

        Heartbeat age and event rate describe the process that runs the node: none (a stopped,
        failed or pending node, ``pid`` None) shows None, not the age of its last process's last
        heartbeat, which would grow for as long as it stays stopped.
        """
        live = self.pid is not None
        rate = self.event_rate.per_second(now) if live else None
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
            if self.last_heartbeat is None or not live
            else round((now - self.last_heartbeat) * 1000, 1),
            "events": self.events,
            "events_per_s": None if rate is None else round(rate, 1),
            "pnl": None if self.pnl_micros is None else self.pnl_micros / 1_000_000,
            "last_exit": self.last_exit,
        }
