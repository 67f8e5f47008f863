"""The sweep parent's loop: hand runs to workers, record outcomes, replace the dead and the old.

One thread, one ``multiprocessing.connection.wait`` over every worker's pipe, every worker's
process sentinel and the signal socket. Why sentinels: a worker's death is seen the instant the
kernel reports its exit, never by polling or by a timeout, and its pipe is drained first so an
outcome sent just before the death is not mistaken for a crash.

Per worker slot (``workers`` of them) there is a current worker and, while the current one
finishes its last runs before retiring, a spare that imports in the background, so recycling
every K runs costs no idle time. The spare is started early enough to be ready when it is
needed: when the current worker's remaining runs, at the mean run time seen so far, would take
less than ~1.5 worker start-ups (both measured as the sweep goes), and only if the queue holds
more runs than the workers already there can still take. Each worker holds at most
``prefetch`` tasks (one running, the next already in its pipe, so it never waits for the
parent); near the end of the queue it holds one, so no worker idles while another has two.

``run()`` must be called from a thread that outlives the sweep (normally the main thread):
Linux sends the workers' parent-death signal when the *thread* that started them exits.

Runs with an ``ok`` row in the store are skipped; every other run is queued, a failed or crashed
one with a fresh set of attempts (``resume`` decides beforehand which rows may be kept at all).
A run's outcome is committed to the store as soon as it arrives, with its data digest. A worker that dies has its
running task recorded as ``crashed`` and queued again (``crash_retries`` times); the tasks
that were only waiting in its pipe go back to the front of the queue untouched. SIGINT or
SIGTERM: record what has already arrived, terminate the workers, and return; the runs that
were in flight have no row, so ``--resume`` runs them again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path

from orchestrator.sweep.messages import CRASHED, FAILED, OK, Outcome, Ready, Task
from orchestrator.sweep.plan import Run
from orchestrator.sweep.pool import WorkerHandle, spawn_context, spawn_worker
from orchestrator.sweep.signals import SignalCatcher
from orchestrator.sweep.store import ResultsStore

DEFAULT_RECYCLE_EVERY = 50
DEFAULT_CRASH_RETRIES = 1


class SweepAborted(RuntimeError):
    """The sweep cannot go on (workers die before they are ready, again and again)."""


@dataclass(frozen=True)
class Counts:
    total: int
    skipped: int  # ok before this invocation (found in the store by --resume): not run again
    ok: int
    failed: int
    crashed: int  # crashed on every attempt allowed
    running: int
    queued: int
    retried: int  # crash retries scheduled in this invocation
    finished_now: int  # finished in this invocation: the basis of the ETA
    elapsed_s: float

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.crashed


@dataclass
class SweepResult:
    counts: Counts
    interrupted_by: str | None
    wall_s: float  # first task sent -> last outcome received (worker start-up excluded)
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class _Slot:
    current: WorkerHandle | None = None
    spare: WorkerHandle | None = None


class Scheduler:
    def __init__(
        self,
        runs: list[Run] | tuple[Run, ...],
        store: ResultsStore,
        base_dir: Path | str,
        *,
        workers: int,
        recycle_every: int = DEFAULT_RECYCLE_EVERY,
        crash_retries: int = DEFAULT_CRASH_RETRIES,
        on_progress: Callable[[Counts], None] | None = None,
        data_digests: dict[str, str] | None = None,
        prefetch: int = 2,
        stop_timeout_s: float = 5.0,
        tick_s: float = 0.25,
        max_start_failures: int = 3,
    ) -> None:
        if workers < 1 or recycle_every < 1 or crash_retries < 0 or prefetch < 1:
            raise ValueError("workers, recycle_every and prefetch must be >= 1, crash_retries >= 0")
        self._runs = {run.run_id: run for run in runs}
        self._store = store
        self._base_dir = str(Path(base_dir).resolve())
        self._workers = workers
        self._recycle_every = recycle_every
        self._crash_retries = crash_retries
        self._on_progress = on_progress
        self._data_digests = data_digests or {}
        self._prefetch = prefetch
        self._stop_timeout_s = stop_timeout_s
        self._tick_s = tick_s
        self._max_start_failures = max_start_failures
        self._ctx = spawn_context()
        self._queue: deque[Task] = deque()
        self._max_attempt: dict[str, int] = {}
        self._handles: list[WorkerHandle] = []
        self._slots: list[_Slot] = []
        self._outcomes: list[Outcome] = []
        self._tally = {"skipped": 0, OK: 0, FAILED: 0, CRASHED: 0, "retried": 0, "finished_now": 0}
        self._start_failures = 0
        self._startup_s: float | None = None  # moving averages that time the spares
        self._run_s: float | None = None
        self._started = 0.0
        self._first_sent: float | None = None
        self._last_outcome: float | None = None

    # -- public ----------------------------------------------------------------------------------
    def run(self) -> SweepResult:
        self._started = time.monotonic()
        self._plan_queue()
        self._slots = [_Slot() for _ in range(min(self._workers, len(self._queue)))]
        interrupted = None
        with SignalCatcher() as signals:
            try:
                for slot in self._slots:
                    slot.current = self._spawn()
                while self._queue or self._in_flight():
                    if signals.received:
                        break
                    self._manage_slots()
                    self._dispatch()
                    self._progress()
                    self._wait_once(signals)
                if signals.received:
                    interrupted = signals.name
                    self._collect_arrived()
                    self._shutdown(graceful=False)
                else:
                    self._shutdown(graceful=True)
            except BaseException:
                self._shutdown(graceful=False)
                raise
        self._progress()
        wall = (self._last_outcome or self._started) - (self._first_sent or self._started)
        return SweepResult(self._counts(), interrupted, max(wall, 0.0), self._outcomes)

    # -- planning --------------------------------------------------------------------------------
    def _plan_queue(self) -> None:
        statuses = self._store.statuses()
        attempts = self._store.last_attempts()  # numbering goes on after a discarded row
        for run in self._runs.values():
            status, _ = statuses.get(run.run_id, (None, 0))
            attempt = attempts.get(run.run_id, 0)
            if status == OK:
                self._tally["skipped"] += 1
                self._tally[status] += 1
                continue
            first = attempt + 1  # a run that failed or crashed before gets a fresh set of attempts
            self._max_attempt[run.run_id] = first + self._crash_retries
            self._queue.append(Task(run.run_id, first, run.doc, self._base_dir))

    # -- workers ---------------------------------------------------------------------------------
    def _spawn(self) -> WorkerHandle:
        handle = spawn_worker(self._ctx)
        self._handles.append(handle)
        return handle

    def _in_flight(self) -> bool:
        return any(h.outstanding for h in self._handles)

    def _manage_slots(self) -> None:
        spares = sum(1 for s in self._slots if s.spare is not None)
        k = self._recycle_every
        for slot in self._slots:
            cur = slot.current
            if cur is not None and cur.assigned >= self._recycle_every and not cur.outstanding:
                cur.stop()  # retire; it stays in _handles until its exit is seen
                slot.current = None
            if slot.current is None:
                if slot.spare is not None:
                    slot.current, slot.spare = slot.spare, None
                    spares -= 1
                elif self._worth_a_new_worker():
                    slot.current = self._spawn()
        # Runs the workers there already are can still take; beyond that, replacements are needed.
        capacity = spares * k + sum(k - s.current.assigned for s in self._slots if s.current is not None)
        for slot in self._slots:
            cur = slot.current
            if cur is None or slot.spare is not None or len(self._queue) <= capacity:
                continue
            if self._spare_due(cur):
                slot.spare = self._spawn()
                capacity += k

    def _worth_a_new_worker(self) -> bool:
        """Would a worker started now (ready after one start-up) finish the sweep sooner?

        Near the end, when a retiring or crashed worker leaves a few runs that the others will
        get through before a new worker could even import, starting one only costs CPU.
        """
        if not self._queue:
            return False
        others = [h for s in self._slots for h in (s.current, s.spare) if h is not None]
        capacity = sum(self._recycle_every - h.assigned for h in others)
        if len(self._queue) > capacity or not others or self._run_s is None or self._startup_s is None:
            return True
        return len(self._queue) * self._run_s / len(others) > self._startup_s

    def _spare_due(self, handle: WorkerHandle) -> bool:
        """Start the replacement now so that it is ready when ``handle`` retires?"""
        left = self._recycle_every - handle.assigned + len(handle.outstanding)  # runs it has yet to finish
        if left <= self._prefetch:
            return True
        if self._run_s is None or self._startup_s is None:
            return False
        return left * self._run_s <= 1.5 * self._startup_s

    def _dispatch(self) -> None:
        active = [s.current for s in self._slots if s.current is not None and s.current.ready]
        for handle in active:
            if handle.stopping or not handle.conn_open:
                continue
            while self._queue and handle.assigned < self._recycle_every:
                depth = self._prefetch if len(self._queue) >= len(active) else 1
                if len(handle.outstanding) >= depth:
                    break
                task = self._queue.popleft()
                try:
                    handle.send(task)
                except OSError:  # died just now: its sentinel will say how
                    handle.conn_open = False
                    self._queue.appendleft(task)
                    break
                if self._first_sent is None:
                    self._first_sent = time.monotonic()

    def _wait_once(self, signals: SignalCatcher) -> None:
        by_conn = {h.conn: h for h in self._handles if h.conn_open}
        by_sentinel = {h.sentinel: h for h in self._handles}
        ready = wait([signals, *by_conn, *by_sentinel], timeout=self._tick_s)
        for obj in ready:
            if obj is signals:
                signals.drain()
            elif obj in by_conn:
                handle = by_conn[obj]
                for message in handle.receive_available():
                    self._on_message(handle, message)
        for obj in ready:
            if not isinstance(obj, int) or obj not in by_sentinel:
                continue
            handle = by_sentinel[obj]
            for message in handle.receive_available():
                self._on_message(handle, message)
            self._on_exit(handle)

    def _on_message(self, handle: WorkerHandle, message) -> None:
        if isinstance(message, Ready):
            handle.ready = True
            self._start_failures = 0
            self._startup_s = _average(self._startup_s, time.monotonic() - handle.spawned_at)
        elif isinstance(message, Outcome):
            task = handle.outstanding.popleft()
            if task.run_id != message.run_id:  # cannot happen with an in-order pipe; say so loudly
                raise SweepAborted(f"worker {handle.pid} answered {message.run_id} for task {task.run_id}")
            self._finish(message)

    def _on_exit(self, handle: WorkerHandle) -> None:
        self._handles.remove(handle)
        for slot in self._slots:
            if slot.current is handle:
                slot.current = None
            if slot.spare is handle:
                slot.spare = None
        handle.close()
        if handle.stopping and not handle.outstanding:
            return  # retired as asked
        if not handle.ready:
            self._start_failures += 1
            if self._start_failures >= self._max_start_failures:
                raise SweepAborted(f"workers die before they are ready ({handle.describe_exit()})")
        if not handle.outstanding:
            return
        task = handle.outstanding.popleft()
        for waiting in reversed(handle.outstanding):  # never started: back to the front, unchanged
            self._queue.appendleft(waiting)
        handle.outstanding.clear()
        crash = Outcome(
            task.run_id,
            task.attempt,
            CRASHED,
            None,
            f"{handle.describe_exit()} during the run",
            None,
            None,
            handle.pid,
            None,
        )
        if task.attempt < self._max_attempt[task.run_id]:
            self._record(crash)
            self._tally["retried"] += 1
            self._queue.appendleft(replace(task, attempt=task.attempt + 1))
        else:
            self._finish(crash)

    # -- outcomes --------------------------------------------------------------------------------
    def _record(self, outcome: Outcome) -> None:
        self._store.record(outcome, self._runs[outcome.run_id].params, self._data_digests.get(outcome.run_id))

    def _finish(self, outcome: Outcome) -> None:
        self._record(outcome)
        if outcome.elapsed_s is not None:
            self._run_s = _average(self._run_s, outcome.elapsed_s)
        self._outcomes.append(outcome)
        self._tally[outcome.status] += 1
        self._tally["finished_now"] += 1
        self._last_outcome = time.monotonic()

    def _collect_arrived(self) -> None:
        """On interrupt: record the outcomes already in the pipes (those runs did finish)."""
        for handle in list(self._handles):
            for message in handle.receive_available():
                self._on_message(handle, message)

    # -- stopping --------------------------------------------------------------------------------
    def _shutdown(self, graceful: bool) -> None:
        handles = list(self._handles)
        if graceful:
            for h in handles:
                if not h.stopping:
                    h.stop()
        else:
            for h in handles:
                h.terminate()
        deadline = time.monotonic() + self._stop_timeout_s
        self._await_exits(handles, deadline)
        for h in handles:
            if h.exitcode is None:
                h.kill()
        self._await_exits(handles, time.monotonic() + self._stop_timeout_s)
        for h in handles:
            h.close()
        self._handles.clear()
        for slot in self._slots:
            slot.current = slot.spare = None

    @staticmethod
    def _await_exits(handles: list[WorkerHandle], deadline: float) -> None:
        pending = [h.sentinel for h in handles if h.exitcode is None]
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            done = wait(pending, timeout=remaining)
            pending = [s for s in pending if s not in done]

    # -- progress --------------------------------------------------------------------------------
    def _counts(self) -> Counts:
        running = sum(1 for h in self._handles if h.outstanding)
        waiting = sum(len(h.outstanding) - 1 for h in self._handles if h.outstanding)
        t = self._tally
        return Counts(
            total=len(self._runs),
            skipped=t["skipped"],
            ok=t[OK],
            failed=t[FAILED],
            crashed=t[CRASHED],
            running=running,
            queued=len(self._queue) + waiting,
            retried=t["retried"],
            finished_now=t["finished_now"],
            elapsed_s=time.monotonic() - self._started,
        )

    def _progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self._counts())


def _average(previous: float | None, sample: float, weight: float = 0.2) -> float:
    """Exponential moving average; the first sample is taken as it is."""
    return sample if previous is None else previous + weight * (sample - previous)
