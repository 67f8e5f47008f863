"""Where a node's process comes from: a pool of warm spares, children forked by the zygote.

The Orchestrator asks for a child when a node starts or restarts (:meth:`ChildPool.take`): a
ready spare if there is one (*warm*: it has imported everything, connected, said hello and
rehearsed a node), else a child started now (*cold*, which the node's events say). Every child
is forked by the zygote (``orchestrator.child.zygote``) while one runs, by fork+exec otherwise:
a fork costs a few ms where an interpreter start costs ~0.6 s on the project's machine.

The pool does not watch its children: the Orchestrator registers each new one
(``on_new_child``), watches its exit, and tells the pool to forget a spare that died
(:meth:`ChildPool.discard`) and when to refill (:meth:`ChildPool.refill`). The pool only
knows how to make children and which ones are waiting.
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Callable
from pathlib import Path

import trio

from orchestrator.fleet.config import OrchestratorConfig
from orchestrator.fleet.slots import Slot, SlotLogs, slot_log_path, start_slot
from orchestrator.fleet.zygote import ForkUnanswered, Zygote, ZygoteError
from orchestrator.process.pdeathsig import become_child_subreaper
from orchestrator.transport.sockets import slot_identity

log = logging.getLogger("orchestrator")

ZYGOTE_RETRY_S = 1.0
"""After the zygote exits (or cannot start), wait this long before starting another."""


class ChildPool:
    """The warm spares and the zygote; see the module docstring."""

    def __init__(
        self,
        config: OrchestratorConfig,
        node_endpoint: str,
        log_dir: Path,
        *,
        on_new_child: Callable[[Slot], None],
        on_change: Callable[[], None],
        closing: Callable[[], bool],
        lifeline_dir: Path | None = None,
    ) -> None:
        self._config = config
        self._lifeline_dir = lifeline_dir  # each child's lifeline file goes there (None: no lifelines)
        self._endpoint = node_endpoint
        self._log_dir = log_dir
        self._on_new_child = on_new_child  # registers the child and watches its exit
        self._on_change = on_change  # something observable changed (a spare is ready)
        self._closing = closing
        self._spares: collections.deque[Slot] = collections.deque()
        self._starting = 0
        self._zygote: Zygote | None = None  # None: fork+exec
        self._zygote_tried = trio.Event()  # the first zygote is ready, or could not be started
        self._slot_ids = itertools.count(1)
        self._slot_logs = SlotLogs()
        self.abandoned: set[bytes] = set()
        """Identities of the forks the zygote did not answer: what says hello as one is a stray
        (``orchestrator.fleet.strays``). One per zygote killed for it: never many."""
        self._nursery: trio.Nursery | None = None
        self._prepare_path: Path | None = None

    def start(self, nursery: trio.Nursery, prepare_path: Path | None = None) -> None:
        """Start the zygote (if configured) and fill the pool, in the background.

        ``prepare_path``: the fleet's ``prepare`` file, passed to every spare (see
        ``orchestrator.child.prepared``); None: spares prepare nothing.
        """
        self._nursery = nursery
        self._prepare_path = prepare_path
        if self._config.zygote:
            nursery.start_soon(self._keep_zygote)
        else:
            self._zygote_tried.set()
        for _ in range(self._config.spares):
            nursery.start_soon(self._add_spare)

    @property
    def lifeline_dir(self) -> Path | None:
        """Where the children's lifeline files go (None: no lifelines)."""
        return self._lifeline_dir

    @property
    def spares(self) -> collections.deque[Slot]:
        """The spares ready to take, oldest first (read it, do not change it)."""
        return self._spares

    async def take(self) -> tuple[Slot, bool]:
        """A ready spare if there is one (``cold`` False), else a new child started now (True)."""
        while self._spares:
            slot = self._spares.popleft()
            if not slot.exited.is_set():
                return slot, False
        slot = await self._new_child()
        with trio.fail_after(self._config.startup_timeout_s):
            await first_of(slot.ready.wait, slot.exited.wait)
        if not slot.ready.is_set():
            raise OSError(
                f"child {slot.slot_id} exited before saying hello; see {slot_log_path(self._log_dir, slot.slot_id)}"
            )
        return slot, True

    def refill(self) -> None:
        """Start as many spares as the pool is short of (counting those already starting)."""
        missing = self._config.spares - len(self._spares) - self._starting
        for _ in range(max(0, missing)):
            self._nursery.start_soon(self._add_spare)

    def discard(self, slot: Slot) -> None:
        """``slot`` has exited: it is no longer a spare (if it was one); its log may go (``SlotLogs``)."""
        if slot in self._spares:
            self._spares.remove(slot)
        self._slot_logs.ended(slot_log_path(self._log_dir, slot.slot_id), slot.ready.is_set())

    def kill_zygote(self) -> None:
        if self._zygote is not None:
            self._zygote.process.kill()

    async def aclose(self) -> None:
        if self._zygote is not None:
            await self._zygote.aclose()
            self._zygote = None

    # -- making children -------------------------------------------------------------------------

    async def _keep_zygote(self) -> None:
        """Run a zygote for as long as the orchestrator runs; start another if it dies.

        Until the first one is ready (its warm-up: about one interpreter start) children wait for
        it (``_zygote_tried``); if it cannot start, children are started by fork+exec meanwhile.
        """
        if not become_child_subreaper():  # the zygote's children become ours (orchestrator.child.zygote)
            log.warning("no child subreaper on this system: children start by fork+exec")
            self._zygote_tried.set()
            return
        log_path = self._log_dir / "zygote.log"
        while not self._closing():
            try:
                zygote = await Zygote.start(self._config.python, log_path, self._config.startup_timeout_s)
            except OSError as exc:
                log.error("cannot start the zygote (children start by fork+exec meanwhile): %s", exc)
                self._zygote_tried.set()
                await trio.sleep(ZYGOTE_RETRY_S)
                continue
            self._zygote = zygote
            self._zygote_tried.set()
            self._on_change()
            status = await zygote.process.wait()
            if self._zygote is zygote:
                self._zygote = None
                await zygote.aclose()
            if not self._closing():
                log.error("the zygote exited (%s); starting another", status.describe())
                await trio.sleep(ZYGOTE_RETRY_S)

    async def _new_child(self, spare: bool = False) -> Slot:
        """A new child, forked by the zygote (fork+exec if there is none); a spare also rehearses.

        A spare rehearses a throwaway node before its hello (``orchestrator.child.rehearsal``):
        besides the first-run costs it takes off the restart, it makes, off the critical path,
        the copies of the pages the child shares with the zygote that a node's build writes to.
        Without it, zygote spares were the slower ones: assign -> RUNNING 19-30 ms against 15-18
        ms on a fork+exec'd spare (3 nodes on 2 cores, 40 kills per case, two rounds). With it
        (bench/restart_latency.py, 60 kills, one run each, not paired on a noisy machine):
        kill -> RUNNING p50 14.2 ms on zygote spares against 16.1 ms on fork+exec'd ones, the
        gain in the killed child's teardown (p50 4.2 against 6.1 ms: most of its pages are
        still shared, so there is less to free; the same difference as measured, paired, before
        the rehearsal existed), and a refill costs ~0.1 s of CPU instead of an interpreter start
        (0.6-0.9 s).
        """
        await self._zygote_tried.wait()
        config = self._config
        kwargs = dict(
            python=config.python,
            heartbeat_s=config.heartbeat_interval_s,
            parent_timeout_s=config.parent_timeout_s,
            node_log_dir=self._log_dir,
            log_max_bytes=config.log_max_bytes,
            log_backups=config.log_backups,
            rehearse=spare,  # a child needed now starts at once
            prepare=self._prepare_path if spare else None,
            lifeline_dir=self._lifeline_dir,
        )
        slot_id = f"s{next(self._slot_ids)}"
        slot = None
        if self._zygote is not None:
            try:
                slot = await start_slot(slot_id, self._endpoint, self._log_dir, zygote=self._zygote, **kwargs)
            except ZygoteError as exc:
                log.error("the zygote could not start child %s (fork+exec instead): %s", slot_id, exc)
                if isinstance(exc, ForkUnanswered):
                    # It may have forked a child under this id all the same: a new id for the
                    # replacement, or two processes would say hello as one slot (the ROUTER
                    # hands the id to the last to connect), and a node could go to the late one.
                    self.abandoned.add(slot_identity(slot_id))
                    slot_id = f"s{next(self._slot_ids)}"
        if slot is None:
            slot = await start_slot(slot_id, self._endpoint, self._log_dir, **kwargs)
        self._on_new_child(slot)
        return slot

    async def _add_spare(self) -> None:
        if self._closing():
            return
        self._starting += 1
        try:
            try:
                slot = await self._new_child(spare=True)
            except OSError as exc:
                log.error("cannot start a spare child: %s", exc)
                return
            await first_of(slot.ready.wait, slot.exited.wait)  # its hello, or its early death
        finally:
            self._starting -= 1
        if not slot.ready.is_set() or slot.exited.is_set() or self._closing():
            return  # a spare that died is replaced when its exit is seen
        self._spares.append(slot)
        self._on_change()


async def first_of(*waits) -> None:
    """Return as soon as the first of the given awaitables completes."""
    async with trio.open_nursery() as nursery:

        async def run(wait) -> None:
            await wait()
            nursery.cancel_scope.cancel()

        for wait in waits:
            nursery.start_soon(run, wait)


__all__ = ["ZYGOTE_RETRY_S", "ChildPool", "first_of"]
