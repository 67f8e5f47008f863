"""OrphanReaper: reap the processes this one adopted as a child subreaper but never started.

Why: the orchestrator marks itself a child subreaper (``PR_SET_CHILD_SUBREAPER``), so that the
zygote's children become its own. The kernel then hands it *every* orphan of its process tree:
a process a node spawned and left behind (a strategy's subprocess, a shell's background job)
when that node's process ended. Nothing watches such a process: once it exits it stays a
zombie for as long as the orchestrator runs, one more pid taken each time.

What it does: every ``interval_s`` it lists this process's children (``/proc/self/task/*/
children``) and reaps (``waitpid``) each zombie that ``known()`` (by default every child handle
of this process, ``spawn.known_child_pids``) does not name and that was already unknown
``grace_s`` before: a child about to be registered (a fork just answered) is known within
milliseconds, and one that is known is reaped by its own watcher, which must get its exit
status. An adopted process that is still running is logged once, with its command line: it was
left behind by a node and nobody supervises it.

Only for a process that owns all its children, such as ``orchestrator up``: a host that embeds
the orchestrator may have children of its own, whose exit statuses this would take.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import trio

from orchestrator.process.spawn import known_child_pids

log = logging.getLogger("orchestrator")

REAP_INTERVAL_S = 2.0
ORPHAN_GRACE_S = 2.0


def own_children() -> set[int]:
    """The pids whose parent is this process (any of its threads), from ``/proc``."""
    pids: set[int] = set()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return pids


def _state_and_command(pid: int) -> tuple[str, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    state = stat[stat.rindex(b")") + 2 :].split()[0].decode()
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return state, command


class OrphanReaper:
    """See the module docstring; ``known()`` returns the pids the orchestrator watches itself."""

    def __init__(
        self,
        known: Callable[[], set[int]] = known_child_pids,
        interval_s: float = REAP_INTERVAL_S,
        grace_s: float = ORPHAN_GRACE_S,
    ) -> None:
        self._known = known
        self._interval_s = interval_s
        self._grace_s = grace_s
        self._unknown_since: dict[int, float] = {}  # when each unknown child was first seen
        self._told: set[int] = set()
        self.reaped = 0

    async def run(self) -> None:
        while True:
            await trio.sleep(self._interval_s)
            self.scan(trio.current_time())

    def scan(self, now: float) -> None:
        """Reap the unknown zombies past their grace; note the unknown living orphans once."""
        first_seen: dict[int, float] = {}
        for pid in own_children() - self._known():
            since = first_seen[pid] = self._unknown_since.get(pid, now)
            if now - since < self._grace_s:
                continue  # about to be registered, perhaps: look again next time
            found = _state_and_command(pid)
            if found is None or pid in self._known():
                continue
            state, command = found
            if state != "Z":
                if pid not in self._told:
                    self._told.add(pid)
                    log.warning(
                        "process %d (%s) was left behind by a node's process and adopted by the "
                        "orchestrator: nothing supervises it",
                        pid,
                        command or "?",
                    )
                continue
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                reaped = 0
            if reaped:
                del first_seen[pid]
                self._told.discard(pid)
                self.reaped += 1
                log.info("reaped orphan %d (%s)", pid, os.waitstatus_to_exitcode(status))
        self._unknown_since = first_seen


__all__ = ["ORPHAN_GRACE_S", "REAP_INTERVAL_S", "OrphanReaper", "own_children"]
