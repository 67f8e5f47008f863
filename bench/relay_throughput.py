"""Relay throughput and latency: node events through the orchestrator to a subscriber process.

Run from the repository root (the child imports ``bench.relay_emitter`` from the orchestrator's
cwd); one command, ~35 s:

    .venv/bin/python bench/relay_throughput.py

Options: ``--window S`` (measured seconds per case, default 5), ``--warmup S`` (default 1),
``--rate N`` (events/s of the latency case, default 10000), ``--full-decode`` (the orchestrator
decodes and validates every event of every frame, as it did before ``codec.decode_relay``: for
comparison), ``--profile DIR`` (run ``py-spy record`` on the orchestrator and on the child during
the max-rate windows of (a) and (b), write their collapsed stacks to DIR and print where the time
goes; needs ``py-spy`` on PATH or in the venv, and perturbs the figures, since the sampler needs
CPU too).

First, in this process: what checking one 64-event frame costs (``codec.decode`` against the
relay's ``codec.decode_relay``), and the CPU per frame of the orchestrator's whole relay path for
one frame (``Orchestrator._handle`` on pre-built frames: check, journal append, PUB publish; see
``relay_path_cost``) with each. Then four cases, each measured by the same reader code in a separate
process (sync pyzmq: receive, ``msgpack.unpackb`` every frame, count its events, check sequence
numbers) over a fixed window that starts ``--warmup`` seconds after its first message:

(a) **end to end**: a real ``Orchestrator`` (this process) runs one node (a child process from
    ``python -m orchestrator.child``) whose only strategy is ``bench.relay_emitter``'s
    ``RelayEmitter`` in ``max`` mode: it keeps the node's stream buffer topped up, so the node
    emits as fast as the pipeline drains. Path: ``msgbus.publish`` -> streaming port -> child
    outbox (batches of up to 64, ``encode_trusted``) -> DEALER -> orchestrator ROUTER
    (``codec.decode_relay``, journal append, PUB publish, ``ack``) -> PUB -> the reader's SUB
    (``event_sub``, the product's socket options). Gaps: the PUB's sequence header
    (``GapDetector``, messages) and the events' own seq numbers (events).
(b) **the orchestrator's capacity**: the same path from the ROUTER on, but the child is
    ``bench.relay_frames_child``, which sends pre-built valid ``evt`` frames of the same 64
    events (new seqs in each) as fast as the orchestrator takes them: the node's cost of building
    events is out of the picture.
(c) **raw PUSH/PULL**: a sender process sends one pre-encoded ``evt`` frame (the same 64 events,
    encoded with ``protocol.encode``) as fast as it can over ipc to the reader's PULL. The ceiling
    for these messages with this reader; "% of raw" is against it.
(d) **latency**: (a) with the emitter in ``rate`` mode (``--rate`` events/s, a timer every 1 ms
    publishing what is due, each event stamped with ``time.time_ns()`` at publish); the reader
    takes ``time.time_ns()`` when it has the frame and reports receive - publish per event:
    p50/p99/max.

Printed per case: events/s at the reader and as % of raw, the events the orchestrator journaled
and published in the same window (more than the reader got when the PUB dropped for it: a slow
subscriber never stalls the relay), messages/s and events per message, and the CPU used during
the window by each process (from ``/proc/<pid>/stat``; for the orchestrator also its trio loop
thread alone) and by the whole machine (from ``/proc/stat``), which says what limits the figure.
The bench nodes run without a state store (``node_state="off"``; ``--node-state normal|full``
measures what durability costs the end-to-end cases) and with a 2 s heartbeat
timeout (a node starved of CPU by other work must not be killed mid-window). Targets (issue #4):
relay >= 50% of raw; p99 <= 2 ms at 10k events/s. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
import trio  # noqa: E402
import zmq  # noqa: E402

from orchestrator import protocol  # noqa: E402
from orchestrator import transport as t  # noqa: E402
from orchestrator.exception_groups import leaves  # noqa: E402
from orchestrator.fleet.config import NodeSpec, OrchestratorConfig  # noqa: E402
from orchestrator.fleet.orchestrator import Orchestrator  # noqa: E402
from orchestrator.fleet.state import NodeState  # noqa: E402
from orchestrator.protocol import codec  # noqa: E402
from orchestrator.supervision.policy import RestartPolicy, RestartType  # noqa: E402

EVENTS_PER_MESSAGE = 64  # the child outbox's BATCH_MAX: what the relay sends under load
TOPIC = "events.bench.relay"
NODE_TIMEOUT_S = 30.0  # assign -> RUNNING, and node stop
FIRST_MESSAGE_TIMEOUT_S = 10.0  # reader started -> first message
STALL_TIMEOUT_S = 3.0  # no message for this long inside the window: the stream stalled
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- measuring CPU ------------------------------------------------------------------------------


def proc_cpu_s(pid: int | str) -> float | None:
    """utime + stime of ``pid`` (all its threads) in seconds; None if it is gone.

    ``pid`` may also be ``"<pid>/task/<tid>"``: one thread of the process.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine.

    Steal is time the hypervisor ran something else while one of this VM's CPUs had work: the
    processes measured here were runnable and did not run. It comes in bursts, and a burst
    during the latency window shows up as a latency tail no code of ours can remove.
    """
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    return sum(values) - idle, sum(values), steal


class CpuSampler:
    """CPU use of some processes and of the machine between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._t0 = 0.0
        self._proc0: dict[str, float | None] = {}
        self._machine0 = (0, 0, 0)
        self.result: dict = {}

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._proc0 = {name: proc_cpu_s(pid) for name, pid in self.pids.items()}
        self._machine0 = machine_cpu()

    def stop(self) -> None:
        elapsed = time.perf_counter() - self._t0
        procs = {}
        for name, pid in self.pids.items():
            before, after = self._proc0.get(name), proc_cpu_s(pid)
            if before is not None and after is not None:
                procs[name] = round(100 * (after - before) / elapsed)
        busy0, total0, steal0 = self._machine0
        busy1, total1, steal1 = machine_cpu()
        cores = os.cpu_count() or 1
        machine = 100 * cores * (busy1 - busy0) / max(1, total1 - total0)
        steal_ms = 1000 * (steal1 - steal0) / os.sysconf("SC_CLK_TCK")
        self.result = {"procs": procs, "machine": round(machine), "cores": cores, "steal_ms": round(steal_ms)}


# -- the messages -------------------------------------------------------------------------------


def make_events(events_per_message: int = EVENTS_PER_MESSAGE) -> list[list]:
    """One batch of wire events as the child outbox makes them from ``RelayEmitter`` events."""
    from bench.relay_emitter import BenchEvent

    ts = time.time_ns()
    return [
        [i, ts, TOPIC, "BenchEvent", BenchEvent(i, ts).to_dict()] for i in range(1, events_per_message + 1)
    ]


def make_frame(events_per_message: int = EVENTS_PER_MESSAGE) -> bytes:
    """An ``evt`` frame as the child outbox makes it from ``RelayEmitter`` events."""
    return protocol.encode(protocol.evt("relay-max", 1, make_events(events_per_message)))


def check_cost(frame: bytes, rounds: int = 5, number: int = 2000) -> dict:
    """Microseconds per frame, best of ``rounds``: the full ``decode`` and the relay's ``decode_relay``."""
    import timeit

    out = {}
    for name, fn in (("decode", codec.decode), ("decode_relay", codec.decode_relay)):
        fn(frame)
        out[name] = min(timeit.repeat(lambda fn=fn: fn(frame), number=number, repeat=rounds)) / number * 1e6
    return out


async def relay_path_cost(rundir: Path, frames: int = 2000, rounds: int = 5) -> dict[str, float]:
    """CPU microseconds per frame of the orchestrator's own relay path, in this process, best of ``rounds``.

    What ``_recv_loop`` runs for each received evt frame (``Orchestrator._handle``: ``decode_relay``,
    the checks, the journal append, the PUB publish and the bookkeeping), called directly on
    pre-built frames: no socket receive, no ack, no fdatasync (the ``batch`` journal syncs in a
    worker thread), and a PUB with no subscriber. Measured with the envelope-only check and with
    the full decode (``--full-decode``), on the main thread's CPU clock, so that other work on the
    machine inflates it far less than it does the throughput figures.
    """
    from bench.relay_frames_child import FrameMaker
    from orchestrator.fleet.slots import Slot

    out: dict[str, float] = {}
    scan = codec._scan_evt
    for name, full in (("envelope-only check", False), ("full decode", True)):
        config = relay_config(rundir, f"orch-path-{int(full)}", {"relay-frames": {}})
        orch = Orchestrator(config)
        ctx = zmq.Context()
        pub = t.event_pub(ctx, orch.event_endpoint)
        orch._publisher = orch.relay.publisher = t.SequencedPublisher(pub)
        orch._open_journals()
        slot = Slot("s1", b"s1", process=None, node_id="relay-frames", incarnation=1)
        orch._slots[slot.identity] = slot
        maker = FrameMaker("relay-frames", 1, make_events(), 0)
        if full:
            codec._scan_evt = lambda frame: None
        try:
            best = float("inf")
            for _ in range(rounds):
                batch = [[b"s1", maker.next_frame()] for _ in range(frames)]
                started = time.thread_time()
                for message in batch:
                    await orch._handle(message)
                best = min(best, (time.thread_time() - started) / frames * 1e6)
            if orch.invalid_messages or orch.relayed_events != rounds * frames * EVENTS_PER_MESSAGE:
                raise RuntimeError(f"relay path: {orch.invalid_messages} frames refused")
            out[name] = best
        finally:
            codec._scan_evt = scan
            orch._close_journals()
            pub.close(linger=0)
            ctx.term()
            t.remove_ipc_file(orch.event_endpoint)
    return out


# -- the reader (a spawned process) -------------------------------------------------------------


def reader_main(
    kind: str,
    endpoint: str,
    topic: bytes,
    warmup_s: float,
    window_s: float,
    latency: bool,
    watch: dict[str, int],
    conn,
) -> None:
    """Receive, decode and count; send ``("ready", None)`` then ``("result", dict)`` or ``("error", str)``."""
    try:
        ctx = zmq.Context()
        if kind == "sub":
            sock = t.event_sub(ctx, endpoint, topics=(topic,))
        else:
            sock = ctx.socket(zmq.PULL)
            t.apply_options(sock)
            sock.bind(endpoint)
        sock.setsockopt(zmq.RCVTIMEO, 200)
        conn.send(("ready", None))
        result = _read(sock, kind, warmup_s, window_s, latency, {"reader": os.getpid(), **watch})
        sock.close(linger=0)
        ctx.term()
        conn.send(("result", result))
    except Exception as exc:  # say what happened instead of leaving the parent to time out
        conn.send(("error", f"reader: {type(exc).__name__}: {exc}"))


def _read(sock, kind: str, warmup_s: float, window_s: float, latency: bool, watch: dict) -> dict:
    unpackb = msgpack.unpackb
    now = time.perf_counter
    time_ns = time.time_ns
    gaps = t.GapDetector()
    sub = kind == "sub"
    recv = sock.recv_multipart if sub else sock.recv

    give_up = now() + FIRST_MESSAGE_TIMEOUT_S
    while True:
        try:
            first = recv()
            break
        except zmq.Again:
            if now() > give_up:
                raise TimeoutError(f"no message within {FIRST_MESSAGE_TIMEOUT_S:g} s") from None
    start = now() + warmup_s
    end = start + window_s
    sampler = CpuSampler(watch)
    last_seq = None
    missed_events = 0
    window_missed_msgs = window_missed_events = 0
    messages = events = 0
    lat_ns: list[int] = []
    in_window = False
    last_msg_at = now()
    frames = first
    while True:
        if sub:
            topic, header, payload = frames
            gaps.observe(topic, header)
        else:
            payload = frames
        received_ns = time_ns()
        batch = unpackb(payload)["events"]
        if sub:
            seq = batch[0][0]
            if last_seq is not None and seq > last_seq + 1:
                missed_events += seq - last_seq - 1
            last_seq = batch[-1][0]
        at = now()
        if in_window:
            if at >= end:
                sampler.stop()
                break
            messages += 1
            events += len(batch)
            if latency:
                lat_ns.extend(received_ns - ev[4]["ts_event"] for ev in batch)
        elif at >= start:
            in_window = True
            start = at  # the window runs from this message's arrival to the arrival of the one after it
            sampler.start()
            window_missed_msgs, window_missed_events = gaps.missed, missed_events
            messages, events = 1, len(batch)
            if latency:
                lat_ns.extend(received_ns - ev[4]["ts_event"] for ev in batch)
        last_msg_at = at
        while True:
            try:
                frames = recv()
                break
            except zmq.Again:
                if now() - last_msg_at > STALL_TIMEOUT_S:
                    raise TimeoutError(
                        f"the stream stalled: no message for {STALL_TIMEOUT_S:g} s "
                        f"({'in' if in_window else 'before'} the window)"
                    ) from None
    elapsed = at - start  # messages counted: those that arrived in [start, at)
    result = {
        "events_s": events / elapsed,
        "msgs_s": messages / elapsed,
        "ev_per_msg": events / max(1, messages),
        "gap_msgs": gaps.missed - window_missed_msgs,
        "gap_events": missed_events - window_missed_events,
        "cpu": sampler.result,
    }
    if latency and lat_ns:
        lat_ns.sort()
        n = len(lat_ns)
        result["latency_ms"] = {
            "p50": lat_ns[(n - 1) // 2] / 1e6,
            "p99": lat_ns[int(0.99 * (n - 1))] / 1e6,
            "max": lat_ns[-1] / 1e6,
            "n": n,
        }
    return result


def start_reader(kind, endpoint, topic, warmup_s, window_s, latency, watch):
    spawn = mp.get_context("spawn")
    parent_conn, child_conn = spawn.Pipe(duplex=False)
    proc = spawn.Process(
        target=reader_main,
        args=(kind, endpoint, topic, warmup_s, window_s, latency, watch, child_conn),
        daemon=True,
    )
    proc.start()
    child_conn.close()
    return proc, parent_conn


def receive(conn, timeout_s: float, what: str):
    """The next message from a reader, or RuntimeError with a clear message."""
    if not conn.poll(timeout_s):
        raise RuntimeError(f"{what}: no answer from the reader process within {timeout_s:g} s")
    try:
        kind, value = conn.recv()
    except EOFError:
        raise RuntimeError(f"{what}: the reader process died") from None
    if kind == "error":
        raise RuntimeError(f"{what}: {value}")
    return kind, value


def end_process(proc) -> None:
    proc.join(2)
    if proc.is_alive():
        proc.kill()
        proc.join(2)


# -- case 1: raw PUSH/PULL ----------------------------------------------------------------------


def raw_sender_main(endpoint: str, frame: bytes, stop) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    t.apply_options(sock)
    sock.setsockopt(zmq.SNDTIMEO, 100)
    sock.connect(endpoint)
    send = sock.send
    while not stop.is_set():
        try:
            for _ in range(1000):
                send(frame)
        except zmq.Again:
            pass
    sock.close(linger=0)
    ctx.term()


def run_raw(rundir: Path, warmup_s: float, window_s: float) -> dict:
    endpoint = t.ipc_endpoint(rundir, "raw")
    spawn = mp.get_context("spawn")
    stop = spawn.Event()
    # The sender first (a PUSH may connect before the PULL binds): the reader then watches its CPU.
    sender = spawn.Process(target=raw_sender_main, args=(endpoint, make_frame(), stop), daemon=True)
    sender.start()
    reader, conn = start_reader("pull", endpoint, b"", warmup_s, window_s, False, {"sender": sender.pid})
    try:
        receive(conn, FIRST_MESSAGE_TIMEOUT_S, "raw PUSH/PULL")  # ready: PULL is bound
        _, result = receive(conn, FIRST_MESSAGE_TIMEOUT_S + warmup_s + window_s + 10, "raw PUSH/PULL")
        return result
    finally:
        stop.set()
        end_process(sender)
        end_process(reader)
        t.remove_ipc_file(endpoint)


# -- cases 2 and 3: through the orchestrator ----------------------------------------------------


NODE_STATE = {"mode": "off"}  # --node-state: the nodes' state store (the relay alone: off)


def node_doc(emitter: dict) -> dict:
    patterns = ["events.bench.*"]
    if NODE_STATE["mode"] != "off":  # a node with a store streams its order and account events (none here)
        patterns += ["events.order.*", "events.account.*"]
    return {
        "node": {"trader_id": "BENCH-1", "log_level": "ERROR"},
        "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
        "instruments": [{"id": "EUR/USD.SIM"}],
        "streaming": {"patterns": patterns},
        "strategies": [{"path": "bench.relay_emitter:RelayEmitter", "config": {"topic": TOPIC, **emitter}}],
    }


def frames_wrapper(rundir: Path) -> str:
    """An executable that the orchestrator runs as its "python": it starts ``relay_frames_child``.

    ``OrchestratorConfig.python`` is the one way to give the orchestrator another child program;
    the child's usual arguments (``-m orchestrator.child --slot ...``) are passed through, and
    ``relay_frames_child`` takes what it needs from them.
    """
    path = rundir / "frames-child"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "bench" / "relay_frames_child.py"}" "$@"\n')
    path.chmod(0o700)
    return str(path)


def relay_config(
    rundir: Path, name: str, docs: dict[str, dict], python: str | None = None
) -> OrchestratorConfig:
    once = RestartPolicy(restart_type=RestartType.TEMPORARY)  # a bench node that dies is reported
    return OrchestratorConfig(
        runtime_dir=rundir / name,
        state_dir=rundir / name,  # the bench's own temp dir: each run starts from empty journals
        nodes=[NodeSpec(n, doc, str(ROOT), once, autostart=False) for n, doc in docs.items()],
        spares=0,
        python=python,
        zygote=python is None,  # a stand-in child program (case b) is not what the zygote runs
        # The relay alone by default; --node-state normal|full adds each node's commits (a SQLite
        # transaction per stream wake-up, before its events may leave the node).
        node_state=NODE_STATE["mode"] if python is None else "off",
        # Throughput, not hang detection: a node starved of CPU by other work on this 2-core machine
        # for 300 ms (the default) must not be killed in the middle of a window.
        heartbeat_timeout_s=2.0,
    )


async def run_relay(
    rundir: Path, warmup_s: float, window_s: float, rate: int, profile: Path | None
) -> dict[str, dict]:
    """The three cases through a real Orchestrator (this process): capacity, end-to-end, latency."""
    results = {}
    # (b) the orchestrator's capacity: a child that only sends pre-built valid evt frames
    capacity = relay_config(rundir, "orch-frames", {"relay-frames": {}}, python=frames_wrapper(rundir))
    results.update(await _run_cases(capacity, warmup_s, window_s, profile))
    # (a) end to end, and (d) the latency at a steady rate: a real node emitting events
    nodes = relay_config(
        rundir,
        "orch-node",
        {
            "relay-max": node_doc({"mode": "max"}),
            "relay-rate": node_doc({"mode": "rate", "rate": rate, "interval_ms": 1.0}),
        },
    )
    results.update(await _run_cases(nodes, warmup_s, window_s, profile))
    return results


async def _run_cases(
    config: OrchestratorConfig, warmup_s: float, window_s: float, profile: Path | None
) -> dict:
    orch = Orchestrator(config)
    results = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(orch.run)
        try:
            for spec in config.nodes:
                node_id = spec.node_id
                results[node_id] = await _measure_node(
                    orch,
                    node_id,
                    warmup_s,
                    window_s,
                    latency=node_id == "relay-rate",
                    profile=None if profile is None or node_id == "relay-rate" else profile / node_id,
                )
                results[node_id]["invalid"] = orch.invalid_messages
        finally:
            orch.shutdown()
    return results


async def _measure_node(
    orch, node_id: str, warmup_s: float, window_s: float, *, latency: bool, profile: Path | None
) -> dict:
    await orch.start_node(node_id)
    status = await orch.wait_for(
        node_id,
        NodeState.RUNNING,
        NodeState.CRASHED,
        NodeState.FAILED,
        NodeState.STOPPED,
        timeout=NODE_TIMEOUT_S,
    )
    if status.state is not NodeState.RUNNING:
        raise RuntimeError(f"node {node_id} did not reach RUNNING: {status.state.value} ({status.last_exit})")
    topic = b"evt." + node_id.encode()
    me = os.getpid()
    # The orchestrator's trio loop is its main thread; the rest of its CPU is libzmq's I/O thread
    # (both sockets' transfers) and the fdatasync worker thread.
    watch = {"orchestrator": me, "(its trio loop": f"{me}/task/{me}", "node": status.pid}
    reader, conn = start_reader("sub", orch.event_endpoint, topic, warmup_s, window_s, latency, watch)
    outcome: dict = {}
    profilers: list = []
    profiles: list[str] = []
    try:

        async def read_result(cancel_scope):
            await trio.to_thread.run_sync(
                receive, conn, FIRST_MESSAGE_TIMEOUT_S, node_id, abandon_on_cancel=True
            )  # ready
            if profile is not None:
                profilers.extend(
                    start_profilers(
                        profile,
                        {k: v for k, v in watch.items() if type(v) is int},
                        delay_s=warmup_s + 0.2,
                        duration_s=window_s - 0.4,
                    )
                )
            # The orchestrator's side of the same window (which starts warmup_s after the reader's
            # first message, a moment after ready): what it journaled and published, delivered or not.
            await trio.sleep(warmup_s)
            t0, n0 = trio.current_time(), status.events
            wait = FIRST_MESSAGE_TIMEOUT_S + window_s + 10
            try:
                _, outcome["result"] = await trio.to_thread.run_sync(
                    receive, conn, wait, node_id, abandon_on_cancel=True
                )
                outcome["relayed_s"] = (status.events - n0) / (trio.current_time() - t0)
            except RuntimeError as exc:
                outcome["error"] = str(exc)
            cancel_scope.cancel()

        async def watch_node(cancel_scope):
            await orch.wait_for(node_id, NodeState.CRASHED, NodeState.FAILED, NodeState.STOPPED)
            outcome["error"] = f"node {node_id} ended during the measurement: {status.last_exit}"
            cancel_scope.cancel()

        async with trio.open_nursery() as inner:
            inner.start_soon(read_result, inner.cancel_scope)
            inner.start_soon(watch_node, inner.cancel_scope)
        if "error" in outcome:
            raise RuntimeError(outcome["error"])
        result = outcome["result"]
        result["relayed"] = status.events
        result["relayed_s"] = outcome["relayed_s"]
        result["profiles"] = profiles
        return result
    finally:
        end_process(reader)
        for name, proc, path, log in profilers:
            try:
                await trio.to_thread.run_sync(proc.wait, window_s + 10)
            except Exception:
                proc.kill()
            profiles.append(profile_text(name, path, log))
        with trio.fail_after(NODE_TIMEOUT_S):
            await orch.stop_node(node_id)


# -- --profile: py-spy on the orchestrator and the node ------------------------------------------


def py_spy_path() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy (for measuring only)")
    return found


def start_profilers(out: Path, pids: dict[str, int], delay_s: float, duration_s: float) -> list:
    """One ``py-spy record`` per process, started ``delay_s`` from now (the window's start)."""
    import subprocess

    out.mkdir(parents=True, exist_ok=True)
    exe = py_spy_path()
    started = []
    for name, pid in pids.items():
        path = out / f"{name}.collapsed"
        log = out / f"{name}.py-spy.log"
        cmd = (
            f"sleep {delay_s:.2f}; exec {exe} record --pid {pid} --duration {max(1, round(duration_s))} "
            f"--rate 250 --format raw --nonblocking --output {path}"
        )
        with open(log, "w") as fh:
            proc = subprocess.Popen(["sh", "-c", cmd], stdout=fh, stderr=subprocess.STDOUT)
        started.append((name, proc, path, log))
    return started


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``: one line per function."""
    func, sep, where = frame.partition(" (")
    return f"{func} ({where.split(':')[0].rsplit('/', 1)[-1]})" if sep else frame


def profile_text(name: str, path: Path, log: Path, top: int = 14) -> str:
    """Self and inclusive time per function from py-spy's collapsed stacks."""
    import collections

    if not path.exists():
        return f"profile of the {name}: none written; py-spy said: {log.read_text()[-400:]!r}"
    total = 0
    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    lines = [f"profile of the {name} during the max-rate window ({total} samples, {path}):", "  self time:"]
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("  inclusive (below the event loop):")
    below_loop = [(f, n) for f, n in incl.most_common() if n <= 0.9 * total]  # not runpy, trio.run...
    lines += [f"    {100 * n / total:5.1f}%  {frame}" for frame, n in below_loop[:top]]
    return "\n".join(lines)


# -- the table ----------------------------------------------------------------------------------


def cpu_text(cpu: dict) -> str:
    procs = ", ".join(
        f"{name} {pct}%)" if name.startswith("(") else f"{name} {pct}%"
        for name, pct in cpu.get("procs", {}).items()
    )
    steal = f", {cpu['steal_ms']} ms stolen by the hypervisor" if "steal_ms" in cpu else ""
    return f"CPU: {procs}; machine {cpu.get('machine', '?')}% of {cpu.get('cores', '?')}00%{steal}"


def print_table(rows: list[tuple[str, dict]], raw_rate: float) -> None:
    header = (
        f"{'case':<46} | {'events/s':>10} | {'% of raw':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} "
        f"| {'gaps':>11} | {'orchestrator relayed/s':>22}"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows:
        lat = r.get("latency_ms")
        p50, p99, mx = (f"{lat['p50']:.3f}", f"{lat['p99']:.3f}", f"{lat['max']:.3f}") if lat else ("-",) * 3
        raw = name.startswith("(c)")
        gaps = "-" if raw else f"{r['gap_msgs']}/{r['gap_events']}"
        ratio = "100%" if raw else "-" if lat else f"{r['events_s'] / raw_rate:.0%}"
        relayed = "-" if raw else f"{r['relayed_s']:,.0f}"
        if not raw and not lat:
            relayed += f" ({r['relayed_s'] / raw_rate:.0%})"
        print(
            f"{name:<46} | {r['events_s']:>10,.0f} | {ratio:>8} | {p50:>7} | {p99:>7} | {mx:>7} | {gaps:>11} "
            f"| {relayed:>22}"
        )
    print()
    print("events/s: received by the subscriber process (SUB, or PULL for raw) inside the window")
    print("gaps = messages missed (PUB sequence header) / events missed (event seq), inside the window:")
    print("  the PUB drops what a slower subscriber cannot take (it never stalls the nodes)")
    print("orchestrator relayed/s: events journaled and published by the orchestrator in the same window")
    for name, r in rows:
        invalid = "" if "invalid" not in r else f"; frames refused by the orchestrator: {r['invalid']}"
        print(
            f"{name.split(' ', 1)[0]} {r['msgs_s']:,.0f} msgs/s, {r['ev_per_msg']:.1f} events/msg; "
            f"{cpu_text(r['cpu'])}{invalid}"
        )


def _messages(exc: BaseException) -> list[str]:
    """The leaf messages of an exception (trio nurseries wrap them in groups)."""
    return [str(e) or type(e).__name__ for e in leaves(exc)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--window", type=float, default=5.0, help="measured seconds per case (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window (default 1)")
    parser.add_argument(
        "--rate", type=int, default=10_000, help="events/s of the latency case (default 10000)"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy the max-rate cases into DIR"
    )
    parser.add_argument(
        "--full-decode",
        action="store_true",
        help="make the orchestrator decode and validate every event of every frame, as before the "
        "relay's envelope-only check (for comparison)",
    )
    parser.add_argument(
        "--node-state",
        choices=("off", "normal", "full"),
        default="off",
        help="the nodes' durable state store (default off: the relay alone); normal or full measure "
        "what durability costs the end-to-end cases",
    )
    args = parser.parse_args()
    NODE_STATE["mode"] = args.node_state
    if args.profile is not None:
        py_spy_path()
    if Path.cwd().resolve() != ROOT:
        parser.error(
            f"run from the repository root ({ROOT}): the node's child imports bench.relay_emitter from its cwd"
        )
    print(
        f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}, trio {trio.__version__}, {os.cpu_count()} CPUs"
    )
    options = f" --profile {args.profile}" if args.profile else ""
    options += " --full-decode" if args.full_decode else ""
    options += f" --node-state {args.node_state}" if args.node_state != "off" else ""
    print(
        "command: .venv/bin/python bench/relay_throughput.py "
        f"--window {args.window:g} --warmup {args.warmup:g} --rate {args.rate}{options}"
    )
    load = os.getloadavg()
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    frame = make_frame()
    cost = check_cost(frame)
    print(
        f"checking one {EVENTS_PER_MESSAGE}-event evt frame ({len(frame)} bytes) in this process: "
        f"full decode {cost['decode']:.1f} us, the relay's decode_relay {cost['decode_relay']:.1f} us"
    )
    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))  # short: ipc paths have a length limit
    try:
        rundir = t.ensure_runtime_dir(base / "rt")
        path = trio.run(relay_path_cost, rundir)
        per_core = ", ".join(
            f"{name} {us:.1f} us ({EVENTS_PER_MESSAGE / us * 1e6:,.0f} events/s per core)"
            for name, us in path.items()
        )
        print(
            f"the orchestrator's relay path per {EVENTS_PER_MESSAGE}-event frame, CPU in this process: {per_core}"
        )
        if args.full_decode:
            codec._scan_evt = lambda frame: None  # decode_relay falls back to decode for every frame
            print(
                "--full-decode: the orchestrator decodes and validates every event (as before decode_relay)"
            )
        print()
        raw = run_raw(rundir, args.warmup, args.window)
        relay = trio.run(run_relay, rundir, args.warmup, args.window, args.rate, args.profile)
    except (RuntimeError, TimeoutError, trio.TooSlowError, BaseExceptionGroup) as exc:
        sys.exit(f"relay_throughput: the run failed: {'; '.join(_messages(exc))}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = [
        ("(a) end to end: node -> orchestrator -> SUB", relay["relay-max"]),
        ("(b) orchestrator: pre-built frames -> SUB", relay["relay-frames"]),
        (f"(c) raw PUSH/PULL, same frames ({EVENTS_PER_MESSAGE} ev/msg)", raw),
        (f"(d) latency, node @ {args.rate:,} ev/s", relay["relay-rate"]),
    ]
    print_table(rows, raw["events_s"])
    for key in ("relay-frames", "relay-max"):
        for profile in relay[key]["profiles"]:
            print()
            print(profile)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
