"""Strays: children the zygote forked for a fork the orchestrator had given up on.

Why: a zygote that does not answer a fork within ``FORK_REPLY_TIMEOUT_S`` is killed, and the
child is started by fork+exec instead (``orchestrator.fleet.zygote``). A zygote that was only
slow may have forked just before it was killed. That child, a *stray*, runs the child program,
is adopted by this process (a child subreaper), connects and says hello under the slot id of
the fork that was given up. Nothing watches it: left alone it would wait for an assign that
never comes, stop itself after ``parent_timeout`` for lack of the parent's heartbeats, and
stay a zombie until the orchestrator exits.

So the pool remembers the slot ids of unanswered forks (``ChildPool.abandoned``) and starts the
replacement under a new id, and a hello under one of those ids is a stray's: it is SIGKILLed and
reaped here. Only a process that is this process's child is killed (``/proc/<pid>/stat``): its
pid cannot be reused by another process before this process reaps it, so the pid the hello
names is the stray's. A hello naming any other pid is only refused, as from any unknown peer.
"""

from __future__ import annotations

import logging
import os

import trio

from orchestrator.process.spawn import ChildProcess

log = logging.getLogger("orchestrator")


def is_own_child(pid: int) -> bool:
    """Whether ``pid`` is a live or unreaped child of this process (False if it cannot be told)."""
    if type(pid) is not int or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ")" ends it.
        return int(stat[stat.rindex(b")") + 2 :].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def end_stray(nursery: trio.Nursery, slot_id: str, pid: int) -> bool:
    """Kill the stray ``pid`` (said hello as ``slot_id``) and reap it in ``nursery``'s background.

    Returns False, having done nothing, if ``pid`` is not this process's child.
    """
    if not is_own_child(pid):
        log.warning(
            "a process said hello as child %s, whose fork was given up, but pid %r is not a child "
            "of this orchestrator: refused, left alone",
            slot_id,
            pid,
        )
        return False
    process = ChildProcess.adopt(pid, ["orchestrator.child", "--slot", slot_id])
    process.kill()  # ours, so not reaped yet: the pid is still the stray's
    log.warning(
        "child %s (pid %d) was forked by a zygote that had not answered in time; killed it (the "
        "node it was meant for started in another child)",
        slot_id,
        pid,
    )
    nursery.start_soon(process.wait)  # reaps it: no zombie left
    return True


__all__ = ["end_stray", "is_own_child"]
