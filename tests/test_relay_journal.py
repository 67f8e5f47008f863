"""The relay journals every node event before publishing and acking it (issue #5, exactly-once relay)."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import msgpack
import pytest
import trio

from orchestrator.control.server import journal_history
from orchestrator.fleet.loader import fleet_from_dict
from orchestrator.fleet.orchestrator import Orchestrator, event_topic
from orchestrator.fleet.slots import Slot
from orchestrator.fleet.state import NodeState
from orchestrator.journal import JournalFailedError, journal_path, read_journal
from orchestrator.protocol import codec, messages
from orchestrator.protocol.errors import ProtocolError
from tests.fleet_support import Subscriber, assert_complete, fleet, journaled, node

pytestmark = pytest.mark.trio

TIMEOUT = 60  # bounds a broken test on a loaded machine; never a speed assertion


async def run_until(config, node_id: str, count: int) -> tuple[Orchestrator, list]:
    """Run an orchestrator until ``count`` events of ``node_id`` are published; shut it down."""
    orch = Orchestrator(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(orch.run)
        sub = Subscriber(orch.event_endpoint)
        try:
            await orch.wait_for(node_id, NodeState.RUNNING)
            seen = await sub.events_of(node_id, count)
        finally:
            await sub.aclose()
        orch.shutdown()
    assert orch.clean_shutdown
    return orch, seen


async def test_relayed_events_are_in_the_journal_in_order_with_no_gap(tmp_path):
    with trio.fail_after(TIMEOUT):
        orch, seen = await run_until(fleet(tmp_path, node("a")), "a", 20)
    stored = journaled(orch, "a")
    assert_complete(stored)
    assert stored[-1][0] == orch.node_status("a").last_seq
    by_seq = {e[0]: e for e in stored}
    assert all(by_seq[e[0]] == e for e in seen), "what was published is what was journaled"
    page = journal_history(orch.state_dir, ["a"], since=5, limit=3)  # events --since reads it
    assert [e[:2] for e in page["events"]] == [["a", 5], ["a", 6], ["a", 7]] and page["truncated"]


async def test_a_restarted_orchestrator_continues_each_node_after_its_journal(tmp_path):
    config = fleet(tmp_path, node("a"))
    with trio.fail_after(TIMEOUT):
        first, _ = await run_until(config, "a", 10)
        before = first.node_status("a").last_seq
        assert before >= 10

        again = Orchestrator(config)
        async with trio.open_nursery() as nursery:
            await nursery.start(again.run)
            assert again.node_status("a").last_seq >= before  # read from the journal at start
            sub = Subscriber(again.event_endpoint)
            try:
                await again.wait_for("a", NodeState.RUNNING)
                after = await sub.events_of("a", 5)
            finally:
                await sub.aclose()
            again.shutdown()
    assert after[0][0] > before, "the new child resumed after the journal's last seq"
    stored = journaled(again, "a")
    assert_complete(stored)
    assert stored[before - 1][0] == before


class _Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, bytes]] = []

    def publish(self, topic: bytes, frame: bytes) -> None:
        self.published.append((topic, frame))


def _frame(seqs) -> tuple[codec.EvtBatch]:
    """``relay.on_events``'s argument after the slot: the frame as ``_handle`` hands it over."""
    msg = messages.evt("a", 1, [[s, s * 10, "t", "E", {"n": s}] for s in seqs])
    batch = codec.decode_relay(codec.encode(msg))
    assert type(batch) is codec.EvtBatch
    return (batch,)


@pytest.mark.parametrize("fsync", ["never", "always"])  # "always" appends in a worker thread
async def test_a_resent_frame_is_neither_journaled_nor_published_twice(tmp_path, fsync):
    config = fleet(tmp_path, node("a"), journal_fsync=fsync)
    orch = Orchestrator(config)
    orch._open_journals()
    try:
        pub = orch._publisher = orch.relay.publisher = _Recorder()
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        for seqs in ([1, 2, 3], [1, 2, 3], [2, 3], [2, 3, 4, 5], [6]):
            await orch.relay.on_events(slot, *_frame(seqs))
        assert [e[0] for e in journaled(orch, "a")] == [1, 2, 3, 4, 5, 6]
        published = [[e[0] for e in codec.decode(f)["events"]] for _, f in pub.published]
        assert published == [[1, 2, 3], [4, 5], [6]]  # an overlapping resend: only its new part
        assert {t for t, _ in pub.published} == {event_topic("a")}
        assert orch.duplicate_events == 3 + 2 + 2 and orch.relayed_events == 6
        assert orch.node_status("a").last_seq == 6 and orch.relay.ackable(slot) == 6
    finally:
        orch._close_journals()

    restarted = Orchestrator(config)
    restarted._open_journals()
    try:
        assert restarted.node_status("a").last_seq == 6
    finally:
        restarted._close_journals()


@asynccontextmanager
async def relayed_under_batch(tmp_path, seqs: list[int]):
    """An orchestrator's relay under ``batch`` with an interval that never comes (only an explicit
    ``relay.sync_batch`` syncs), events ``seqs`` of node ``a`` relayed from one slot: (orch, slot)."""
    orch = Orchestrator(fleet(tmp_path, node("a"), journal_fsync="batch:60000"))
    orch._open_journals()
    try:
        orch._publisher = orch.relay.publisher = _Recorder()
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        await orch.relay.on_events(slot, *_frame(seqs))
        yield orch, slot
    finally:
        orch._close_journals()


async def test_acks_wait_for_durability_under_batch(tmp_path):
    async with relayed_under_batch(tmp_path, [1, 2]) as (orch, slot):
        assert orch.relay.ackable(slot) == 0, "not fdatasync'ed yet: not acked"
        await orch.relay.sync_batch()  # what the interval timer runs (fdatasync in a worker thread)
        assert orch.relay.ackable(slot) == 2
        await orch.relay.on_events(slot, *_frame([3]))
        assert orch.relay.ackable(slot) == 2


async def test_a_failed_fdatasync_stops_the_relay_and_acks_nothing_more(tmp_path):
    # After a failed fdatasync nobody can tell what reached the disk: nothing more may be acked.
    async with relayed_under_batch(tmp_path, [1, 2]) as (orch, slot):
        os.close(orch.journals._sync_fds["a"])  # the sync fd fails: EBADF, as a dead disk would
        with pytest.raises(JournalFailedError, match="node a: .*restart the orchestrator"):
            await orch.relay.sync_batch()
        assert orch.relay.ackable(slot) == 0
        orch.journals._sync_fds["a"] = os.open(journal_path(orch.state_dir, "a"), os.O_RDONLY)


async def test_journal_fsync_is_read_from_the_fleet_file(tmp_path):
    assert fleet_from_dict({}, tmp_path).journal_fsync == "batch"
    assert fleet_from_dict({"orchestrator": {"journal_fsync": "always"}}, tmp_path).journal_fsync == "always"
    with pytest.raises(ValueError, match="journal_fsync"):
        fleet_from_dict({"orchestrator": {"journal_fsync": "sometimes"}}, tmp_path)


class _Router:
    """Stands in for the node ROUTER: records what the orchestrator sends (its error replies)."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    async def send_multipart(self, frames) -> None:
        self.sent.append(list(frames))


def _evt(events, node="a", incarnation=1) -> bytes:
    return msgpack.packb({"k": "evt", "v": 1, "node": node, "incarnation": incarnation, "events": events})


def _ev(seq, **data) -> list:
    return [seq, seq * 10, "t", "E", data]


# Frames the relay must refuse: (frame, the code of the error reply)
REFUSED = {
    "bad envelope: node of another slot": (_evt([_ev(1)], node="b"), "wrong_node"),
    "bad envelope: old incarnation": (_evt([_ev(1)], incarnation=0), "invalid_field"),
    "bad envelope: no node": (
        msgpack.packb({"k": "evt", "v": 1, "incarnation": 1, "events": [_ev(1)]}),
        "invalid_field",
    ),
    "seq not an int": (_evt([["3", 0, "t", "E", {}], _ev(4)]), "invalid_field"),
    "seq a float": (_evt([[1.0, 0, "t", "E", {}]]), "invalid_field"),
    "seq zero": (_evt([_ev(0), _ev(1)]), "invalid_field"),
    "first event not a list of 5": (_evt([[3, 0, "t", "E"], _ev(4)]), "invalid_field"),
    "no events": (_evt([]), "invalid_field"),
    "truncated body": (_evt([_ev(1), _ev(2, text="a longer body")])[:-5], "malformed"),
    "garbled body": (_evt([_ev(1, n=1)]).replace(b"\xa1n\x01", b"\xa1n\xc1"), "malformed"),
    "trailing bytes": (_evt([_ev(1)]) + b"\x01", "malformed"),
    "oversized": (_evt([_ev(1, blob="x" * (4 * 1024 * 1024))]), "too_large"),
}


async def test_bad_evt_frames_are_refused_counted_and_leave_the_journal_and_the_relay_intact(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a"), journal_fsync="never"))
    orch._open_journals()
    try:
        pub = orch._publisher = orch.relay.publisher = _Recorder()
        router = orch._router = _Router()
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        orch._slots[slot.identity] = slot
        await orch._handle([b"s1", _evt([_ev(1), _ev(2)])])
        for name, (raw, code) in REFUSED.items():
            before = orch.invalid_messages
            await orch._handle([b"s1", raw])
            assert orch.invalid_messages == before + 1, name
            identity, reply = router.sent[-1]
            answer = codec.decode(reply)
            assert identity == b"s1" and answer["k"] == "error" and answer["code"] == code, (name, answer)
        assert len(router.sent) == len(REFUSED)
        assert [e[0] for e in journaled(orch, "a")] == [1, 2], "nothing refused reached the journal"
        assert len(pub.published) == 1 and orch.relayed_events == 2
        await orch._handle([b"s1", _evt([_ev(7), _ev(8)])])  # the relay carries on, gaps allowed
        assert [e[0] for e in journaled(orch, "a")] == [1, 2, 7, 8]
        assert orch.node_status("a").last_seq == 8 and orch.relay.ackable(slot) == 8
    finally:
        orch._close_journals()


async def test_a_later_event_numbered_wrongly_is_journaled_under_the_seqs_the_frame_declares(tmp_path):
    """Decided: the relay reads the first seq and the count, not each event's seq (codec.decode_relay).

    Its own bookkeeping (journal key, last seq, ack) follows first + count - 1 whatever a child put
    in later events; a subscriber's full decode refuses such a frame.
    """
    orch = Orchestrator(fleet(tmp_path, node("a"), journal_fsync="never"))
    orch._open_journals()
    try:
        orch._publisher = orch.relay.publisher = _Recorder()
        orch._router = _Router()
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        orch._slots[slot.identity] = slot
        wrong = _evt([_ev(1), _ev(3), _ev(3)])
        await orch._handle([b"s1", wrong])
        assert orch.invalid_messages == 0 and orch.relayed_events == 3
        (record,) = read_journal(journal_path(orch.state_dir, "a"))
        assert record.seq == 3 and record.payload == wrong
        assert orch.node_status("a").last_seq == 3 and orch.relay.ackable(slot) == 3
        with pytest.raises(ProtocolError, match="consecutive"):
            codec.decode(wrong)  # what a subscriber does with it (EventSubscriber skips and counts it)
        await orch._handle([b"s1", _evt([_ev(4)])])  # the stream goes on from the declared last seq
        assert [r.seq for r in read_journal(journal_path(orch.state_dir, "a"))] == [3, 4]
    finally:
        orch._close_journals()


async def test_an_odd_event_body_with_a_valid_envelope_is_relayed_as_received(tmp_path):
    """Decided: the relay checks the envelope and the seqs, not event bodies (codec.decode_relay).

    Such a frame is journaled and published byte for byte, keyed by its validated last seq; a
    subscriber's full decode refuses it.
    """
    orch = Orchestrator(fleet(tmp_path, node("a"), journal_fsync="never"))
    orch._open_journals()
    try:
        pub = orch._publisher = orch.relay.publisher = _Recorder()
        orch._router = _Router()
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        orch._slots[slot.identity] = slot
        odd = _evt([[1, -1, 7, None, {1: "an int key"}], _ev(2)])
        await orch._handle([b"s1", odd])
        assert orch.invalid_messages == 0 and orch.relayed_events == 2
        assert pub.published == [(event_topic("a"), odd)]
        (record,) = read_journal(journal_path(orch.state_dir, "a"))
        assert record.seq == 2 and record.payload == odd
        with pytest.raises(ProtocolError):
            codec.decode(odd)  # what a subscriber does with it (EventSubscriber skips and counts it)
        page = journal_history(orch.state_dir, ["a"])  # events --since shows it, leniently
        assert [e[1] for e in page["events"]] == [1, 2] and page["events"][0][5] == {1: "an int key"}
    finally:
        orch._close_journals()


async def test_relay_listeners_get_the_decoded_events_and_an_odd_body_never_reaches_them(tmp_path):
    orch = Orchestrator(fleet(tmp_path, node("a"), journal_fsync="never"))
    orch._open_journals()
    try:
        orch._publisher = orch.relay.publisher = _Recorder()
        orch._router = _Router()
        heard = []
        orch.relay_listeners.append(lambda node_id, events: heard.append((node_id, events)))
        slot = Slot("s1", b"s1", process=None, node_id="a", incarnation=1)
        orch._slots[slot.identity] = slot
        await orch._handle([b"s1", _evt([_ev(1, n=1), _ev(2)])])
        await orch._handle([b"s1", _evt([[3, 0, "t", "E", [1]]])])  # relayed, but not a valid event
        await orch._handle([b"s1", _evt([_ev(3), _ev(4)])])  # overlapping resend: its new part only
        assert heard == [("a", [_ev(1, n=1), _ev(2)]), ("a", [_ev(4)])]
        assert orch.relayed_events == 4 and orch.duplicate_events == 1
    finally:
        orch._close_journals()


async def test_a_subscriber_skips_and_counts_a_frame_whose_events_do_not_validate(tmp_path):
    from orchestrator.fleet.subscriber import EventSubscriber
    from orchestrator.transport import sockets
    from orchestrator.transport.options import new_context
    from orchestrator.transport.runtime_dir import ensure_runtime_dir, ipc_endpoint
    from orchestrator.transport.sequencing import SequencedPublisher

    runtime = ensure_runtime_dir(fleet(tmp_path).runtime_dir)
    endpoint = ipc_endpoint(runtime, "events")
    ctx = new_context()
    pub_sock = sockets.event_pub(ctx, endpoint)
    pub = SequencedPublisher(pub_sock)
    try:
        async with EventSubscriber(endpoint) as sub:
            with trio.fail_after(TIMEOUT):
                while True:  # until the subscription has reached the PUB (it drops before that)
                    pub.publish(b"orchestrator", msgpack.packb({"node": "a", "state": "RUNNING"}))
                    with trio.move_on_after(0.05):
                        await sub.next_event()
                        break
                pub.publish(event_topic("a"), _evt([[1, -1, 7, None, {1: "an int key"}]]))
                pub.publish(event_topic("a"), _evt([_ev(2)]))
                item = await sub.next_event()
            assert item.message["events"][0][0] == 2
            assert sub.invalid == 1 and "a" in sub.last_invalid
    finally:
        pub_sock.close(linger=0)
        ctx.term()
