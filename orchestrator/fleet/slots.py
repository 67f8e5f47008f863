"""Slots: the child processes the orchestrator owns, warm spares included.

A slot is one child process, named by its slot id (also its ZeroMQ identity). It starts
as a warm spare: interpreter up, everything imported, DEALER connected, ``hello`` sent.
Starting or restarting a node assigns it to a ready spare, so no interpreter start sits on
the critical path; the pool is refilled in the background. When no spare is ready the
orchestrator starts a slot for the node there and then (a cold start) and says so.
"""

from __future__ import annotations

import collections
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import trio

from orchestrator.fleet.zygote import Zygote
from orchestrator.process.lifeline import Lifeline
from orchestrator.process.spawn import ChildProcess, spawn
from orchestrator.supervision.exit_reason import Intent
from orchestrator.transport.sockets import slot_identity

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Slot:
    slot_id: str
    identity: bytes
    process: ChildProcess
    ready: trio.Event = field(default_factory=trio.Event)  # set when its hello arrived
    exited: trio.Event = field(default_factory=trio.Event)
    exit_seen_at: float | None = None  # trio time its exit was seen (the process reaped)
    node_id: str | None = None
    incarnation: int = 0
    intent: Intent = Intent.NONE
    note: str | None = None  # why we signalled it, for the exit reason
    bye: str | None = None  # the reason the child gave in its bye
    cold: bool = False
    relayed_seq: int = 0  # the newest event seq this child sent that is in the journal
    acked_seq: int = 0  # the newest seq acked to this child
    lifeline: Lifeline | None = None  # sees its death as it begins (None: from its exit only)
    # Its node's end was handled before its exit was seen (killed as hung, or its lifeline lost):
    # the node has moved on, and the exit, when seen, only closes the slot.
    handed_over: bool = False
    # It answered its assign (a heartbeat at once, before it builds the node): until then the
    # hang deadline is the heartbeat timeout, not the start-up's (a wedged spare is seen at once).
    assign_answered: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


KEPT_SLOT_LOGS = 50
"""Child logs that say something (``logs/s<N>.log``) kept at most, the newest (``SlotLogs``)."""


def slot_log_path(log_dir: Path, slot_id: str) -> Path:
    """A child's own log: what it says until it is assigned a node (then its node's log)."""
    return log_dir / f"{slot_id}.log"


class SlotLogs:
    """Removes the logs of ended children that have nothing to say, and bounds the others.

    Why: every child gets a log of its own (``slot_log_path``) for what it says as a spare; once
    assigned, its output goes to its node's log. So the log of a child that said hello, ran a
    node and ended is empty, and without this each restart left one more file behind, for as
    long as the runtime dir lasted (a node crashing every minute: 1,440 files a day). A log
    with something in it (a spare that failed, a child stopped as a spare), or of a child that
    never said hello (the message about it names the file), is kept: the newest
    ``KEPT_SLOT_LOGS`` of them.
    """

    def __init__(self, keep: int = KEPT_SLOT_LOGS) -> None:
        self._keep = keep
        self._kept: collections.deque[Path] = collections.deque()

    def ended(self, path: Path, said_hello: bool) -> None:
        """The child whose log is ``path`` has exited."""
        try:
            if said_hello and path.stat().st_size == 0:
                path.unlink()
                return
        except OSError:
            return  # gone already (its runtime dir removed, say)
        self._kept.append(path)
        while len(self._kept) > self._keep:
            self._kept.popleft().unlink(missing_ok=True)


def child_argv(
    python: str | None,
    slot_id: str,
    endpoint: str,
    heartbeat_s: float,
    parent_timeout_s: float,
    node_log_dir: Path | None = None,
    log_max_bytes: int | None = None,
    log_backups: int | None = None,
    rehearse: bool = False,
    prepare: Path | None = None,
    lifeline: Path | None = None,
) -> list:
    # With node_log_dir the child moves its output to <node_log_dir>/<node>.log once assigned,
    # rotated by size as the fleet file says (None: the child's defaults).
    extra = [] if node_log_dir is None else ["--log-dir", str(node_log_dir)]
    if log_max_bytes is not None:
        extra += ["--log-max-bytes", str(log_max_bytes)]
    if log_backups is not None:
        extra += ["--log-backups", str(log_backups)]
    if rehearse:
        extra.append("--rehearse")
    if prepare is not None:
        extra += ["--prepare", str(prepare)]
    if lifeline is not None:
        extra += ["--lifeline", str(lifeline)]
    return [
        python or sys.executable,
        "-m",
        "orchestrator.child",
        "--slot",
        slot_id,
        "--endpoint",
        endpoint,
        "--heartbeat-interval",
        str(heartbeat_s),
        "--parent-timeout",
        str(parent_timeout_s),
        *extra,
    ]


async def start_slot(
    slot_id: str,
    endpoint: str,
    log_dir: Path,
    *,
    python: str | None,
    heartbeat_s: float,
    parent_timeout_s: float,
    node_log_dir: Path | None = None,
    log_max_bytes: int | None = None,
    log_backups: int | None = None,
    zygote: Zygote | None = None,
    rehearse: bool = False,
    prepare: Path | None = None,
    lifeline_dir: Path | None = None,
) -> Slot:
    """Start one child, output to its log, in its own session: forked by ``zygote`` if given, else
    by fork+exec from the trio thread. ``rehearse``: the child rehearses a node before its hello
    (``orchestrator.child.rehearsal``); ``prepare``: it builds ahead the nodes of that file
    (``orchestrator.child.prepared``); ``lifeline_dir``: where its lifeline file goes (see
    ``orchestrator.process.lifeline``; None, or a platform without one: its death is seen from
    its exit only). Raises ``ZygoteError`` if the zygote cannot fork it."""
    log = slot_log_path(log_dir, slot_id)
    lifeline = _new_lifeline(lifeline_dir, slot_id)
    argv = child_argv(
        python,
        slot_id,
        endpoint,
        heartbeat_s,
        parent_timeout_s,
        node_log_dir,
        log_max_bytes,
        log_backups,
        rehearse,
        prepare,
        None if lifeline is None else lifeline.path,
    )
    try:
        if zygote is not None:
            process = await zygote.fork(argv[3:], log)  # what follows "python -m orchestrator.child"
        else:
            process = await spawn(argv, stdout=log, stderr=log, start_new_session=True)
    except BaseException:
        if lifeline is not None:
            lifeline.stop()  # no child will hold it: its file goes
        raise
    return Slot(slot_id, slot_identity(slot_id), process, lifeline=lifeline)


def _new_lifeline(lifeline_dir: Path | None, slot_id: str) -> Lifeline | None:
    if lifeline_dir is None:  # None where lifelines are not supported (Orchestrator._lifeline_dir)
        return None
    try:
        return Lifeline.create(lifeline_dir / f"{slot_id}.lifeline")
    except OSError as exc:
        log.warning("no lifeline for child %s (its crash is seen from its exit only): %s", slot_id, exc)
        return None
