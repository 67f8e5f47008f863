"""Hang detection: one deadline per node, and one task that sleeps until the earliest one.

A node heartbeats from its kernel's own loop, so a missing heartbeat means that loop is stuck
(or the process is stopped). Each :meth:`HeartbeatMonitor.beat` moves the node's deadline to
``now + timeout``; a node whose deadline has passed is *expired* and is reported once, until it
beats again or is forgotten, so the supervisor kills it once and not on every tick.

The bookkeeping is pure (time passed in). :meth:`HeartbeatMonitor.watch` is the only async part:
a single task that sleeps exactly until the earliest deadline, never on a fixed tick, and is
woken early only when a beat sets a deadline *earlier* than the one it sleeps on (a first node,
a node back from expiry, a shorter per-beat timeout). Ordinary beats push deadlines later and
cost the watcher nothing: at worst it wakes at a stale deadline, finds nothing, and sleeps on.
With N nodes beating every 50 ms and a 300 ms timeout, that is one wake-up per node per
timeout at most, not a busy loop.

Finding the earliest deadline is a scan over the nodes: tens of nodes, not millions, and it
keeps the state one dict that cannot go stale.

**A monitor that was not looking does not judge.** A deadline passing proves a hang only if the
orchestrator was reading its socket all along. When its own process was held up (SIGSTOPped,
starved of CPU by the hypervisor, a long GC pause), the heartbeats of healthy nodes wait unread
in the socket, and every deadline passes at once: measured before this rule, five 0.5 s stops of
the orchestrator killed all three healthy nodes of a fleet three times each. So the watcher
checks how late it woke: later than ``late_s`` after the deadline it slept for means it was held
up, and it looks again ``settle_s`` later (the orchestrator's choice: two heartbeat intervals, in
which the unread beats are read and a healthy node beats again) before it reports anyone; when
it looks again, only a hold-up longer than ``settle_s`` puts the judgement off once more, so a
loop that is busy rather than stopped delays a hang's report by ``settle_s`` at most. And
every report first awaits ``settle`` (the orchestrator's: let the receive loop read what has
arrived), so a beat that came just in time is not judged unread. A hang is then reported at most
``settle_s`` later, and only after a hold-up of the orchestrator itself.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable

import trio

NodeId = Hashable


class InvalidHeartbeatTimeout(ValueError):
    """A heartbeat timeout is not a finite number > 0."""


class WatcherAlreadyRunning(RuntimeError):
    """:meth:`HeartbeatMonitor.watch` was started twice on the same monitor."""


def _check_timeout(value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidHeartbeatTimeout(f"heartbeat timeout must be a finite number > 0, got {value!r}")
    return float(value)


class HeartbeatMonitor:
    """Heartbeat deadlines of the nodes being watched. Use from one trio thread only.

    ``settle_s``: how long the watcher keeps looking after it finds it was held up (module
    docstring; default a sixth of the timeout); it counts as held up when it wakes more than a
    quarter of that after its deadline.
    """

    def __init__(self, timeout_s: float, settle_s: float | None = None) -> None:
        self.timeout_s = _check_timeout(timeout_s)
        self.settle_s = self.timeout_s / 6 if settle_s is None else _check_timeout(settle_s)
        self.late_s = self.settle_s / 4
        self.held_up = 0  # times the watcher woke late and deferred its judgement
        self._look_again_at = -math.inf
        self._looking_again = False  # deferred once already: only a longer hold-up defers again
        self._deadlines: dict[NodeId, float] = {}
        self._last_beat: dict[NodeId, float] = {}
        self._reported: set[NodeId] = set()
        self._armed_for = math.inf
        self._wakeup: trio.Event | None = None
        self._watching = False

    def beat(self, node_id: NodeId, now: float, timeout_s: float | None = None) -> None:
        """Record a heartbeat of ``node_id`` at ``now``; its deadline becomes ``now + timeout``.

        ``timeout_s`` overrides the monitor's timeout for this deadline only, e.g. a longer grace
        while a node starts up and cannot beat yet.
        """
        deadline = now + (self.timeout_s if timeout_s is None else _check_timeout(timeout_s))
        self._deadlines[node_id] = deadline
        self._last_beat[node_id] = now
        self._reported.discard(node_id)
        if deadline < self._armed_for and self._wakeup is not None:
            self._wakeup.set()

    def forget(self, node_id: NodeId) -> None:
        """Stop watching ``node_id`` (it ended, or it is being killed). Unknown ids are ignored."""
        self._deadlines.pop(node_id, None)
        self._last_beat.pop(node_id, None)
        self._reported.discard(node_id)

    def last_beat(self, node_id: NodeId) -> float | None:
        """When ``node_id`` last beat (for "last heartbeat age" in status), None if not watched."""
        return self._last_beat.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._deadlines

    def next_deadline(self) -> float | None:
        """The earliest deadline among nodes not yet reported expired, None if there is none."""
        pending = [d for n, d in self._deadlines.items() if n not in self._reported]
        return min(pending) if pending else None

    def _any_expired(self, now: float) -> bool:
        return any(d <= now and n not in self._reported for n, d in self._deadlines.items())

    def expired(self, now: float) -> list[NodeId]:
        """Nodes whose deadline is <= ``now`` and that were not reported yet; marks them reported."""
        due = [n for n, d in self._deadlines.items() if d <= now and n not in self._reported]
        due.sort(key=self._deadlines.__getitem__)
        self._reported.update(due)
        return due

    async def watch(
        self,
        on_expired: Callable[[NodeId], object],
        clock: Callable[[], float] = trio.current_time,
        settle: Callable[[], Awaitable[object]] | None = None,
        on_held_up: Callable[[float], object] | None = None,
    ) -> None:
        """Forever: sleep until the earliest deadline, call ``on_expired(node_id)`` for each expired node.

        ``on_expired`` is synchronous so that one slow handler cannot delay the detection of the
        next hang; hand work to another task (e.g. ``send_nowait`` on a channel) if it must wait.
        An exception from it ends the watch. ``clock`` is the time source the beats use; the
        sleep is computed from it, so any clock in seconds works (``trio.current_time`` by
        default, which also makes ``trio.testing.MockClock`` drive it in tests). ``settle`` is
        awaited before expired nodes are reported, and ``on_held_up(seconds_late)`` is called
        when the watcher finds it was held up (module docstring).
        """
        if self._watching:
            raise WatcherAlreadyRunning("one watch() per HeartbeatMonitor")
        self._watching = True
        try:
            while True:
                now = clock()
                late = now - self._armed_for
                # Held up: beats may wait unread, so look again in a while. Once looking again,
                # only a hold-up longer than that while counts: a loop that is merely busy
                # (late by tens of ms at every wake-up) must not put a real hang off for ever.
                if late > (self.settle_s if self._looking_again else self.late_s):
                    self._look_again_at = now + self.settle_s
                    self._looking_again = True
                    self.held_up += 1
                    if on_held_up is not None:
                        on_held_up(late)
                if not self._any_expired(now):
                    self._looking_again = False
                    deadline = self.next_deadline()
                elif now < self._look_again_at:
                    deadline = self._look_again_at
                else:
                    self._looking_again = False
                    if settle is not None:
                        await settle()
                    for node_id in self.expired(clock()):
                        on_expired(node_id)
                    deadline = self.next_deadline()
                self._armed_for = math.inf if deadline is None else deadline
                self._wakeup = trio.Event()
                with trio.move_on_after(max(0.0, self._armed_for - clock())):
                    await self._wakeup.wait()
        finally:
            self._watching = False
            self._wakeup = None
            self._armed_for = math.inf
