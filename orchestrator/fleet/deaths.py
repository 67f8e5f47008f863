"""How the fleet answers the end of a node's child: as its death begins, at its exit, or on a hang.

Part of :class:`orchestrator.fleet.orchestrator.Orchestrator`, as a mixin: these handlers share
its state (slots, node statuses, the spare pool, the heartbeat monitor, restart trackers) and are
kept apart so that supervision, the part an operator reasons about when a node keeps restarting,
reads in one place. It is driven by events, never by polling:

- a crash is the child's lifeline lost, as the kernel begins to tear the process down
  (``_on_lost_lifeline``; ``orchestrator.process.lifeline``), or else its pidfd becoming readable
  (``_watch_exit``);
- a hang is the HeartbeatMonitor's deadline passing: ``_on_hang`` sends SIGKILL and takes the
  same path at once, without waiting for the kernel to finish the process (see its docstring).

What happens next is the node's RestartTracker's decision (``_after_exit``): restart on a warm
spare (immediately, then with backoff), stop, or fail with a reason.
"""

from __future__ import annotations

import logging
import signal

import trio

from orchestrator.fleet.errors import OrchestratorError
from orchestrator.fleet.slots import Slot
from orchestrator.fleet.state import NodeState, NodeStatus, Transition
from orchestrator.process.exit_status import ExitStatus
from orchestrator.process.lifeline import LifelineEnd, dying_status
from orchestrator.supervision.exit_reason import ExitClassification, ExitReason, Intent, classify_exit
from orchestrator.supervision.policy import Action

log = logging.getLogger("orchestrator")


class NodeDeaths:
    """The Orchestrator's handlers of a child's end (module docstring)."""

    async def _watch_exit(self, slot: Slot) -> None:
        exit_status = await slot.process.wait()
        slot.exit_seen_at = trio.current_time()
        slot.exited.set()
        self._slots.pop(slot.identity, None)
        self._children.discard(slot)
        node_id = slot.node_id
        if node_id is not None and slot.handed_over:
            # Its end was handled when its death began (_on_lost_lifeline), or it was found hung,
            # killed and replaced at once (_on_hang): its node has moved on.
            if slot.intent is Intent.HANG_KILL and exit_status.signal != signal.SIGKILL:
                log.warning(
                    "child %s of node %s, replaced as hung, had ended by itself: %s",
                    slot.slot_id,
                    node_id,
                    exit_status.describe(),
                )
            return
        if node_id is None or self._node_slot.get(node_id) is not slot:
            if not slot.ready.is_set() and not self._closing:
                # Died before its hello: a broken child program. Say so, and do not spin.
                log.error(
                    "child %s exited before saying hello (%s); see %s",
                    slot.slot_id,
                    exit_status.describe(),
                    self.log_dir,
                )
                await trio.sleep(1.0)
            if not self._closing:
                self._children.refill()
            return
        ending = classify_exit(exit_status, slot.intent, slot.note)
        await self._after_exit(self._node_exited(slot, ending), ending.reason)

    def _node_exited(self, slot: Slot, ending: ExitClassification) -> NodeStatus:
        """``slot``'s child no longer runs its node: record how it ended; its status is returned."""
        node_id = slot.node_id
        del self._node_slot[node_id]
        self._heartbeats.forget(node_id)
        status = self.nodes[node_id]
        status.last_exit = ending.text if slot.bye is None else f"{ending.text}: {slot.bye}"
        status.last_reason = ending.reason.value
        status.pid = None
        return status

    async def _after_exit(self, status: NodeStatus, reason: ExitReason) -> None:
        """What follows a node's end: STOPPED, or EXITED and what its restart policy decides."""
        if status.state is NodeState.STOPPING:
            self._move(status, Transition.STOPPED, reason=status.last_exit)
            return
        self._move(status, Transition.EXITED, reason=status.last_exit)
        now = trio.current_time()
        uptime = 0.0 if status.started_at is None else now - status.started_at
        decision = self._trackers[status.node].decide(reason, now, uptime)
        if self._closing:
            self._move(status, Transition.STOP)
        elif decision.action is Action.RESTART:
            status.restarts += 1
            self._move(status, Transition.RETRY, reason=decision.why, delay_s=decision.delay_s)
            if decision.delay_s > 0:
                await trio.sleep(decision.delay_s)
            if status.state is NodeState.RESTARTING and not self._closing:
                self._move(status, Transition.START)
                try:
                    await self._assign_or_fail(status)
                except OrchestratorError as exc:
                    log.error("%s", exc)
        elif decision.action is Action.FAIL:
            self._move(status, Transition.GIVE_UP, reason=decision.why)
        else:
            self._move(status, Transition.STOP, reason=decision.why)

    def _dying_pid(self, node_id: str) -> int:
        """The pid of ``node_id``'s handed-over child whose exit is not seen yet; 0: none."""
        for slot in self._slots.values():
            if slot.node_id == node_id and slot.handed_over and not slot.exited.is_set():
                return slot.pid
        return 0

    async def _watch_lifeline(self, slot: Slot) -> None:
        """From its hello to its exit, wait for ``slot``'s child to die holding its lifeline."""
        lifeline = slot.lifeline
        end = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_when_set, slot.exited, nursery.cancel_scope)
                await slot.ready.wait()  # it holds the lifeline from before its hello
                try:  # caught here, in the body: out of the nursery it would be an ExceptionGroup
                    end = await trio.to_thread.run_sync(
                        lifeline.watch, abandon_on_cancel=True, limiter=self._lifeline_threads
                    )
                except OSError as exc:  # LifelineError, or the file could not be mapped
                    log.warning(
                        "child %s: lifeline lost from sight (%s); its exit will tell", slot.slot_id, exc
                    )
                nursery.cancel_scope.cancel()
        finally:
            lifeline.stop()
        if end is LifelineEnd.LOST:
            self._on_lost_lifeline(slot)

    def _on_lost_lifeline(self, slot: Slot) -> None:
        """``slot``'s child has begun to die on its own: hand its node to a spare now.

        Why not wait for the exit: the kernel reports it only once it has unmapped the process's
        memory and closed its files (~4-7 ms for a node, more for a bigger one); the lifeline
        (``orchestrator.process.lifeline``) tells as that teardown begins, and its exit status
        is readable then. The rest is the hung node's path (_on_hang): the replacement overlaps
        the teardown and waits for the old pid's end only before it takes the node's state store.
        A death we caused (a stop, a hang kill) or a spare's is left to the exit watcher.
        """
        node_id = slot.node_id
        if (
            node_id is None
            or slot.exited.is_set()
            or slot.handed_over
            or slot.intent is not Intent.NONE
            or self._node_slot.get(node_id) is not slot
        ):
            return
        exit_status = dying_status(slot.pid)
        if exit_status is None:
            return  # not readable: its exit will tell
        self._hand_over(slot, exit_status)

    def _hand_over(self, slot: Slot, exit_status: ExitStatus) -> None:
        """End ``slot``'s node now, as ``exit_status`` says, before the exit is seen; its restart
        (or not) follows. The exit, when seen, only closes the slot (``_watch_exit``)."""
        slot.handed_over = True
        ending = classify_exit(exit_status, slot.intent, slot.note)
        self._nursery.start_soon(self._after_exit, self._node_exited(slot, ending), ending.reason)

    def _on_hang(self, node_id: str) -> None:
        """``node_id`` missed its heartbeat deadline: SIGKILL its child and replace it at once.

        Why not wait for the exit: we sent the SIGKILL, so the child will never
        run another instruction of its own; what is left is the kernel tearing down its memory,
        ~4-6 ms on the project's machine, which the replacement's start overlaps. The one thing the
        new child must not do before the old one is gone is take its state store: it waits for
        the store, whose lock the kernel releases with the old process's files: the assign names
        the old pid (``after_pid``), and the child waits for its end on a pidfd before it opens
        the store (``orchestrator.child.predecessor``). Its frames still queued, if any, are dropped
        (``EventRelay.on_events``): a durable node's new child resends them from its store.
        """
        slot = self._node_slot.get(node_id)
        if slot is None or slot.exited.is_set():
            return
        status = self.nodes[node_id]
        if status.state is NodeState.STARTING and slot.assign_answered:
            waited, timeout = "reach RUNNING", self.config.startup_timeout_s
        elif status.state is NodeState.STARTING:
            waited, timeout = "answer its assign", self.config.heartbeat_timeout_s
        else:
            waited, timeout = "send a heartbeat", self.config.heartbeat_timeout_s
        slot.intent = Intent.HANG_KILL
        slot.note = f"did not {waited} within {timeout * 1000:.0f} ms"
        if not slot.process.kill():
            return  # it had ended already: its exit watcher handles it as any exit
        self._hand_over(slot, ExitStatus(-signal.SIGKILL))


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


__all__ = ["NodeDeaths"]
