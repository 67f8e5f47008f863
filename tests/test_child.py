"""The child entry point as a real process, driven by a test that plays the parent.

Each test binds a real ROUTER on an ipc endpoint in a short private temp dir (pytest's tmp_path
can exceed the 107-byte limit of an ipc path), starts
``python -m orchestrator.child`` with ``orchestrator.process.spawn`` (so ``ORCHESTRATOR_PARENT_PID``
is set and the exit is seen through a pidfd), heartbeats it every 50 ms from a task, and talks
the wire protocol to it. No mocks and no sleeps as synchronisation: every wait is for a message
or the process's exit, bounded by ``trio.fail_after``. (The one ``sleep`` is the parent's
heartbeat period.) The last test runs the outbox in process, over a real inproc socket pair, to
reach an event too large for a frame, which a sandbox node never produces.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import zmq

from orchestrator import protocol
from orchestrator import transport as t
from orchestrator.child.outbox import EventOutbox
from orchestrator.process.exit_codes import ChildExit
from orchestrator.process.spawn import spawn

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
BOUND = 15  # seconds per test; a correct run takes one or two
PARENT_HB_S = 0.05
SLOT = "slot-1"
NODE = "n1"


def sandbox_doc(**data_client) -> dict:
    with (CONFIGS / "sandbox.toml").open("rb") as fh:
        doc = tomllib.load(fh)
    doc["node"]["log_level"] = "ERROR"
    doc["data_clients"][0].update({"rate": 200.0, **data_client})
    return doc


class Parent:
    """The parent's side of one child: a ROUTER, a reader that logs every message, a heartbeat."""

    def __init__(self, ctx, sock: t.TrioSocket, stderr_path: Path) -> None:
        self.ctx = ctx
        self.sock = sock
        self.proc = None
        self.hello: dict | None = None
        self.stderr_path = stderr_path
        self.messages: list[dict] = []
        self.heartbeating = True
        self.auto_ack = True
        self.acked = 0
        self.heartbeats_sent = 0
        self._changed = trio.Event()
        self._cursor: dict[str, int] = {}
        self.identity = SLOT.encode()

    async def read(self) -> None:
        while True:
            identity, frame = await self.sock.recv_multipart()
            assert identity == self.identity
            msg = protocol.decode(frame)
            self.messages.append(msg)
            if msg["k"] == "evt" and self.auto_ack:
                try:
                    await self.send(protocol.ack(msg["node"], msg["events"][-1][0]))
                except t.PeerUnreachableError:
                    pass  # a child that lost its parent does not wait for acks
                else:
                    self.acked = msg["events"][-1][0]
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_heartbeats_sent(self, count: int) -> None:
        while self.heartbeats_sent < count:
            await self._changed.wait()

    async def heartbeat(self) -> None:
        while True:
            if self.heartbeating:
                try:
                    await self.send(protocol.hb(time.time_ns(), "RUNNING", {}))
                except t.PeerUnreachableError:
                    pass  # not connected yet, or gone
                else:
                    self.heartbeats_sent += 1
                    self._notify()
            await trio.sleep(PARENT_HB_S)  # the heartbeat's period, not a synchronisation

    async def send(self, msg: dict) -> None:
        await self.send_raw(protocol.encode(msg))

    async def send_raw(self, frame: bytes) -> None:
        await self.sock.send_multipart([self.identity, frame])

    async def expect(self, kind: str, where: Callable[[dict], bool] = lambda m: True) -> dict:
        """The next message of ``kind`` (after the last one returned) that satisfies ``where``."""
        index = self._cursor.get(kind, 0)
        while True:
            while index < len(self.messages):
                msg = self.messages[index]
                index += 1
                if msg["k"] == kind and where(msg):
                    self._cursor[kind] = index
                    return msg
            await self._changed.wait()

    def of_kind(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["k"] == kind]

    async def command(self, cmd_id: str, cmd_name: str, **args) -> dict:
        await self.send(protocol.cmd(cmd_id, NODE, cmd_name, args))
        return await self.expect("reply", lambda m: m["id"] == cmd_id)

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    async def exited(self, expected: int) -> None:
        """Wait for the child's exit (seen through its pidfd) and check the code."""
        status = await self.proc.wait()
        assert status.returncode == expected, self.stderr()

    async def aclose(self) -> None:
        """Kill the child if a test left it running; close the ROUTER and the context."""
        try:
            if self.proc is not None:
                self.proc.kill()
            await self.sock.aclose()
        finally:
            self.ctx.term()


@pytest.fixture
def rundir():
    base = tempfile.mkdtemp(prefix="oc-")  # short: ipc paths are limited to 107 bytes
    try:
        yield t.ensure_runtime_dir(Path(base) / "rt")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@asynccontextmanager
async def running_child(
    rundir: Path, tmp_path: Path, *extra: str, heartbeat: bool = True, env: dict | None = None
):
    """Bind the ROUTER, start the child, read (and heartbeat) in the background; yield after hello."""
    ctx = t.new_context()
    endpoint = t.ipc_endpoint(rundir, "nodes")
    sock = t.TrioSocket(t.node_router(ctx, endpoint))
    parent = Parent(ctx, sock, tmp_path / "child.stderr")
    argv = [sys.executable, "-m", "orchestrator.child", "--slot", SLOT, "--endpoint", endpoint]
    argv += ["--heartbeat-interval", "0.05", *extra]
    try:
        parent.proc = await spawn(argv, env=env, cwd=REPO, stderr=parent.stderr_path)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(parent.read)
            if heartbeat:
                nursery.start_soon(parent.heartbeat)
            try:
                parent.hello = await parent.expect("hello")
                yield parent
            finally:
                nursery.cancel_scope.cancel()
    finally:
        await parent.aclose()


def assign_msg(doc: dict, resume_after: int = 100) -> dict:
    return protocol.assign(NODE, 1, {"doc": doc, "base_dir": str(CONFIGS)}, resume_after)


@pytest.mark.trio
async def test_spare_takes_an_assign_streams_events_answers_commands_and_stops(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path) as parent:
            hello = parent.hello
            assert hello["slot"] == SLOT and hello["pid"] == parent.proc.pid and hello["spare"] is True

            await parent.send(assign_msg(sandbox_doc()))
            # The assign is answered at once, before the node is built (the parent's short deadline).
            first = await parent.expect("hb")
            assert first["state"] == "ASSIGNED" and first["counters"] == {}
            running = await parent.expect("hb", lambda m: m["state"] == "RUNNING")
            assert running["counters"]["liveness_ticks"] >= 1

            # The start-up events (state changes, the account) arrive in batches, numbered on from
            # resume_after; the harness acks each batch as it arrives.
            await parent.expect("evt", lambda m: m["events"][-1][0] >= 110)
            seqs = [e[0] for m in parent.of_kind("evt") for e in m["events"]]
            assert seqs == list(range(101, 101 + len(seqs)))
            first = parent.of_kind("evt")[0]
            assert (first["node"], first["incarnation"]) == (NODE, 1)
            assert first["events"][0][2:4] == ["events.system.TradingNode", "NodeStateChanged"]
            assert first["events"][0][1] == first["events"][0][4]["ts_event"]
            assert all(len(m["events"]) <= 64 for m in parent.of_kind("evt"))

            status = await parent.command("c-status", "status")
            assert status["ok"] is True and status["result"]["state"] == "RUNNING"
            child = status["result"]["child"]
            assert child["node"] == NODE and child["phase"] == "node"
            assert child["late_imports"] == []  # the warm-up left nothing for assign to import

            bogus = await parent.command("c-bogus", "bogus")
            assert bogus["ok"] is False and "bogus" in bogus["error"] and "ping" in bogus["error"]

            stopped = await parent.command("c-ss", "stop_strategy", strategy_id="EMACross-000")
            assert stopped == protocol.reply_ok("c-ss", "STOPPED")
            started = await parent.command("c-st", "start_strategy", strategy_id="EMACross-000")
            assert started == protocol.reply_ok("c-st", "RUNNING")
            missing = await parent.command("c-sc", "strategy_command", strategy_id="nope", name="x")
            assert missing["ok"] is False and "EMACross-000" in missing["error"]

            await parent.send(assign_msg(sandbox_doc()))
            second = await parent.expect("error")
            assert second["code"] == "unexpected" and "already runs node 'n1'" in second["message"]
            await parent.send(protocol.ack(NODE, 10**9))
            beyond = await parent.expect("error")
            assert beyond["code"] == "invalid_field" and "10000000" in beyond["message"]

            await parent.send_raw(b"\xc1 not msgpack")
            garbage = await parent.expect("error")
            assert garbage["code"] == "malformed"
            assert await parent.command("c-ping", "ping") == protocol.reply_ok("c-ping", "pong")

            await parent.send(protocol.cmd("c-stop", NODE, "stop", {}))
            reply = await parent.expect("reply", lambda m: m["id"] == "c-stop")
            bye = await parent.expect("bye")
            assert reply["ok"] is True and bye["code"] == ChildExit.OK
            assert "stop command 'c-stop'" in bye["reason"]
            await parent.exited(ChildExit.OK)

    # Every event was flushed before bye, the last one says STOPPED, and numbering never broke.
    kinds = [m["k"] for m in parent.messages]
    assert kinds.index("bye") > max(i for i, k in enumerate(kinds) if k == "evt")
    events = [e for m in parent.of_kind("evt") for e in m["events"]]
    assert [e[0] for e in events] == list(range(101, 101 + len(events)))
    assert events[-1][3] == "NodeStateChanged" and events[-1][4]["state"] == "STOPPED"
    assert parent.acked == events[-1][0]
    assert "malformed frame #1" in parent.stderr()


@pytest.mark.trio
async def test_lost_parent_heartbeat_stops_the_node_and_exits_parent_lost(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path, "--parent-timeout", "0.3") as parent:
            await parent.send(assign_msg(sandbox_doc()))
            await parent.expect("hb", lambda m: m["state"] == "RUNNING")
            await parent.wait_heartbeats_sent(3)
            status = await parent.command("c-status", "status")  # queued behind those heartbeats
            assert status["result"]["child"]["parent_heartbeats"] >= 3
            parent.heartbeating = False
            bye = await parent.expect("bye")
            assert bye["code"] == ChildExit.PARENT_LOST
            assert "parent heartbeat lost: the last one came" in bye["reason"]
            assert bye["reason"].endswith("; node 'n1' stopped cleanly")
            await parent.exited(ChildExit.PARENT_LOST)
    states = [e[4]["state"] for m in parent.of_kind("evt") for e in m["events"] if e[3] == "NodeStateChanged"]
    assert states[-1] == "STOPPED"  # stopped gracefully, not abandoned


@pytest.mark.trio
async def test_spare_that_never_hears_a_parent_heartbeat_exits_parent_lost(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path, "--parent-timeout", "0.2", heartbeat=False) as parent:
            await parent.exited(ChildExit.PARENT_LOST)
    assert "none received within 0.2 s" in parent.stderr()


@pytest.mark.trio
async def test_a_rehearsing_spare_cleans_up_and_its_node_starts_from_nothing_of_the_rehearsal(
    rundir, tmp_path
):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path, "--rehearse", env=env) as parent:
            spare = (await parent.command("c-status", "status"))["result"]["child"]
            assert spare["phase"] == "spare" and spare["rehearsal_ms"] > 0
            assert spare["late_imports"] == []
            assert list(tmp.iterdir()) == []  # its store and directory are gone before hello
            assert "rehearsal failed" not in parent.stderr()

            doc = {**sandbox_doc(), "state": {"path": str(tmp_path / "n1.sqlite")}}
            await parent.send(assign_msg(doc, resume_after=0))
            await parent.expect("hb", lambda m: m["state"] == "RUNNING")
            status = await parent.command("c-status", "status")
            assert status["result"]["child"]["late_imports"] == []
            await parent.command("c-stop", "stop")
            await parent.exited(ChildExit.OK)
    events = [e for m in parent.of_kind("evt") for e in m["events"]]
    # Its own store, numbered from 1: nothing of the rehearsal's two nodes (their trades, their
    # sequence, their trader) reached this node or its stream.
    assert [e[0] for e in events] == list(range(1, len(events) + 1))
    assert "REHEARSAL" not in repr(events)


def prepare_file(path: Path, configs: dict) -> str:
    """A ``prepare`` message file, as the orchestrator writes one for its spares."""
    path.write_bytes(protocol.encode(protocol.prepare(configs)))
    return str(path)


@pytest.mark.trio
@pytest.mark.parametrize("same_config", [True, False])
async def test_a_spare_builds_the_prepared_nodes_and_an_assign_of_the_same_config_takes_one(
    rundir, tmp_path, same_config
):
    doc = sandbox_doc()
    prepared = {"doc": doc, "base_dir": str(CONFIGS)}
    other = {"doc": sandbox_doc(seed=99), "base_dir": str(CONFIGS)}
    path = prepare_file(tmp_path / "prepare.msgpack", {NODE: prepared, "n2": other})
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path, "--prepare", path) as parent:
            spare = (await parent.command("c-status", "status"))["result"]["child"]
            assert spare["prepared_nodes"] == 2 and spare["prepared"] is False  # built before hello
            # A config that is not the prepared one must never run the prepared node.
            assigned = doc if same_config else sandbox_doc(seed=7)
            await parent.send(assign_msg(assigned))
            await parent.expect("hb", lambda m: m["state"] == "RUNNING")
            child = (await parent.command("c-status-2", "status"))["result"]["child"]
            assert child["prepared"] is same_config
            await parent.command("c-stop", "stop")
            await parent.exited(ChildExit.OK)
            assert "not prepared" not in parent.stderr()


@pytest.mark.trio
async def test_a_node_that_cannot_be_prepared_is_built_and_refused_at_its_assign(rundir, tmp_path):
    bad = {"doc": sandbox_doc(rate=-1), "base_dir": str(CONFIGS)}
    path = prepare_file(tmp_path / "prepare.msgpack", {NODE: bad})
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path, "--prepare", path) as parent:
            spare = (await parent.command("c-status", "status"))["result"]["child"]
            assert spare["prepared_nodes"] == 0
            assert f"node {NODE!r} not prepared ahead" in parent.stderr()
            await parent.send(assign_msg(bad["doc"]))
            refused = await parent.expect("error")
            assert refused["code"] == "config" and "data_clients[0].rate" in refused["message"]
            await parent.exited(ChildExit.CONFIG)


@pytest.mark.trio
@pytest.mark.parametrize("with_store", [True, False])
async def test_a_replacement_takes_the_store_only_once_the_process_it_replaces_is_gone(
    rundir, tmp_path, with_store
):
    # A hung node's child is SIGKILLed and its node assigned at once, naming the old pid
    # (after_pid): the kernel may still be tearing it down, holding the store. The stand-in here
    # holds no lock, so only the child's own wait for its end keeps the node from starting.
    predecessor = subprocess.Popen(["sleep", "60"])
    try:
        doc = sandbox_doc()
        if with_store:
            doc["state"] = {"path": str(tmp_path / "n1.sqlite")}
        config = {"doc": doc, "base_dir": str(CONFIGS)}
        with trio.fail_after(BOUND):
            async with running_child(rundir, tmp_path) as parent:
                await parent.send(protocol.assign(NODE, 2, config, 0, predecessor.pid))
                if with_store:
                    for n in itertools.count():
                        child = (await parent.command(f"c-status-{n}", "status"))["result"]["child"]
                        if child["waiting_for_pid"] == predecessor.pid:
                            break
                        await trio.sleep(0.01)  # polling the child's state, bounded by fail_after
                    assert not [m for m in parent.of_kind("hb") if m["state"] == "RUNNING"]
                    predecessor.kill()
                    predecessor.wait()
                await parent.expect("hb", lambda m: m["state"] == "RUNNING")
                # Without a store there is nothing to wait for: it ran beside the live process.
                assert (predecessor.poll() is None) is not with_store
                child = (await parent.command("c-status", "status"))["result"]["child"]
                assert child["waiting_for_pid"] is None
                await parent.command("c-stop", "stop")
                await parent.exited(ChildExit.OK)
    finally:
        predecessor.kill()
        predecessor.wait()


@pytest.mark.trio
async def test_a_prepare_file_that_cannot_be_read_leaves_the_spare_serving(rundir, tmp_path):
    garbage = tmp_path / "prepare.msgpack"
    garbage.write_bytes(b"\xc1 not msgpack")
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path, "--prepare", str(garbage)) as parent:
            assert "no node prepared ahead: cannot read" in parent.stderr()
            await parent.send(assign_msg(sandbox_doc()))
            await parent.expect("hb", lambda m: m["state"] == "RUNNING")
            child = (await parent.command("c-status", "status"))["result"]["child"]
            assert child["prepared"] is False
            await parent.command("c-stop", "stop")
            await parent.exited(ChildExit.OK)


@pytest.mark.trio
async def test_bad_config_in_assign_exits_config_naming_the_key(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path) as parent:
            await parent.send(assign_msg(sandbox_doc(rate=-1)))
            refused = await parent.expect("error")
            bye = await parent.expect("bye")
            assert refused["code"] == "config" and "data_clients[0].rate" in refused["message"]
            assert bye["code"] == ChildExit.CONFIG and "data_clients[0].rate" in bye["reason"]
            await parent.exited(ChildExit.CONFIG)


@pytest.mark.trio
async def test_spare_told_to_stop_replies_says_bye_and_exits_0(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path) as parent:
            spare = await parent.command("c-status", "status")
            assert spare["result"]["child"]["phase"] == "spare" and "state" not in spare["result"]
            assert spare["result"]["child"]["rehearsal_ms"] is None  # not asked to rehearse
            refused = await parent.command("c-ss", "stop_strategy", strategy_id="EMACross-000")
            assert refused["ok"] is False and "spare" in refused["error"]
            reply = await parent.command("c-stop", "stop")
            bye = await parent.expect("bye")
            assert reply["ok"] is True and bye["code"] == ChildExit.OK
            await parent.exited(ChildExit.OK)


@pytest.mark.trio
async def test_sigterm_stops_a_running_node_cleanly(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path) as parent:
            await parent.send(assign_msg(sandbox_doc()))
            await parent.expect("hb", lambda m: m["state"] == "RUNNING")
            parent.proc.send_signal(signal.SIGTERM)
            bye = await parent.expect("bye")
            assert bye["code"] == ChildExit.OK and "signal SIGTERM" in bye["reason"]
            await parent.exited(ChildExit.OK)


@pytest.mark.trio
async def test_corrupt_replay_data_faults_the_node_with_exit_3(rundir, tmp_path):
    data = tmp_path / "quotes.csv"
    data.write_text("timestamp,bid,ask\n2000,1.10000,1.10010\n1000,1.10001,1.10011\n")  # time goes back
    doc = sandbox_doc()
    doc["data_clients"] = [{"type": "replay", "instrument_id": "EUR/USD.SIM", "path": str(data)}]
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path) as parent:
            await parent.send(assign_msg(doc))
            bye = await parent.expect("bye")
            assert bye["code"] == ChildExit.FAULTED
            assert "invalid data" in bye["reason"] and "row 2" in bye["reason"]
            await parent.exited(ChildExit.FAULTED)


@pytest.mark.trio
async def test_a_parent_that_does_not_ack_slows_the_node_and_nothing_is_dropped(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path, "--max-unacked", "5") as parent:
            parent.auto_ack = False
            await parent.send(assign_msg(sandbox_doc(), resume_after=0))
            # The node goes on publishing (start-up events) while exactly 5 wait for an ack.
            held = await parent.expect(
                "hb",  # the node's heartbeats (the one answering the assign carries no counters)
                lambda m: m["counters"].get("events_published", 0) > 5 and m["counters"]["unacked"] == 5,
            )
            assert held["counters"]["events_sent"] == 5 and held["counters"]["backpressure_waits"] >= 1
            assert [e[0] for m in parent.of_kind("evt") for e in m["events"]] == [1, 2, 3, 4, 5]

            parent.auto_ack = True
            await parent.send(protocol.ack(NODE, 5))
            await parent.expect("evt", lambda m: m["events"][-1][0] >= 12)
            await parent.send(protocol.cmd("c-stop", NODE, "stop", {}))
            bye = await parent.expect("bye")
            assert bye["code"] == ChildExit.OK
            await parent.exited(ChildExit.OK)
    events = [e for m in parent.of_kind("evt") for e in m["events"]]
    assert [e[0] for e in events] == list(range(1, len(events) + 1))
    assert events[-1][4]["state"] == "STOPPED"


@pytest.mark.trio
async def test_an_event_too_large_or_unencodable_is_sent_with_its_data_replaced(tmp_path):
    """In process, over a real inproc socket pair: the seq survives, the payload is explained."""
    ctx = t.new_context()
    try:
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        a.bind("inproc://outbox")
        b.connect("inproc://outbox")
        async with t.TrioSocket(a) as sender, t.TrioSocket(b) as receiver:
            warnings: list[str] = []
            outbox = EventOutbox(NODE, 2, 40, max_unacked=100, warn=warnings.append)
            huge = {"blob": "x" * protocol.MAX_FRAME_BYTES, "ts_event": 7}
            for seq, data in enumerate([{"ts_event": 5}, huge, {"bad": {1, 2}}, {}], start=1):
                assert outbox.sink({"seq": seq, "topic": "t", "type": "T", "data": data}) is None

            async def send_frame(frame: bytes) -> None:
                await sender.send_multipart([frame])

            with trio.fail_after(BOUND):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(outbox.pump, send_frame)
                    events = []
                    while len(events) < 4:
                        msg = protocol.decode((await receiver.recv_multipart())[0])
                        assert (msg["node"], msg["incarnation"]) == (NODE, 2)
                        events += msg["events"]
                    nursery.cancel_scope.cancel()
    finally:
        ctx.destroy(linger=0)
    assert [e[0] for e in events] == [41, 42, 43, 44]
    assert events[0][1] == 5 and events[1][1] == 7
    assert events[1][4]["unencodable"].startswith("{'blob': 'xxx") and "too_large" in events[1][4]["error"]
    assert "bad" in events[2][4]["unencodable"] and "invalid_field" in events[2][4]["error"]
    assert events[3][4] == {}
    assert outbox.events_replaced == 2 and len(warnings) == 2 and outbox.buffered == 4
    assert outbox.ack(44) == 4 and outbox.all_acked


@pytest.mark.trio
async def test_a_repeated_command_id_is_carried_out_once_and_gets_the_first_reply(rundir, tmp_path):
    with trio.fail_after(BOUND):
        async with running_child(rundir, tmp_path) as parent:
            await parent.send(assign_msg(sandbox_doc()))
            await parent.expect("hb", lambda m: m["state"] == "RUNNING")
            before = (await parent.command("c-s1", "status"))["result"]["commands"]["executed"]
            stop = protocol.cmd("c-dup", NODE, "stop_strategy", {"strategy_id": "EMACross-000"})
            await parent.send(stop)
            await parent.send(stop)  # while the first is still being carried out
            first = await parent.expect("reply", lambda m: m["id"] == "c-dup")
            second = await parent.expect("reply", lambda m: m["id"] == "c-dup")
            await parent.send(stop)  # long after
            third = await parent.expect("reply", lambda m: m["id"] == "c-dup")
            assert first == second == third == protocol.reply_ok("c-dup", "STOPPED")
            status = (await parent.command("c-s2", "status"))["result"]
            assert status["commands"]["executed"] == before + 1, "carried out once"
            assert status["child"]["repeated_commands"] == 2
            # A new id is a new command: the strategy is already stopped, and it says so.
            again = await parent.command("c-new", "stop_strategy", strategy_id="EMACross-000")
            assert again["id"] == "c-new"
            await parent.send(protocol.cmd("c-stop", NODE, "stop", {}))
            await parent.exited(ChildExit.OK)


# -- the outbox in process (no socket) ------------------------------------------------------------


async def pump_frames(outbox: EventOutbox, until_seq: int) -> list[bytes]:
    """Run the pump until it has sent ``until_seq``; the frames it sent, in order."""
    frames: list[bytes] = []

    async def send_frame(frame: bytes) -> None:
        frames.append(frame)

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.pump, send_frame)
            while outbox.sent_seq < until_seq or not outbox.idle:
                await trio.sleep(0)
            nursery.cancel_scope.cancel()
    return frames


@pytest.mark.trio
async def test_outbox_frames_are_the_bytes_of_the_evt_message_and_pass_the_relay_check():
    from orchestrator.child.outbox import BATCH_MAX
    from orchestrator.protocol import codec

    outbox = EventOutbox(NODE, 3, 100, max_unacked=10_000)
    total = 2 * BATCH_MAX + 22
    data = [
        {"i": i, "ts_event": 10 + i, "px": "1.1", "nested": {"a": [1, 2.5, None, b"x"]}} for i in range(total)
    ]
    data[7] = {"no_ts": True}  # ts: the time the event was built
    data[8] = 42  # not a dict: {"value": 42}
    last = 100 + total
    records = [outbox.stream_record(i + 1, "events.t", "T", d) for i, d in enumerate(data)]
    assert [r[0] for r in records] == list(range(101, last + 1))  # wire seq = resume_after + node seq
    assert outbox.take_records(records[:100]) is None
    for record in records[100:]:
        assert outbox(record) is None
    assert outbox.last_seq == last and outbox.buffered == total
    frames = await pump_frames(outbox, last)
    assert len(frames) == 3  # BATCH_MAX + BATCH_MAX + 22
    events = []
    for frame in frames:
        msg = protocol.decode(frame)
        assert frame == protocol.encode(msg)  # exactly what the codec would have built
        assert (msg["node"], msg["incarnation"]) == (NODE, 3) and len(msg["events"]) <= BATCH_MAX
        batch = codec.decode_relay(frame)
        assert (batch.first, batch.last, batch.count) == (
            msg["events"][0][0],
            msg["events"][-1][0],
            len(msg["events"]),
        )
        events += msg["events"]
    assert [e[0] for e in events] == list(range(101, last + 1))
    assert events[0] == [101, 10, "events.t", "T", data[0]]
    assert type(events[7][1]) is int and events[7][1] > 10**18 and events[7][4] == {"no_ts": True}
    assert events[8][4] == {"value": 42}
    assert outbox.events_sent == total and outbox.batches_sent == 3 and outbox.events_replaced == 0
    # Cumulative acks, mid-frame too: exactly the acked events are released.
    assert outbox.ack(130) == 30 and outbox.buffered == total - 30
    assert outbox.ack(130) == 0 and outbox.ack(last) == total - 30 and outbox.all_acked


@pytest.mark.trio
async def test_outbox_packs_an_event_when_it_is_published_and_splits_frames_over_the_limit():
    outbox = EventOutbox(NODE, 1, 0, max_unacked=100)
    data = {"ts_event": 1, "blob": "a"}
    outbox(outbox.stream_record(1, "t", "T", data))
    data["blob"] = "changed later"  # the event is what was published, not what the dict became
    third = protocol.MAX_FRAME_BYTES // 3
    for seq in (2, 3, 4):  # each fits a frame alone, no two... three of them together do not
        outbox(outbox.stream_record(seq, "t", "T", {"ts_event": seq, "blob": "x" * third}))
    frames = await pump_frames(outbox, 4)
    assert len(frames) >= 2 and all(len(f) <= protocol.MAX_FRAME_BYTES for f in frames)
    events = [e for f in frames for e in protocol.decode(f)["events"]]
    assert [e[0] for e in events] == [1, 2, 3, 4] and events[0][4]["blob"] == "a"
    assert outbox.events_replaced == 0 and outbox.batches_sent == len(frames)


@pytest.mark.trio
async def test_outbox_take_records_applies_backpressure_and_drops_nothing():
    outbox = EventOutbox(NODE, 1, 0, max_unacked=10)
    records = [outbox.stream_record(seq, "t", "T", {"ts_event": seq}) for seq in range(1, 11)]
    assert outbox.record_room() == 10
    assert outbox.take_records(records[:6]) is None and outbox.record_room() == 4
    waited = outbox.take_records(records[6:])  # the 10th event held: kept, then wait
    assert waited is not None and outbox.buffered == 10 and outbox.last_seq == 10
    assert outbox.record_room() == 0
    frames = await pump_frames(outbox, 10)
    assert [e[0] for f in frames for e in protocol.decode(f)["events"]] == list(range(1, 11))
    done = []
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:

            async def wait_room():
                await waited
                done.append(outbox.buffered)

            nursery.start_soon(wait_room)
            await trio.sleep(0)
            assert not done  # still 10 unacked
            outbox.ack(3)  # 7 left: room
    assert done == [7] and outbox.record_room() == 3 and outbox.backpressure_waits == 1
