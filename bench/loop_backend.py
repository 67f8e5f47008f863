"""What the node's loop primitives cost on trio (``node.live.loop_backend``) against anyio's own.

Run from the repository root; one command, ~10 s:

    .venv/bin/python bench/loop_backend.py

Cases, each timed over ``--rounds`` rounds inside one trio loop (median of 5 repeats):

1. a task group with ``--tasks`` tasks that each checkpoint once: ``anyio.create_task_group()``
   (the baseline) against ``open_task_group()`` (a trio nursery on trio);
2. the thread wake-up the node sets up per run: entering and leaving an anyio ``BlockingPortal``
   (the baseline) against taking ``thread_waker()`` (trio's token);
3. a no-op handed to another thread and back, as every commit of a node's state store is:
   ``anyio.to_thread.run_sync`` (the baseline) against ``StoreWriter.run``
   (``node.live.store_writer``), in CPU time of this process (both threads).

Printed: µs per round for each and the difference per task. Speed is measured here, never
asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
import trio  # noqa: E402
from anyio.from_thread import BlockingPortal  # noqa: E402

from node.live.loop_backend import open_task_group, thread_waker  # noqa: E402
from node.live.store_writer import StoreWriter  # noqa: E402


async def _checkpoint_once() -> None:
    await trio.lowlevel.checkpoint()


async def _groups(make, tasks: int, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        async with make() as group:
            for _ in range(tasks):
                group.start_soon(_checkpoint_once, name="bench")
    return (time.perf_counter() - started) / rounds * 1e6


async def _portals(rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        async with BlockingPortal():
            pass
    return (time.perf_counter() - started) / rounds * 1e6


async def _wakers(rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        thread_waker()
    return (time.perf_counter() - started) / rounds * 1e6


def _noop() -> None:
    return None


async def _handoffs(run, rounds: int) -> float:
    """CPU per round trip to another thread and back, both threads counted."""
    started = time.process_time()
    for _ in range(rounds):
        await run(_noop)
    return (time.process_time() - started) / rounds * 1e6


async def _measure(tasks: int, rounds: int) -> dict[str, float]:
    runs: dict[str, list[float]] = {
        "anyio": [], "ours": [], "portal": [], "waker": [], "to_thread": [], "writer": []
    }  # fmt: skip
    writer = StoreWriter()
    try:
        for _ in range(5):
            runs["anyio"].append(await _groups(anyio.create_task_group, tasks, rounds))
            runs["ours"].append(await _groups(open_task_group, tasks, rounds))
            runs["portal"].append(await _portals(rounds))
            runs["waker"].append(await _wakers(rounds))
            runs["to_thread"].append(await _handoffs(anyio.to_thread.run_sync, rounds))
            runs["writer"].append(await _handoffs(writer.run, rounds))
    finally:
        writer.close()
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10, help="tasks per group (default 10)")
    parser.add_argument("--rounds", type=int, default=200, help="rounds per repeat (default 200)")
    args = parser.parse_args()
    got = trio.run(_measure, args.tasks, args.rounds)
    print(f"anyio {version('anyio')}, trio {trio.__version__}")
    print("\n| case | baseline (anyio) | node.live.loop_backend on trio | difference |")
    print("|---|---|---|---|")
    saved = got["anyio"] - got["ours"]
    print(
        f"| task group with {args.tasks} tasks | {got['anyio']:.1f} us | {got['ours']:.1f} us "
        f"| {saved:.1f} us ({saved / args.tasks:.1f} us per task) |"
    )
    print(
        f"| thread wake-up set-up | BlockingPortal {got['portal']:.1f} us | thread_waker "
        f"{got['waker']:.1f} us | {got['portal'] - got['waker']:.1f} us |"
    )
    print(
        f"| a no-op on another thread and back (CPU) | anyio.to_thread {got['to_thread']:.1f} us "
        f"| StoreWriter {got['writer']:.1f} us | {got['to_thread'] - got['writer']:.1f} us |"
    )


if __name__ == "__main__":
    main()
