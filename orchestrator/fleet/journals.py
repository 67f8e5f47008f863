"""The fleet's journals for one run: one per node, and how far each is durable, so how far to ack.

Exactly-once relay (issue #5) rests on one rule: a node is acked only up to what its journal
holds *durably* under the fsync policy, since a node forgets what is acked. This module owns the
journals (``<state_dir>/journal/<node>.journal``), opened (= recovered) at a run's start, and
answers "up to which seq may this node be acked" (``ackable``).

No fdatasync runs on the trio loop (one was measured at 55 ms on a busy disk):

- ``always``: the relay runs each ``append_batch`` (and its fdatasync) in a worker thread; every
  append is durable when it returns.
- ``batch``: the journals are opened with an interval that never elapses, so ``append_batch``
  never syncs; ``sync_forever`` fdatasyncs, every interval, a second fd of each journal file in a
  worker thread, then marks durable the ``last_seq`` it read *before* the call. The journal keeps
  the batch mode for the rest (directory fsync on create, sync on close).
- ``never``: nothing is ever durable, so a node is acked up to what is journaled.

Only the relay task appends, so a ``Journal`` is never used from two threads at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path

import trio

from orchestrator.journal import (
    FsyncMode,
    FsyncPolicy,
    Journal,
    JournalError,
    JournalFailedError,
    journal_path,
)

log = logging.getLogger("orchestrator")

_NEVER_ELAPSES_MS = 1e15  # a batch interval that never elapses: the journal never syncs on its own


class FleetJournals(Mapping[str, Journal]):
    """Every node's ``Journal``, by node id, opened for one run under ``policy``; ``close()`` after."""

    def __init__(self, state_dir: Path, node_ids: Iterable[str], policy: FsyncPolicy) -> None:
        self.policy = policy
        self._batch = batch = policy.mode is FsyncMode.BATCH
        opened_with = FsyncPolicy.batch(_NEVER_ELAPSES_MS) if batch else policy
        self._journals: dict[str, Journal] = {}
        self._sync_fds: dict[str, int] = {}  # batch: a second fd per journal, fdatasync'ed off the loop
        self._durable: dict[str, int] = {}  # batch: per node, the last seq known fdatasync'ed
        try:
            for node_id in node_ids:
                journal = Journal(journal_path(state_dir, node_id), fsync=opened_with)
                self._journals[node_id] = journal
                if batch:
                    fd = os.open(journal.path, os.O_RDONLY | os.O_CLOEXEC)
                    self._sync_fds[node_id] = fd
                    os.fdatasync(fd)  # what a killed orchestrator left in the page cache is durable now
                    self._durable[node_id] = journal.last_seq
        except BaseException:
            self.close()
            raise

    def __getitem__(self, node_id: str) -> Journal:
        return self._journals[node_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._journals)

    def __len__(self) -> int:
        return len(self._journals)

    def ackable(self, node_id: str, relayed_seq: int) -> int:
        """The highest seq ``node_id`` may be acked, having relayed up to ``relayed_seq``."""
        if self._batch:
            stored = self._durable[node_id]
        else:
            stored = self._journals[node_id].last_seq
        return min(relayed_seq, stored)

    async def sync_forever(self, made_durable: Callable[[str], Awaitable[None]]) -> None:
        """Under ``batch``: every interval, ``sync_batch`` then ``await made_durable(node)`` for
        each node it advanced (its acks were waiting for it). Returns at once otherwise."""
        if not self._batch:
            return
        period = self.policy.interval_ms / 1000.0
        while True:
            await trio.sleep(period)
            for node_id in await self.sync_batch():
                await made_durable(node_id)

    async def sync_batch(self) -> list[str]:
        """fdatasync each journal with records not yet durable (one worker-thread call for all);
        the nodes whose durable seq advanced. Raises ``JournalFailedError`` if a sync failed."""
        due = [
            (node_id, self._sync_fds[node_id], journal.last_seq)
            for node_id, journal in self._journals.items()
            if journal.last_seq > self._durable[node_id]
        ]
        if not due:
            return []
        failed = await trio.to_thread.run_sync(_fdatasync_all, [(n, fd) for n, fd, _ in due])
        if failed:
            # After a failed fdatasync nobody can tell what reached the disk: stop relaying.
            raise JournalFailedError(f"fdatasync of a journal failed: {failed}; restart the orchestrator")
        for node_id, _, target in due:  # every record up to target was written before the call
            self._durable[node_id] = max(self._durable[node_id], target)
        return [node_id for node_id, _, _ in due]

    def close(self) -> None:
        """Close every journal (each syncs what is pending, unless the policy is ``never``)."""
        for node_id, journal in self._journals.items():
            try:
                journal.close()
            except JournalError as exc:
                log.error("closing the journal of node %s: %s", node_id, exc)
        for fd in self._sync_fds.values():
            os.close(fd)
        self._sync_fds = {}


def _fdatasync_all(items: list[tuple[str, int]]) -> str | None:
    """In a worker thread: fdatasync each fd; the first failure as text, or None."""
    for node_id, fd in items:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            return f"node {node_id}: {exc}"
    return None


__all__ = ["FleetJournals"]
