"""The TradingNode's lifecycle: states, triggers and the one table of legal moves.

The node's life is simpler than a component's (DESIGN.md section 2 names the path CREATED ->
BUILT -> RUNNING -> STOPPING -> STOPPED -> DISPOSED), with one addition: ``STARTING``. Start-up
(connect, reconcile, load the portfolio, start strategies) takes time and can fail; a health check
that read ``RUNNING`` during it would be lying. So the node is ``STARTING`` until every step has
succeeded, and a failed start goes ``STARTING -> STOPPING -> STOPPED``: it never passes through
``RUNNING``.

As in ``node.common.component``, the legal moves are written once, in ``TRANSITIONS``; the node's
methods only name a trigger. An illegal trigger raises a :class:`NodeStateError` subclass whose
message lists what *is* allowed.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from types import MappingProxyType

from node.live.errors import NodeAlreadyBuilt, NodeDisposed, NodeNotBuilt, NodeStateError


class NodeState(enum.Enum):
    CREATED = "CREATED"
    BUILT = "BUILT"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    DISPOSED = "DISPOSED"


class NodeTrigger(enum.Enum):
    BUILD = "build"
    START = "start"  # run() / run_async()
    START_COMPLETED = "start_completed"
    STOP = "stop"  # stop(), a signal, a failed start-up step, a fatal error
    STOP_COMPLETED = "stop_completed"
    DISPOSE = "dispose"


_S = NodeState
_T = NodeTrigger

TRANSITIONS: Mapping[tuple[NodeState, NodeTrigger], NodeState] = MappingProxyType(
    {
        (_S.CREATED, _T.BUILD): _S.BUILT,
        (_S.CREATED, _T.DISPOSE): _S.DISPOSED,  # nothing was acquired; disposing is harmless
        (_S.BUILT, _T.START): _S.STARTING,
        (_S.BUILT, _T.DISPOSE): _S.DISPOSED,  # built but never run: release the clients
        (_S.STARTING, _T.START_COMPLETED): _S.RUNNING,
        (_S.STARTING, _T.STOP): _S.STOPPING,  # stop requested, or a start-up step failed
        (_S.RUNNING, _T.STOP): _S.STOPPING,
        (_S.STOPPING, _T.STOP_COMPLETED): _S.STOPPED,
        (_S.STOPPED, _T.DISPOSE): _S.DISPOSED,
    }
)
"""The only statement of which (state, trigger) moves are legal."""

_ACTIVE = (NodeState.STARTING, NodeState.RUNNING)
"""The node's loop is serving: there is something to stop."""

_LIVE = (NodeState.STARTING, NodeState.RUNNING, NodeState.STOPPING)
"""The node's loop tasks exist: too late to set things up, too early to dispose at once."""

_VALID: Mapping[NodeState, tuple[NodeTrigger, ...]] = MappingProxyType(
    {s: tuple(t for (st, t) in TRANSITIONS if st is s) for s in NodeState}
)

# What to tell the caller when a trigger is refused, keyed by (state, trigger) or by trigger alone.
_ADVICE: Mapping[object, str] = MappingProxyType(
    {
        (_S.BUILT, _T.BUILD): "the node is already built; build() runs once per node",
        _T.BUILD: "build() runs once, on a new node",
        (_S.CREATED, _T.START): "call build() before run()/run_async()",
        _T.START: "a node runs once; create a new TradingNode to run again",
        _T.STOP: "stop() applies to a STARTING or RUNNING node",
        _T.DISPOSE: "stop the node first (stop()/stop_async()) and wait until it is STOPPED",
        _S.DISPOSED: "the node was disposed; create a new TradingNode",
    }
)


class NodeFSM:
    """Holds the node's state and moves it only along :data:`TRANSITIONS`.

    The state is read from other threads (a health check), so moves are made under a lock and
    ``state`` is a plain attribute read (atomic in CPython).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self.state = NodeState.CREATED

    def can(self, trigger: NodeTrigger) -> bool:
        return (self.state, trigger) in TRANSITIONS

    def trigger(self, trigger: NodeTrigger) -> NodeState:
        with self._lock:
            state = self.state
            new = TRANSITIONS.get((state, trigger))
            if new is None:
                raise self._refusal(state, trigger)
            self.state = new
            return new

    def _refusal(self, state: NodeState, trigger: NodeTrigger) -> NodeStateError:
        advice = _ADVICE.get((state, trigger)) or _ADVICE.get(state) or _ADVICE.get(trigger, "")
        valid = ", ".join(t.value for t in _VALID[state]) or "none (terminal state)"
        message = (
            f"node '{self._name}' is {state.value} and cannot {trigger.value}: {advice} "
            f"(allowed now: {valid})"
        )
        if state is NodeState.DISPOSED:
            return NodeDisposed(message)
        if trigger is NodeTrigger.BUILD:
            return NodeAlreadyBuilt(message)
        if trigger is NodeTrigger.START and state is NodeState.CREATED:
            return NodeNotBuilt(message)
        return NodeStateError(message)


__all__ = ["TRANSITIONS", "NodeFSM", "NodeState", "NodeTrigger"]
