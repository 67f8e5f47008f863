"""A spare's rehearsal: before hello, run a throwaway node through a trade and a recovery.

Why: the warm-up (``warmup``) takes the imports off a restart's critical path, but the first run
of a node in a process still pays for what is done once per process: the interpreter's first
passes over each code path (CPython specialises a function's bytecode as it runs it), caches
filled on first use, modules imported lazily. A restart is always a node's first run in its
spare, so it paid all of that. Measured on the project's 2-core machine (15 fresh processes each
way, the bench's sandbox node recovering from a 1 MB store, in a process alone): the child's
assign -> RUNNING work took p50 6.6-8.8 ms without a rehearsal and 5.0-5.4 ms after one. In the
fleet the gain is smaller (well under 1 ms of assign -> RUNNING in bench/restart_latency.py): a
spare that has waited beside running nodes has lost its CPU caches again. The rehearsal also
takes, off the critical path, the copy-on-write faults of a child forked by the zygote (see
``orchestrator.fleet.children``), which is what made zygote spares worth having.

What is rehearsed is what every restart does: a sandbox node with a state store is built, runs
until its strategy has traded, and stops; a second node then opens the same store (the
recovery: integrity check, load, restore, resend of what the parent has not acked) and runs
until RUNNING. Its events go through a real :class:`EventOutbox`, acked as they are "sent". The
files live in a temporary directory removed afterwards (and by the next rehearsal if its spare
was killed meanwhile), and nothing of the two nodes survives
them (two kernels in one process never see each other, so the node assigned later starts from
nothing of theirs).

A rehearsal that fails or overruns ``REHEARSAL_TIMEOUT_S`` is reported and the spare goes on:
it is an optimisation, and a spare that skips it still serves, a little slower.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from node.live.node import TradingNode
from orchestrator.child.assignment import node_config
from orchestrator.child.outbox import EventOutbox

REHEARSAL_TIMEOUT_S = 3.0
"""Bound on the whole rehearsal; past it the spare says hello without it."""
TRADE_WAIT_S = 1.0
"""How long the first node may take to fill an order before it is stopped anyway."""

DIR_PREFIX = "orch-rehearsal-"
"""A rehearsal's temporary directory is ``<tmp>/orch-rehearsal-<pid>-<random>``."""

_INSTRUMENT = "EUR/USD.SIM"


def rehearsal_doc(store_path: Path) -> dict:
    """The rehearsal node: a sandbox venue, fast random-walk quotes, a strategy that trades at once."""
    return {
        "node": {"trader_id": "REHEARSAL-001", "log_level": "ERROR"},
        "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
        "instruments": [{"id": _INSTRUMENT}],
        "data_clients": [{"type": "random_walk", "rate": 1000.0, "seed": 7}],
        "strategies": [
            {
                "path": "node.strategies.quote_mean_reversion:QuoteMeanReversion",
                "config": {
                    "instrument_id": _INSTRUMENT,
                    "trade_size": 1000,
                    "window": 2,
                    "entry_ticks": 1,
                    "use_limit_orders": False,
                    "close_positions_on_stop": False,  # the second node restores an open position
                },
            }
        ],
        # NORMAL: no fsync per commit; the files are thrown away.
        "state": {"path": str(store_path), "synchronous": "normal"},
    }


@dataclass(frozen=True, slots=True)
class RehearsalReport:
    """How the rehearsal went: its wall time, whether an order filled, and what failed if anything."""

    seconds: float
    traded: bool
    problem: str | None = None


async def rehearse(heartbeat_interval_s: float) -> RehearsalReport:
    """Run the rehearsal (module docstring) on the current trio loop; never raises an Exception."""
    started = time.perf_counter()
    traded = False
    problem: str | None = None
    try:
        _remove_orphaned_dirs()
        prefix = f"{DIR_PREFIX}{os.getpid()}-"
        with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as work:
            with trio.move_on_after(REHEARSAL_TIMEOUT_S) as scope:
                doc = rehearsal_doc(Path(work) / "state.sqlite")
                traded, last_seq = await _run(doc, heartbeat_interval_s, 1, 0, until_traded=True)
                await _run(doc, heartbeat_interval_s, 2, last_seq, until_traded=False)
            if scope.cancelled_caught:
                problem = f"did not finish within {REHEARSAL_TIMEOUT_S:g} s"
    except Exception as exc:  # an optimisation failing must not cost the spare
        problem = f"{type(exc).__name__}: {exc}"
    # The two nodes' garbage goes now, and what is left (imports, caches) is moved out of the
    # collector's sight: a full collection walks every object the warm-up made, and one due during
    # the assigned node's start would cost several ms of its restart.
    gc.collect()
    gc.freeze()
    return RehearsalReport(time.perf_counter() - started, traded, problem)


async def _run(
    doc: dict, heartbeat_interval_s: float, incarnation: int, resume_after: int, *, until_traded: bool
) -> tuple[bool, int]:
    """Build and run one node as ``ChildSession`` would, stop it; return (traded, last acked seq)."""
    config = node_config({"doc": doc, "base_dir": "."}, heartbeat_interval_s)
    outbox = EventOutbox("rehearsal", incarnation, resume_after, warn=_ignore, offset=0)

    async def send_and_ack(_frame: bytes) -> None:
        outbox.ack(outbox.sent_seq)  # what a parent does once it has journaled the frame

    node = TradingNode(config, stream_sink=outbox)
    node.build_components()  # as a spare prepares a node (orchestrator.child.prepared), then
    node.build()  # as an assign finishes it
    traded = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.pump, send_and_ack)
            nursery.start_soon(node.run_async)
            await node.wait_until_running()
            if until_traded:
                traded = await _wait_for_fill(node)
            await node.stop_async()
            await outbox.wait_all_acked()
            nursery.cancel_scope.cancel()
    finally:
        node.dispose()
    return traded, outbox.acked_seq


async def _wait_for_fill(node: TradingNode) -> bool:
    """Until the strategy's first position event (a fill opened one), at most ``TRADE_WAIT_S``."""
    filled = trio.Event()

    def on_position(_event) -> None:
        filled.set()

    node.kernel.msgbus.subscribe("events.position.*", on_position)
    with trio.move_on_after(TRADE_WAIT_S):
        await filled.wait()
    node.kernel.msgbus.unsubscribe("events.position.*", on_position)
    return filled.is_set()


def _remove_orphaned_dirs() -> None:
    """Remove the directories of rehearsals whose process is gone (a spare killed mid-rehearsal).

    A directory is named after its process's pid; one whose pid is alive (its rehearsal may be
    running, or the pid was reused) is left alone.
    """
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{DIR_PREFIX}*-*"):
        pid_text = path.name[len(DIR_PREFIX) :].partition("-")[0]
        if not pid_text.isdigit() or not path.is_dir():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # alive, but not ours to signal


def _ignore(_message: str) -> None:
    pass


__all__ = ["REHEARSAL_TIMEOUT_S", "RehearsalReport", "rehearsal_doc", "rehearse"]
