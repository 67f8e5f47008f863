"""The transport over real sockets: ipc in private temp dirs, tcp+CURVE on localhost.

No mocks and no sleeps as synchronisation: every wait is for the event the test needs (a message,
a socket-monitor event, all tasks parked), bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import stat
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
import zmq
from zmq.utils.monitor import parse_monitor_message

from orchestrator import protocol
from orchestrator import transport as t

BOUND = 10  # seconds; generous for a loaded CI machine, a correct run takes milliseconds


@pytest.fixture
def rundir():
    """A short private runtime dir (pytest's tmp_path can exceed the 107-byte ipc limit)."""
    base = tempfile.mkdtemp(prefix="ot-")
    try:
        yield t.ensure_runtime_dir(Path(base) / "rt")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ctx():
    context = t.new_context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


async def recv_monitor_event(monitor: t.TrioSocket, wanted: int) -> dict:
    """Wait for the next socket-monitor event of type ``wanted``."""
    while True:
        event = parse_monitor_message(await monitor.recv_multipart())
        if event["event"] == wanted:
            return event


def drain(sock: zmq.Socket) -> int:
    count = 0
    while True:
        try:
            sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return count
        count += 1


# -- DEALER <-> ROUTER ---------------------------------------------------------------------------


@pytest.mark.trio
async def test_dealer_router_round_trip_with_identities(rundir, ctx):
    endpoint = t.ipc_endpoint(rundir, "node")
    with trio.fail_after(BOUND):
        async with (
            t.TrioSocket(t.node_router(ctx, endpoint)) as router,
            t.TrioSocket(t.node_dealer(ctx, endpoint, "slot-a")) as a,
            t.TrioSocket(t.node_dealer(ctx, endpoint, "slot-b")) as b,
        ):
            await a.send_multipart([protocol.encode(protocol.hello("slot-a", 101, True))])
            await b.send_multipart([protocol.encode(protocol.hello("slot-b", 102, True))])
            seen = {}
            for _ in range(2):
                identity, frame = await router.recv_multipart()
                seen[identity] = protocol.decode(frame)
            assert seen[b"slot-a"]["pid"] == 101
            assert seen[b"slot-b"]["pid"] == 102

            for slot in (b"slot-b", b"slot-a"):
                node = "node-" + slot.decode()[-1]
                msg = protocol.assign(node, 1, {"strategy": "ema"}, 0)
                await router.send_multipart([slot, protocol.encode(msg)])
            assert protocol.decode((await a.recv_multipart())[0])["node"] == "node-a"
            assert protocol.decode((await b.recv_multipart())[0])["node"] == "node-b"


@pytest.mark.trio
async def test_router_send_to_unknown_identity_raises(rundir, ctx):
    with trio.fail_after(BOUND):
        async with t.TrioSocket(t.node_router(ctx, t.ipc_endpoint(rundir, "node"))) as router:
            with pytest.raises(t.PeerUnreachableError, match="slot-gone") as info:
                await router.send_multipart([b"slot-gone", b"x"])
            assert info.value.identity == b"slot-gone"


def _fd_readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


@pytest.mark.trio
async def test_parked_reader_wakes_when_the_same_socket_sends(rundir, ctx):
    """The edge-trigger trap: a send on the socket drains the FD signal meant for the parked reader.

    Without the re-check after each send this test hangs until fail_after (verified by disabling
    ``TrioSocket._kick_if_ready``). checkpoint_every is huge so that no checkpoint lets trio poll the
    FD before the send has swallowed the signal.
    """
    endpoint = t.ipc_endpoint(rundir, "node")
    router = t.node_router(ctx, endpoint)
    dealer = t.TrioSocket(t.node_dealer(ctx, endpoint, "slot-1"), checkpoint_every=10**9)
    try:
        with trio.fail_after(BOUND):
            await dealer.send_multipart([b"hello"])  # settle the connection with one round trip
            identity, _ = router.recv_multipart()
            router.send_multipart([identity, b"welcome"])
            assert await dealer.recv_multipart() == [b"welcome"]

            received = []

            async def reader():
                received.append(await dealer.recv_multipart())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()  # the reader is parked on the FD
                router.send_multipart([identity, b"ping"])
                # Block the whole loop (the reader cannot run) until the ping has signalled the FD...
                assert _fd_readable(dealer.socket.getsockopt(zmq.FD), BOUND)
                # ...then send on the same socket until a send has consumed that signal.
                for _ in range(10_000):  # bounded: this loop blocks trio
                    if not _fd_readable(dealer.socket.getsockopt(zmq.FD), 0):
                        break
                    await dealer.send_multipart([b"from-the-same-socket"])
                    drain(router)
            assert received == [[b"ping"]]
    finally:
        await dealer.aclose()
        router.close()


@pytest.mark.trio
async def test_parked_sender_wakes_when_the_same_socket_sends_elsewhere(ctx):
    """The same trap for a sender: a ROUTER task parked on a full peer A, while another task's send
    to peer B swallows the "A has room again" signal. Without the POLLOUT re-check the parked sender
    makes no progress (verified by disabling ``TrioSocket._kick_if_ready``).

    inproc on purpose: there is no I/O thread or kernel buffer between the sockets, so draining A
    produces exactly the one "room again" command and nothing else can re-signal the FD afterwards.
    """
    router = t.TrioSocket(
        t.node_router(ctx, "inproc://node", options=t.SocketOptions(sndhwm=2)), checkpoint_every=10**9
    )
    a = t.node_dealer(ctx, "inproc://node", "slot-a", options=t.SocketOptions(rcvhwm=2))
    b = t.node_dealer(ctx, "inproc://node", "slot-b", options=t.SocketOptions(rcvhwm=100_000))
    fd = router.socket.getsockopt(zmq.FD)
    try:
        with trio.fail_after(BOUND):
            for peer in (a, b):
                peer.send(b"hello")
                await router.recv_multipart()
            sent = 0

            async def flood_a():
                nonlocal sent
                while True:
                    await router.send_multipart([b"slot-a", b"z"])
                    sent += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood_a)
                await trio.testing.wait_all_tasks_blocked()  # A is full, the sender is parked
                parked_at = sent
                assert drain(a) > 0  # A's reads send "room again" to the router's mailbox...
                assert _fd_readable(fd, BOUND)
                for _ in range(100_000):  # ...which a send to B consumes (bounded: this blocks trio)
                    if not _fd_readable(fd, 0):
                        break
                    await router.send_multipart([b"slot-b", b"op"])
                await trio.testing.wait_all_tasks_blocked()
                assert sent > parked_at, "the parked sender was not woken"
                nursery.cancel_scope.cancel()
    finally:
        await router.aclose()
        a.close(linger=0)
        b.close(linger=0)


@asynccontextmanager
async def hwm2_pair(rundir, ctx):
    """A ROUTER and a DEALER (identity slot-1) over ipc, both with a high-water mark of 2."""
    endpoint = t.ipc_endpoint(rundir, "node")
    small = t.SocketOptions(sndhwm=2, rcvhwm=2)
    async with (
        t.TrioSocket(t.node_router(ctx, endpoint, options=small)) as router,
        t.TrioSocket(t.node_dealer(ctx, endpoint, "slot-1", options=small)) as dealer,
    ):
        yield router, dealer


@pytest.mark.trio
async def test_sender_at_hwm_parks_without_spinning_and_resumes(rundir, ctx):
    with trio.fail_after(BOUND):
        async with hwm2_pair(rundir, ctx) as (router, dealer):
            total = 2000
            sent = 0
            done = trio.Event()

            async def sender():
                nonlocal sent
                for i in range(total):
                    await dealer.send_multipart([b"%d" % i])
                    sent += 1
                done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                # Returns only if the sender is truly parked: a task that spins through checkpoints
                # never counts as blocked, so a spin would trip fail_after here.
                await trio.testing.wait_all_tasks_blocked()
                assert not done.is_set() and 0 < sent < total

                got = []
                while len(got) < total:
                    for _, payload in await router.recv_batch(64):
                        got.append(int(payload))
                await done.wait()
            assert got == list(range(total))


@pytest.mark.trio
async def test_try_send_sends_what_fits_now_and_says_when_it_would_wait(rundir, ctx):
    with trio.fail_after(BOUND):
        async with hwm2_pair(rundir, ctx) as (router, dealer):
            await dealer.send_multipart([b"hello"])  # connected both ways before counting
            assert (await router.recv_multipart())[1] == b"hello"
            sent = 0
            while dealer.try_send([b"%d" % sent]):  # nobody reads: the HWM is reached
                sent += 1
                assert sent < 10_000, "try_send never reported a full queue"
            assert sent > 0
            got = []
            while len(got) < sent:
                got += [int(payload) for _, payload in await router.recv_batch(64)]
            assert got == list(range(sent))  # each True was a message sent, each False none
            await dealer.aclose()
            with pytest.raises(trio.ClosedResourceError):
                dealer.try_send([b"late"])


@pytest.mark.trio
async def test_recv_batch_returns_everything_queued_up_to_max_n(ctx):
    """inproc delivers into the receiver's queue synchronously, so "queued" is exact here."""
    with trio.fail_after(BOUND):
        pull = ctx.socket(zmq.PULL)
        pull.bind("inproc://batch")
        push = ctx.socket(zmq.PUSH)
        push.connect("inproc://batch")
        async with t.TrioSocket(pull) as receiver:
            for i in range(200):
                push.send(b"%d" % i)
            first = await receiver.recv_batch(64)
            rest = await receiver.recv_batch(1000)
            assert len(first) == 64 and len(rest) == 136
            assert [int(f[0]) for f in first + rest] == list(range(200))
        push.close(linger=0)


@pytest.mark.trio
async def test_recv_batch_over_ipc_keeps_order_and_batches(rundir, ctx):
    endpoint = t.ipc_endpoint(rundir, "node")
    with trio.fail_after(BOUND):
        async with (
            t.TrioSocket(t.node_router(ctx, endpoint)) as router,
            t.TrioSocket(t.node_dealer(ctx, endpoint, "slot-1")) as dealer,
        ):
            for i in range(500):
                await dealer.send_multipart([b"%d" % i])
            got, batches = [], 0
            while len(got) < 500:
                batch = await router.recv_batch(100)
                assert 1 <= len(batch) <= 100
                batches += 1
                got.extend(int(payload) for _, payload in batch)
            assert got == list(range(500))
            assert batches < 500


@pytest.mark.trio
async def test_busy_socket_does_not_starve_other_tasks(ctx):
    with trio.fail_after(BOUND):
        pull = ctx.socket(zmq.PULL)
        pull.bind("inproc://busy")
        push = ctx.socket(zmq.PUSH)
        push.connect("inproc://busy")
        for i in range(1000):
            push.send(b"%d" % i)
        order = []
        async with t.TrioSocket(pull) as receiver:

            async def consume():
                for _ in range(1000):
                    await receiver.recv_multipart()
                order.append("consumer done")

            async def other():
                await trio.lowlevel.checkpoint()
                order.append("other task ran")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                nursery.start_soon(other)
        assert order == ["other task ran", "consumer done"]
        push.close(linger=0)


@pytest.mark.trio
async def test_aclose_wakes_parked_receiver_with_closed_error(rundir, ctx):
    with trio.fail_after(BOUND):
        router = t.TrioSocket(t.node_router(ctx, t.ipc_endpoint(rundir, "node")))
        errors = []

        async def reader():
            try:
                await router.recv_multipart()
            except trio.ClosedResourceError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            await router.aclose()
        assert len(errors) == 2
        with pytest.raises(trio.ClosedResourceError):
            await router.send_multipart([b"x", b"y"])


# -- MAXMSGSIZE ---------------------------------------------------------------------------------


@pytest.mark.trio
async def test_oversized_frame_drops_that_peer_and_router_keeps_serving(rundir, ctx):
    endpoint = t.ipc_endpoint(rundir, "node")
    limit = 64 * 1024
    options = t.SocketOptions(max_frame_bytes=limit)
    with trio.fail_after(BOUND):
        router_sock = t.node_router(ctx, endpoint, options=options)
        monitor = t.TrioSocket(router_sock.get_monitor_socket(zmq.EVENT_DISCONNECTED))
        async with (
            t.TrioSocket(router_sock) as router,
            monitor,
            t.TrioSocket(t.node_dealer(ctx, endpoint, "rogue")) as rogue,
            t.TrioSocket(t.node_dealer(ctx, endpoint, "good")) as good,
        ):
            for sender in (rogue, good):
                await sender.send_multipart([b"hello"])
            assert {(await router.recv_multipart())[0] for _ in range(2)} == {b"rogue", b"good"}

            await rogue.send_multipart([b"x" * (limit + 1)])
            await recv_monitor_event(monitor, zmq.EVENT_DISCONNECTED)  # libzmq dropped the rogue

            await good.send_multipart([b"still served"])
            assert await router.recv_multipart() == [b"good", b"still served"]
            await router.send_multipart([b"good", b"reply"])
            assert await good.recv_multipart() == [b"reply"]

            # The rogue reconnects by itself; ROUTER_HANDOVER lets its identity route again.
            await rogue.send_multipart([b"small again"])
            assert await router.recv_multipart() == [b"rogue", b"small again"]


# -- PUB ----------------------------------------------------------------------------------------


@pytest.mark.trio
async def test_pub_drops_at_hwm_without_blocking_and_subscriber_sees_the_gap(rundir, ctx):
    endpoint = t.ipc_endpoint(rundir, "events")
    small = t.SocketOptions(sndhwm=10, rcvhwm=10)
    with trio.fail_after(BOUND):
        pub_sock = t.event_pub(ctx, endpoint, options=small)
        publisher = t.SequencedPublisher(pub_sock)
        async with t.TrioSocket(t.event_sub(ctx, endpoint, options=small)) as sub:
            # Wait until the subscription has reached the PUB (slow joiner): probe until one arrives.
            while True:
                publisher.publish(b"probe", b"")
                with trio.move_on_after(0.05):
                    await sub.recv_multipart()
                    break

            tracker = t.GapDetector()
            flood = 50_000
            first_seq = publisher.publish(b"node-1", b"first")
            for _ in range(flood):
                # NOBLOCK inside: if the PUB ever wanted to block this raises zmq.Again.
                publisher.publish(b"node-1", b"y" * 512)

            received = first = last = 0
            while True:
                end_seq = publisher.publish(b"node-1", b"end")  # retried: the marker may be dropped too
                with trio.move_on_after(0.05):
                    while True:
                        topic, header, payload = await sub.recv_multipart()
                        if topic != b"node-1":
                            continue
                        tracker.observe(topic, header)
                        _, seq = t.unpack_header(header)
                        first = first or seq
                        last = seq
                        received += 1
                        if payload == b"end":
                            break
                    break
            assert first == first_seq
            assert tracker.missed > 0 and received < flood
            assert received + tracker.missed == last - first + 1
            assert last == end_seq
        pub_sock.close(linger=0)


def test_gap_detector_per_topic_and_new_epoch():
    gaps = t.GapDetector()
    assert gaps.observe(b"a", t.pack_header(7, 5)) == 0  # joined late: not a gap
    assert gaps.observe(b"b", t.pack_header(7, 1)) == 0
    assert gaps.observe(b"a", t.pack_header(7, 6)) == 0
    assert gaps.observe(b"a", t.pack_header(7, 9)) == 2
    assert gaps.observe(b"a", t.pack_header(8, 1)) == 0  # restarted publisher
    assert gaps.missed == 2
    with pytest.raises(t.SequenceHeaderError, match="16 bytes"):
        gaps.observe(b"a", b"short")


# -- runtime dir and ipc endpoints ---------------------------------------------------------------


def test_runtime_dir_is_created_0700_whatever_the_umask(tmp_path):
    old = os.umask(0o000)
    try:
        path = t.ensure_runtime_dir(tmp_path / "deep" / "rt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert t.ensure_runtime_dir(path) == path  # an existing private dir is accepted


def test_runtime_dir_with_loose_mode_is_refused_not_fixed(tmp_path):
    path = tmp_path / "rt"
    path.mkdir()
    path.chmod(0o755)
    with pytest.raises(t.RuntimeDirError, match=r"mode 0755, expected 0700.*chmod 700"):
        t.ensure_runtime_dir(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_runtime_dir_symlink_or_file_is_refused(tmp_path):
    real = t.ensure_runtime_dir(tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(t.RuntimeDirError, match="symlink"):
        t.ensure_runtime_dir(link)
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(t.RuntimeDirError, match="not a directory"):
        t.ensure_runtime_dir(afile)


def test_ipc_path_too_long_is_a_clear_error(ctx):
    deep = "/tmp/" + "d" * 120
    with pytest.raises(t.EndpointError, match=r"d{20}.*is 1\d\d bytes.*limited to 107 bytes"):
        t.ipc_endpoint(deep, "node")
    with pytest.raises(t.EndpointError, match="limited to 107 bytes"):
        t.node_router(ctx, f"ipc://{deep}/node.sock")
    with pytest.raises(t.EndpointError, match="limited to 107 bytes"):
        t.node_dealer(ctx, f"ipc://{deep}/node.sock", "slot-1")


def test_endpoint_names_and_schemes_are_checked(rundir, ctx):
    with pytest.raises(t.EndpointError, match="must match"):
        t.ipc_endpoint(rundir, "../escape")
    with pytest.raises(t.EndpointError, match="ipc://PATH, tcp://HOST:PORT"):
        t.node_router(ctx, "udp://127.0.0.1:5555")
    with pytest.raises(t.EndpointError, match="1..255 bytes"):
        t.node_dealer(ctx, t.ipc_endpoint(rundir, "node"), "")


def test_stale_ipc_file_is_claimed_and_live_one_refused(rundir, ctx):
    endpoint = t.ipc_endpoint(rundir, "node")
    path = t.ipc_path(endpoint)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a kill -9 leaves behind
    live = t.node_router(ctx, endpoint)
    try:
        with pytest.raises(t.EndpointInUseError, match="in use by another live process"):
            t.node_router(ctx, endpoint)
    finally:
        live.close(linger=0)
    t.remove_ipc_file(endpoint)
    assert not path.exists()
    t.remove_ipc_file(endpoint)  # idempotent


# -- tcp and CURVE -------------------------------------------------------------------------------


def test_tcp_without_curve_keys_is_a_clear_error(ctx):
    with pytest.raises(t.CurveKeyError, match="requires CURVE.*write_server_keys"):
        t.node_router(ctx, "tcp://127.0.0.1:*")
    with pytest.raises(t.CurveKeyError, match="requires CURVE.*server_public_key=load_public_key"):
        t.node_dealer(ctx, "tcp://127.0.0.1:5555", "slot-1")
    with pytest.raises(t.CurveKeyError, match="requires CURVE"):
        t.event_pub(ctx, "tcp://127.0.0.1:*")


def test_curve_key_files(tmp_path):
    pair = t.write_server_keys(tmp_path)
    assert t.load_server_keys(tmp_path / "server.key") == pair
    assert t.load_public_key(tmp_path / "server.pub") == pair.public
    assert "hidden" in repr(pair) and pair.secret.decode() not in repr(pair)
    with pytest.raises(t.CurveKeyError, match="already exists"):
        t.write_server_keys(tmp_path)
    (tmp_path / "server.key").chmod(0o644)
    with pytest.raises(t.CurveKeyError, match="chmod 600"):
        t.load_server_keys(tmp_path / "server.key")
    with pytest.raises(t.CurveKeyError, match="write_server_keys"):
        t.load_server_keys(tmp_path / "missing.key")


@pytest.mark.trio
async def test_tcp_curve_round_trip_and_wrong_server_key_gets_nothing(tmp_path, ctx):
    keys = t.write_server_keys(tmp_path)
    with trio.fail_after(BOUND):
        router_sock = t.node_router(
            ctx, "tcp://127.0.0.1:*", server_keys=t.load_server_keys(tmp_path / "server.key")
        )
        endpoint = router_sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        monitor = t.TrioSocket(router_sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL))
        wrong_key = t.generate_keypair().public
        async with (
            t.TrioSocket(router_sock) as router,
            monitor,
            t.TrioSocket(t.node_dealer(ctx, endpoint, "intruder", server_public_key=wrong_key)) as intruder,
        ):
            await intruder.send_multipart([b"let me in"])
            await recv_monitor_event(monitor, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)

            public = t.load_public_key(tmp_path / "server.pub")
            assert public == keys.public
            async with t.TrioSocket(t.node_dealer(ctx, endpoint, "slot-1", server_public_key=public)) as good:
                await good.send_multipart([b"hello"])
                # The router's first message is the good client's: the intruder's never arrived.
                assert await router.recv_multipart() == [b"slot-1", b"hello"]
                await router.send_multipart([b"slot-1", b"welcome"])
                assert await good.recv_multipart() == [b"welcome"]
                with pytest.raises(t.PeerUnreachableError):
                    await router.send_multipart([b"intruder", b"x"])


def test_a_context_the_garbage_collector_finds_unclosed_never_hangs_the_process(rundir):
    """A context and its open socket garbage in one cycle: pyzmq's own ``Context.__del__`` would
    wait in ``term()`` forever (the collector has cleared its weak reference to the socket). Ours
    returns at once, and the context still ends: libzmq's own threads are gone soon after."""
    import subprocess
    import sys

    script = (
        "import gc, os, threading, zmq\n"
        "from orchestrator.transport.options import new_context\n"
        "def zmq_threads():\n"
        "    tasks = os.listdir('/proc/self/task')\n"
        "    return [t for t in tasks if open(f'/proc/self/task/{t}/comm').read().startswith('ZMQbg')]\n"
        "class Holder: pass\n"
        "h = Holder(); h.ctx = new_context(); h.sock = h.ctx.socket(zmq.PUSH); h.me = h\n"
        f"h.sock.connect({t.ipc_endpoint(rundir, 'nobody')!r})\n"
        "assert zmq_threads()\n"
        "del h\n"
        "gc.collect()\n"
        "print('collected', flush=True)\n"
        "for thread in threading.enumerate():\n"
        "    if thread.name == 'zmq-context-term':\n"
        "        thread.join(timeout=5)  # term() returns once libzmq has joined its threads\n"
        "print('terminated' if not zmq_threads() else 'still running')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["collected", "terminated"]
    assert "Unclosed context" in done.stderr  # still reported, as pyzmq reports it


def test_a_process_exiting_with_a_context_it_never_terminated_exits_at_once(tmp_path):
    """The context is collected while the interpreter finalizes, where no thread can start: its
    clean-up used to start one to terminate it, and that start hung the exit for good (a second
    `up` refused on a runtime dir in use never returned)."""
    import subprocess
    import sys

    script = (
        "import sys, zmq\n"
        "from orchestrator.transport import new_context\n"
        "ctx = new_context()\n"
        f"ctx.socket(zmq.ROUTER).bind('ipc://{tmp_path}/r.sock')\n"
        "sys.exit(3)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=root, timeout=30, capture_output=True)
    assert done.returncode == 3, done.stderr
