"""Journal append throughput: events/s per fsync policy against raw ``os.write`` of the same bytes.

Run from the repository root; one command, ~10 s:

    .venv/bin/python bench/journal_append.py

Options: ``--seconds S`` per case (default 2), ``--batch N`` events per append call (default 64,
the child outbox's batch size), ``--dir DIR`` where the files go (default: a temporary directory
under the system temp dir; point it at the disk the runtime dir will live on, since ``fdatasync``
costs whatever that device charges, and on tmpfs it costs nothing).

Cases, all appending batches of ``--batch`` small events (msgpack ``[seq, ts, topic, type, data]``,
~80 bytes, pre-encoded as the relay hands them over) to a fresh file for a fixed time:

1. **raw write**: ``os.write`` of the exact bytes the journal writes per batch (headers included,
   built once before timing) to an ``O_APPEND`` file: the ceiling for the I/O alone.
2. **raw write + fdatasync**: the same, with ``fdatasync`` after each write: the floor that the
   ``always`` policy cannot beat.
3. **journal never / batch:20 / always**: ``Journal.append_batch`` with each policy: the cost of
   the journal's own work (seq checks, headers, CRC, join) on top of the matching raw case.

Printed: batches/s, events/s, µs per append call and the ratio to case 1 (and, for ``always``,
to case 2). Speed is measured here and never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402

from orchestrator.journal import Journal  # noqa: E402
from orchestrator.journal import record as fmt  # noqa: E402


def make_events(n: int) -> list[bytes]:
    """``n`` small payloads shaped like relayed events."""
    ts = time.time_ns()
    return [
        msgpack.packb(
            [i + 1, ts + i, "events.order.BTCUSDT", "OrderFilled", {"qty": "0.01", "px": "65000.5"}]
        )
        for i in range(n)
    ]


def filesystem_of(path: Path) -> str:
    """``<fstype> on <mountpoint>`` for the mount holding ``path`` (longest matching mount point)."""
    best = ("?", "")
    target = str(path.resolve())
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                _, mount, fstype, *_ = line.split()
                if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > len(
                    best[1]
                ):
                    best = (fstype, mount)
    except OSError:
        pass
    return f"{best[0]} on {best[1] or '?'}"


def timed(seconds: float, step) -> tuple[int, float]:
    """Call ``step(i)`` until ``seconds`` have passed; (calls, elapsed)."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for _ in range(16):
            step(calls)
            calls += 1
        now = time.perf_counter()
    return calls, now - start


def raw_case(path: Path, blob: bytes, seconds: float, sync: bool) -> tuple[int, float]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:

        def step(_: int) -> None:
            os.write(fd, blob)
            if sync:
                os.fdatasync(fd)

        return timed(seconds, step)
    finally:
        os.close(fd)


def journal_case(path: Path, payloads: list[bytes], seconds: float, policy: str) -> tuple[int, float]:
    n = len(payloads)
    with Journal(path, fsync=policy) as journal:

        def step(i: int) -> None:
            base = i * n
            journal.append_batch([(base + k + 1, p) for k, p in enumerate(payloads)])

        return timed(seconds, step)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)

    payloads = make_events(args.batch)
    blob = b"".join(fmt.encode_header(k + 1, p) + p for k, p in enumerate(payloads))
    with tempfile.TemporaryDirectory(prefix="journal-bench-", dir=args.dir) as tmp:
        where = Path(tmp)
        print(f"$ {shlex.join([Path(sys.executable).name, *sys.argv])}")
        print(
            f"{args.batch} events per append call, {len(blob) // args.batch} bytes per event on disk "
            f"({sum(map(len, payloads)) // args.batch} payload + {fmt.HEADER_SIZE} header), "
            f"{args.seconds:g} s per case, files in {where} ({filesystem_of(where)})"
        )
        cases = [
            ("raw os.write", lambda p: raw_case(p, blob, args.seconds, sync=False)),
            ("raw os.write + fdatasync", lambda p: raw_case(p, blob, args.seconds, sync=True)),
            ("journal fsync=never", lambda p: journal_case(p, payloads, args.seconds, "never")),
            ("journal fsync=batch:20", lambda p: journal_case(p, payloads, args.seconds, "batch:20")),
            ("journal fsync=always", lambda p: journal_case(p, payloads, args.seconds, "always")),
        ]
        rows = []
        for i, (name, run) in enumerate(cases):
            calls, elapsed = run(where / f"case{i}.journal")
            rows.append((name, calls, calls * args.batch / elapsed, elapsed / calls * 1e6))
    raw = rows[0][2]
    raw_sync = rows[1][2]
    print()
    print(f"{'case':<26} {'calls':>9} {'events/s':>12} {'us/call':>9} {'vs raw write':>13}")
    for name, calls, rate, us in rows:
        extra = f"  ({rate / raw_sync:.2f}x raw+fdatasync)" if name.endswith("always") else ""
        print(f"{name:<26} {calls:>9,} {rate:>12,.0f} {us:>9.1f} {rate / raw:>12.2f}x{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
