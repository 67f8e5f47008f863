"""Transport and protocol throughput: raw pyzmq against our trio wrapper, and codec cost per batch.

Run from the repository root (one command, ~30 s):

    .venv/bin/python bench/transport_throughput.py

Options: ``--repeat N`` (best of N runs per row, default 3), ``--quick`` (fewer messages).

Every transport row sends the same pre-encoded ``evt`` frames (1 or 64 events per message) from a
separate sender process (spawned, its own zmq Context) over ipc in a private runtime dir, and times
the receiver from its first message to its last. Rows:

- raw pyzmq PUSH/PULL, synchronous on both sides: the ceiling (DESIGN §5 measured ~560k events/s at
  1 event per message and ~950k/s at 64 on this kind of machine);
- raw pyzmq DEALER -> ROUTER, synchronous: the same socket pair the orchestrator uses;
- TrioSocket DEALER -> ROUTER with ``recv_multipart`` and with ``recv_batch(256)`` (both ends trio);
- the same with ``protocol.decode`` of every frame: what the relay pays before journaling.

Then the codec alone: encode (validate + pack) and decode (unpack + validate) per ``evt`` batch.
Speed is measured here and never asserted in tests.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import tempfile
import time
import timeit
from pathlib import Path

import trio
import zmq

from orchestrator import protocol
from orchestrator import transport as t

TS0 = 1_700_000_000_000_000_000


def make_events(n: int, first_seq: int = 1) -> list[list]:
    return [
        [
            first_seq + i,
            TS0 + i * 1000,
            "data.quotes.EUR/USD.SIM",
            "QuoteTick",
            {"bid": "1.10001", "ask": "1.10003", "bid_size": 1_000_000, "ask_size": 1_000_000},
        ]
        for i in range(n)
    ]


def make_frame(events_per_message: int) -> bytes:
    return protocol.encode(protocol.evt("node-1", 1, make_events(events_per_message)))


# -- senders (run in a spawned process) ---------------------------------------------------------


def sender_main(mode: str, endpoint: str, frame: bytes, count: int, done) -> None:
    """Send ``count`` + 1 frames (the first is the receiver's start signal), then wait for ``done``.

    The sender keeps its socket open until the receiver has everything: ipc can lose the tail of
    a sender that closes and exits (DESIGN §5).
    """
    if mode == "trio":
        trio.run(_trio_sender, endpoint, frame, count, done)
        return
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH if mode == "push" else zmq.DEALER)
    if mode == "dealer":
        sock.setsockopt(zmq.IDENTITY, b"slot-1")
    sock.connect(endpoint)
    send = sock.send
    for _ in range(count + 1):
        send(frame)
    done.wait()
    sock.close(linger=0)
    ctx.term()


async def _trio_sender(endpoint: str, frame: bytes, count: int, done) -> None:
    ctx = t.new_context()
    async with t.TrioSocket(t.node_dealer(ctx, endpoint, "slot-1")) as sock:
        frames = [frame]
        for _ in range(count + 1):
            await sock.send_multipart(frames)
        await trio.to_thread.run_sync(done.wait)
    ctx.term()


# -- receivers ----------------------------------------------------------------------------------


def receive_sync(sock: zmq.Socket, count: int, multipart: bool) -> float:
    recv = sock.recv_multipart if multipart else sock.recv
    recv()
    start = time.perf_counter()
    for _ in range(count):
        recv()
    return time.perf_counter() - start


async def receive_trio(sock: t.TrioSocket, count: int, how: str) -> float:
    await sock.recv_multipart()
    start = time.perf_counter()
    got = 0
    if how == "recv_multipart":
        while got < count:
            await sock.recv_multipart()
            got += 1
    else:
        decode = protocol.decode
        while got < count:
            batch = await sock.recv_batch(256)
            if how == "recv_batch+decode":
                for _, payload in batch:
                    decode(payload)
            got += len(batch)
    return time.perf_counter() - start


def run_case(row: str, events_per_message: int, count: int, rundir: Path) -> float:
    """One timed transfer; returns messages per second at the receiver."""
    spawn = mp.get_context("spawn")
    done = spawn.Event()
    frame = make_frame(events_per_message)
    endpoint = t.ipc_endpoint(rundir, "bench")
    ctx = t.new_context()
    try:
        if row == "raw PUSH/PULL":
            sock = ctx.socket(zmq.PULL)
            sock.bind(endpoint)
            mode = "push"
        elif row == "raw DEALER->ROUTER":
            sock = ctx.socket(zmq.ROUTER)
            sock.bind(endpoint)
            mode = "dealer"
        else:
            sock = t.node_router(ctx, endpoint)
            mode = "trio"
        sender = spawn.Process(target=sender_main, args=(mode, endpoint, frame, count, done))
        sender.start()
        try:
            if mode == "trio":
                how = row.split("ROUTER ", 1)[1]
                elapsed = trio.run(_trio_receive, sock, count, how)
            else:
                elapsed = receive_sync(sock, count, multipart=mode == "dealer")
                sock.close(linger=0)
        finally:
            done.set()
            sender.join(10)
            if sender.is_alive():
                sender.kill()
    finally:
        ctx.destroy(linger=0)
        t.remove_ipc_file(endpoint)
    return count / elapsed


async def _trio_receive(sock: zmq.Socket, count: int, how: str) -> float:
    async with t.TrioSocket(sock) as wrapped:
        return await receive_trio(wrapped, count, how)


ROWS = [
    "raw PUSH/PULL",
    "raw DEALER->ROUTER",
    "TrioSocket DEALER->ROUTER recv_multipart",
    "TrioSocket DEALER->ROUTER recv_batch",
    "TrioSocket DEALER->ROUTER recv_batch+decode",
]


def transport_table(repeat: int, quick: bool, rundir: Path) -> None:
    counts = {1: 50_000 if quick else 200_000, 64: 5_000 if quick else 20_000}
    print(f"{'transport (ipc, sender in another process)':<46} {'ev/msg':>6} {'msgs/s':>10} {'events/s':>11}")
    for events_per_message in (1, 64):
        for row in ROWS:
            rate = max(
                run_case(row, events_per_message, counts[events_per_message], rundir) for _ in range(repeat)
            )
            print(f"{row:<46} {events_per_message:>6} {rate:>10,.0f} {rate * events_per_message:>11,.0f}")
    print()


def codec_table(repeat: int) -> None:
    print(
        f"{'protocol codec (one evt message)':<46} {'events':>6} {'bytes':>10} {'us/msg':>11} {'us/event':>9}"
    )
    for n in (1, 64):
        msg = protocol.evt("node-1", 1, make_events(n))
        frame = protocol.encode(msg)
        number = 200_000 // n
        for name, fn in (
            ("encode (validate + pack)", lambda m=msg: protocol.encode(m)),
            ("decode (unpack + validate)", lambda f=frame: protocol.decode(f)),
            ("  of which validate", lambda m=msg: protocol.validate(m)),
        ):
            best = min(timeit.repeat(fn, number=number, repeat=max(repeat, 3))) / number * 1e6
            print(f"{name:<46} {n:>6} {len(frame):>10} {best:>11.2f} {best / n:>9.3f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per row (default 3)")
    parser.add_argument("--quick", action="store_true", help="fewer messages per run")
    args = parser.parse_args()
    print(f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}, trio {trio.__version__}")
    print(
        f"command: .venv/bin/python bench/transport_throughput.py --repeat {args.repeat}{' --quick' * args.quick}"
    )
    print()
    base = Path(tempfile.mkdtemp(prefix="ob-"))
    try:
        rundir = t.ensure_runtime_dir(base / "rt")
        transport_table(args.repeat, args.quick, rundir)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    codec_table(args.repeat)


if __name__ == "__main__":
    main()
