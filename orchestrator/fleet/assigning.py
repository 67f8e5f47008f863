"""How a node gets a child: a ready spare, or one started now; the pool refilled after.

Part of :class:`orchestrator.fleet.orchestrator.Orchestrator`, as a mixin (these share its node
statuses, slots, heartbeat monitor and spare pool). A start and every restart come here
(``_assign``): the child is taken from the pool, bound to the node, sent its ``assign`` (with
the pid of a predecessor that may still be dying, whose end the child awaits before it takes
the node's state store), and given the heartbeat timeout to answer it. Kept apart from the
orchestrator's module so that the restart's critical path reads in one place.
"""

from __future__ import annotations

import logging

import trio
import zmq

from orchestrator.fleet.errors import OrchestratorError
from orchestrator.fleet.state import NodeState, NodeStatus, Transition
from orchestrator.protocol import messages
from orchestrator.transport.errors import PeerUnreachableError

log = logging.getLogger("orchestrator")

ASSIGN_ATTEMPTS = 3
"""Children tried for one start when the one taken turns out to be gone (see ``_assign``)."""

SPARE_REFILL_DEFER_MAX_S = 1.0
"""How long the spare pool's refill waits at most for the node just assigned to reach RUNNING."""


class NodeAssignment:
    """The Orchestrator's assigning of nodes to children (module docstring)."""

    async def _start_quietly(self, node_id: str) -> None:
        try:
            await self.start_node(node_id)
        except Exception as exc:  # a start that cannot even begin is reported, not fatal
            log.error("starting node %s failed: %s", node_id, exc)

    async def _assign_or_fail(self, status: NodeStatus) -> None:
        """Assign, or mark the node FAILED with the reason: one node's bad start never stops the rest."""
        try:
            await self._assign(status)
        except (OSError, trio.TooSlowError, PeerUnreachableError, zmq.ZMQError) as exc:
            slot = self._node_slot.pop(status.node, None)
            if slot is not None:
                slot.node_id = None
                slot.process.kill()
            self._heartbeats.forget(status.node)
            status.last_exit = f"could not start a child for it: {type(exc).__name__}: {exc}"
            self._move(status, Transition.EXITED, reason=status.last_exit)
            self._move(status, Transition.GIVE_UP, reason=status.last_exit)
            raise OrchestratorError(f"node {status.node}: {status.last_exit}") from exc

    async def _assign(self, status: NodeStatus) -> None:
        """Hand ``status``'s node to a child: a ready spare, else one started now.

        A spare may be gone by the time its assign is sent: dead since its hello, its exit not
        seen yet (the orchestrator was held up, say). The send then finds no such peer, and the
        node goes to the next child, up to ``ASSIGN_ATTEMPTS``, instead of failing for good.
        """
        spec = self.config.node(status.node)
        for attempt in range(1, ASSIGN_ATTEMPTS + 1):
            slot, cold = await self._children.take()
            previous = (status.incarnation, status.pid, status.cold_start)
            status.incarnation += 1
            status.pid = slot.pid
            status.cold_start = cold
            status.started_at = None
            slot.node_id = status.node
            slot.incarnation = status.incarnation
            slot.cold = cold
            self._node_slot[status.node] = slot
            # The child answers an assign at once (a heartbeat before it builds the node); only
            # then has it startup_timeout_s to reach RUNNING. A spare that cannot answer
            # (stopped, wedged) is found hung within the heartbeat timeout, not the start-up's.
            self._heartbeats.beat(status.node, trio.current_time())
            # A hung or crashed predecessor may still be dying: the new child takes the store
            # once it is gone.
            after_pid = self._dying_pid(status.node)
            assign = messages.assign(
                status.node, status.incarnation, self.config.assign_config(spec), status.last_seq, after_pid
            )
            try:
                await self._send(slot, assign)
            except PeerUnreachableError:
                slot.process.kill()  # whatever is left of it must not take a node later
                if self._node_slot.get(status.node) is not slot:
                    return  # its exit was seen meanwhile, as the node's end: that path restarts it
                status.incarnation, status.pid, status.cold_start = previous
                slot.node_id = None
                del self._node_slot[status.node]
                self._heartbeats.forget(status.node)
                if attempt == ASSIGN_ATTEMPTS:
                    raise
                log.warning(
                    "child %s was gone when node %s was assigned to it; trying another child",
                    slot.slot_id,
                    status.node,
                )
                continue
            self._announce(status, cold=cold, **({"after_pid": after_pid} if after_pid else {}))
            self._nursery.start_soon(self._refill_after_start, status, status.incarnation)
            return

    async def _refill_after_start(self, status: NodeStatus, incarnation: int) -> None:
        """Refill the spare pool once the node just assigned has left STARTING (or after a bound).

        Why not at once: a new spare costs CPU (a fork of the zygote and a rehearsal, ~0.1 s; an
        interpreter start importing everything, 0.6-0.9 s, without the zygote), and started at
        the moment of a restart it competes with the spare that is building and recovering the
        node, on the restart's critical path. Measured when spares were fork+exec'd
        (bench/restart_latency.py, 3 nodes, 2 cores): kill -9 -> RUNNING p50 26.9 ms with the
        refill at assignment, 24.1-24.4 ms with it here. The bound keeps a node that is slow to
        start from leaving the pool empty for long.
        """
        with trio.move_on_after(SPARE_REFILL_DEFER_MAX_S):
            await self.wait_until(
                lambda: status.incarnation != incarnation or status.state is not NodeState.STARTING
            )
        if not self._closing:
            self._children.refill()


__all__ = ["ASSIGN_ATTEMPTS", "SPARE_REFILL_DEFER_MAX_S", "NodeAssignment"]
