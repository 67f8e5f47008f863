"""The wire protocol: every kind round-trips, every invalid frame gets the right code and a message
that names the field, and no input whatsoever makes ``decode`` raise anything but ProtocolError.

The fuzz tests run ~2,000 examples in all (~8 s on the project's 2-core machine), sized for the
suite's 5-minute budget; each run draws new ones, so successive runs search further.
``FUZZ_SCALE=20 .venv/bin/python -m pytest tests/test_protocol.py -k fuzz`` runs twenty times as
many, for a deep search after a change to the codec or the schema.
"""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import protocol as p
from orchestrator.protocol import kinds

FUZZ_SCALE = float(os.environ.get("FUZZ_SCALE", "0.5"))


def fuzz(examples: int):
    """Hypothesis settings of a fuzz test: ``examples`` times ``FUZZ_SCALE`` (see the docstring)."""
    return settings(
        max_examples=max(1, round(examples * FUZZ_SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


EVENTS = [
    [
        1,
        1_700_000_000_000_000_000,
        "data.quotes.EUR/USD.SIM",
        "QuoteTick",
        {"bid": "1.10001", "ask": "1.10003"},
    ],
    [2, 1_700_000_000_000_000_500, "events.order.S-1", "OrderFilled", {"qty": 1000}],
]

VALID = {
    "hello": p.hello("slot-3", 4242, True),
    "assign": p.assign("node-1", 3, {"strategy": {"fast": 10}}, 117, 4242),
    "prepare": p.prepare({"node-1": {"doc": {"node": {}}, "base_dir": "."}, "node-2": {}}),
    "prepare_none": p.prepare({}),
    "cmd": p.cmd("c-9", "node-1", "stop", {}),
    "reply_ok": p.reply_ok("c-9", {"state": "STOPPED"}),
    "reply_ok_nil": p.reply_ok("c-9", None),
    "reply_error": p.reply_error("c-9", "no such strategy"),
    "evt": p.evt("node-1", 3, EVENTS),
    "ack": p.ack("node-1", 0),
    "hb": p.hb(123456789, "RUNNING", {"events": 10, "orders": 0}),
    "hb_no_counters": p.hb(0, "STARTING", {}),
    "bye": p.bye("stopped by command", 0),
    "error": p.error("invalid_field", "hb.ts: expected int", None),
    "error_ref": p.error("timeout", "no reply in 5 s", "c-9"),
}


def frame(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def with_(msg: dict, **changes) -> dict:
    out = dict(msg)
    out.update(changes)
    return out


def without(msg: dict, key: str) -> dict:
    return {k: v for k, v in msg.items() if k != key}


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_kind_round_trips(name):
    msg = VALID[name]
    assert p.decode(p.encode(msg)) == msg


def test_every_kind_has_a_valid_example():
    assert {m["k"] for m in VALID.values()} == kinds.KINDS


def test_events_given_as_tuples_encode_like_lists():
    msg = p.evt("node-1", 1, [tuple(e) for e in EVENTS])
    assert p.decode(p.encode(msg))["events"] == EVENTS


def test_opaque_payloads_are_passed_through():
    config = {"nested": [1, 2.5, None, b"\x00bin", {"deep": True}]}
    assert p.decode(p.encode(p.assign("n", 1, config, 0)))["config"] == config


# (message, expected code, text the error must contain); one case per line, so no auto-format
# fmt: off
INVALID = [
    # wrong types, bools are not ints and ints are not bools
    (with_(VALID["hello"], pid=True), "invalid_field", "hello.pid: expected int >= 1, got bool"),
    (with_(VALID["hello"], pid="42"), "invalid_field", "hello.pid: expected int >= 1, got str"),
    (with_(VALID["hello"], spare=1), "invalid_field", "hello.spare: expected bool, got int"),
    (with_(VALID["hello"], slot=""), "invalid_field", "hello.slot: expected non-empty str"),
    (with_(VALID["assign"], incarnation=0), "invalid_field", "assign.incarnation: expected int >= 1, got int 0"),
    (with_(VALID["assign"], incarnation=False), "invalid_field", "assign.incarnation: expected int >= 1, got bool"),
    (with_(VALID["assign"], resume_after=-1), "invalid_field", "assign.resume_after: expected int >= 0"),
    (with_(VALID["assign"], after_pid=-1), "invalid_field", "assign.after_pid: expected int >= 0"),
    (with_(VALID["assign"], after_pid=True), "invalid_field", "assign.after_pid: expected int >= 0"),
    (with_(VALID["assign"], config=[]), "invalid_field", "assign.config: expected map, got list"),
    (with_(VALID["prepare"], nodes=[]), "invalid_field", "prepare.nodes: expected map, got list"),
    (with_(VALID["prepare"], nodes={"": {}}), "invalid_field", "prepare.nodes key: expected non-empty str"),
    (with_(VALID["prepare"], nodes={b"n": {}}), "invalid_field", "prepare.nodes key: expected non-empty str (a node id), got bin"),
    (with_(VALID["prepare"], nodes={"n": []}), "invalid_field", "prepare.nodes['n']: expected map (as assign.config), got list"),
    (with_(VALID["cmd"], args=None), "invalid_field", "cmd.args: expected map, got nil"),
    (with_(VALID["cmd"], id=7), "invalid_field", "cmd.id: expected non-empty str, got int"),
    (with_(VALID["reply_ok"], ok=1), "invalid_field", "reply.ok: expected bool, got int"),
    (with_(VALID["reply_error"], error=None), "invalid_field", "reply.error: expected str, got nil"),
    (with_(VALID["evt"], incarnation=1.0), "invalid_field", "evt.incarnation: expected int >= 1, got float"),
    (with_(VALID["ack"], seq=True), "invalid_field", "ack.seq: expected int >= 0, got bool"),
    (with_(VALID["ack"], seq=-1), "invalid_field", "ack.seq: expected int >= 0"),
    (with_(VALID["hb"], ts=1.5), "invalid_field", "hb.ts: expected int, got float"),
    (with_(VALID["hb"], counters={"a": True}), "invalid_field", "hb.counters['a']: expected int, got bool"),
    (with_(VALID["hb"], counters={"a": 1.0}), "invalid_field", "hb.counters['a']: expected int, got float"),
    (with_(VALID["hb"], counters=[]), "invalid_field", "hb.counters: expected map of str -> int"),
    (with_(VALID["hb"], counters={b"a": 1}), "invalid_field", "hb.counters key: expected str, got bin"),
    (with_(VALID["bye"], code="0"), "invalid_field", "bye.code: expected int, got str"),
    (with_(VALID["error"], ref=3), "invalid_field", "error.ref: expected str or nil, got int"),
    # missing and extra fields
    (without(VALID["hello"], "pid"), "invalid_field", "hello: missing field 'pid'"),
    (with_(VALID["hello"], extra=1), "invalid_field", "hello: unexpected field 'extra'"),
    (without(VALID["error"], "ref"), "invalid_field", "error: missing field 'ref'"),
    (without(VALID["reply_ok"], "result"), "invalid_field", "reply: missing field 'result'"),
    (with_(VALID["reply_ok"], error="x"), "invalid_field", "'result' and 'error' are exclusive"),
    (with_(without(VALID["reply_ok"], "result"), error="x"), "invalid_field", "ok=true must carry 'result'"),
    (with_(without(VALID["reply_error"], "error"), result=1), "invalid_field", "ok=false must carry 'error'"),
    (without(VALID["ack"], "k"), "invalid_field", "missing field 'k'"),
    (without(VALID["ack"], "v"), "invalid_field", "missing field 'v'"),
    # version and kind
    (with_(VALID["ack"], v=2), "version", "peer speaks protocol version 2, this side speaks 1"),
    (with_(VALID["ack"], v=True), "invalid_field", "v: expected int (protocol version), got bool"),
    (with_(VALID["ack"], k="launch"), "unknown_kind", "unknown message kind 'launch'; known kinds: ack,"),
    (with_(VALID["ack"], k=1), "invalid_field", "k: expected str (message kind), got int"),
    # events
    (with_(VALID["evt"], events=[]), "invalid_field", "evt.events: expected a non-empty list"),
    (with_(VALID["evt"], events={}), "invalid_field", "evt.events: expected a non-empty list"),
    (with_(VALID["evt"], events=[EVENTS[1], EVENTS[0]]), "invalid_field", "evt.events[1].seq: expected 3"),
    (with_(VALID["evt"], events=[EVENTS[0], EVENTS[0]]), "invalid_field", "seqs are consecutive within a batch"),
    (with_(VALID["evt"], events=[EVENTS[0], [3, *EVENTS[1][1:]]]), "invalid_field", "expected 2 (seqs are consecutive"),
    (with_(VALID["evt"], events=[[0, *EVENTS[0][1:]]]), "invalid_field", "evt.events[0].seq: expected int >= 1"),
    (with_(VALID["evt"], events=[[True, *EVENTS[0][1:]]]), "invalid_field", "evt.events[0].seq: expected int >= 1"),
    (with_(VALID["evt"], events=[EVENTS[0][:4]]), "invalid_field", "evt.events[0]: expected a list [seq, ts,"),
    (with_(VALID["evt"], events=["abcde"]), "invalid_field", "evt.events[0]: expected a list"),
    (with_(VALID["evt"], events=[[1, -5, "t", "T", {}]]), "invalid_field", "evt.events[0].ts: expected int >= 0"),
    (with_(VALID["evt"], events=[[1, 5, b"t", "T", {}]]), "invalid_field", "evt.events[0].topic: expected str"),
    (with_(VALID["evt"], events=[[1, 5, "t", None, {}]]), "invalid_field", "evt.events[0].type: expected str"),
    (with_(VALID["evt"], events=[EVENTS[0], [2, 5, "t", "T", []]]), "invalid_field", "evt.events[1].data: expected map"),
]
# fmt: on


@pytest.mark.parametrize(("msg", "code", "text"), INVALID, ids=[case[2][:50] for case in INVALID])
def test_invalid_messages_are_refused_on_both_sides(msg, code, text):
    with pytest.raises(p.ProtocolError) as decoded:
        p.decode(frame(msg))
    assert decoded.value.code == code
    assert text in str(decoded.value)
    with pytest.raises(p.ProtocolError) as encoded:  # the sender fails the same way
        p.encode(msg)
    assert (encoded.value.code, encoded.value.message) == (decoded.value.code, decoded.value.message)


GOOD = p.encode(VALID["evt"])

BAD_FRAMES = [
    (b"", "malformed", "incomplete input"),
    (GOOD[:-1], "malformed", "incomplete input"),
    (GOOD[: len(GOOD) // 2], "malformed", "incomplete input"),
    (GOOD + b"\x00", "malformed", "ExtraData"),
    (b"\xc1", "malformed", "FormatError"),
    (b"\xff\xfe\xfd garbage", "malformed", "not one valid msgpack value"),
    (frame([VALID["ack"]]), "malformed", "must be one msgpack map, got list"),
    (frame(42), "malformed", "got int"),
    (frame("ack"), "malformed", "got str"),
    (b"\x81\x01\x02", "malformed", "int is not allowed for map key"),
    (b"\x81\xa1k\xa2\xff\xfe", "malformed", "utf-8"),
    # declared lengths far beyond the frame: refused before anything is allocated
    (b"\xdd\xff\xff\xff\xff", "malformed", "exceeds max_array_len"),
    (b"\xdf\xff\xff\xff\xff", "malformed", "exceeds max_map_len"),
    (b"\xdb\xff\xff\xff\xff", "malformed", "incomplete input"),  # str/bin: checked against the bytes left
    (b"\xc6\xff\xff\xff\xff", "malformed", "incomplete input"),
    (b"\x81\xa1k\xdd\x7f\xff\xff\xff", "malformed", "exceeds max_array_len"),
    (b"\x91" * 5000, "malformed", "StackError"),
]


@pytest.mark.parametrize(
    ("raw", "code", "text"), BAD_FRAMES, ids=[f"{i}-{c[2]}" for i, c in enumerate(BAD_FRAMES)]
)
def test_bad_frames_are_malformed(raw, code, text):
    with pytest.raises(p.ProtocolError) as info:
        p.decode(raw)
    assert info.value.code == code
    assert text in str(info.value)


def test_frames_over_the_limit_are_too_large_before_parsing():
    with pytest.raises(p.ProtocolError) as info:
        p.decode(b"\x00" * (p.MAX_FRAME_BYTES + 1))
    assert info.value.code == "too_large"
    assert str(p.MAX_FRAME_BYTES) in str(info.value)


def test_encode_refuses_a_message_over_the_limit_and_says_how_to_split():
    big = p.evt("node-1", 1, [[i + 1, 0, "t", "T", {"blob": "x" * 1024}] for i in range(5000)])
    with pytest.raises(p.ProtocolError) as info:
        p.encode(big)
    assert info.value.code == "too_large"
    assert "fewer events per batch" in str(info.value)


def test_encode_refuses_values_msgpack_cannot_carry():
    with pytest.raises(p.ProtocolError) as info:
        p.encode(p.cmd("c-1", "node-1", "run", {"when": object()}))
    assert info.value.code == "invalid_field" and "cannot be encoded" in str(info.value)
    with pytest.raises(p.ProtocolError) as info:
        p.encode(p.ack("node-1", 2**64))
    assert info.value.code == "invalid_field"


def test_error_from_answers_with_the_decoders_words():
    with pytest.raises(p.ProtocolError) as info:
        p.decode(frame(with_(VALID["ack"], k="launch")))
    answer = p.decode(p.encode(p.error_from(info.value, ref="c-1")))
    assert answer["code"] == "unknown_kind" and "launch" in answer["message"] and answer["ref"] == "c-1"


def test_protocol_error_codes_are_closed():
    with pytest.raises(ValueError, match="unknown ProtocolError code"):
        p.ProtocolError("oops", "x")


# -- fuzzing -------------------------------------------------------------------------------------


def decode_or_protocol_error(raw: bytes) -> None:
    """The property: a valid message (which re-encodes to an equal one) or ProtocolError, nothing else."""
    try:
        msg = p.decode(raw)
    except p.ProtocolError as exc:
        assert exc.code in p.ERROR_CODES
        return
    assert p.decode(p.encode(msg)) == msg


@fuzz(1000)
@given(st.binary(max_size=256))
def test_fuzz_random_bytes(raw):
    decode_or_protocol_error(raw)


@fuzz(700)
@given(st.sampled_from(sorted(VALID)), st.data())
def test_fuzz_mutated_valid_frames(name, data):
    raw = bytearray(p.encode(VALID[name]))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    decode_or_protocol_error(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "slot", "pid", "spare", "node", "incarnation", "config", "resume_after", "after_pid", "id", "name", "args",
        "ok", "result", "error", "events", "seq", "ts", "state", "counters", "reason", "code", "message", "ref",
    ]
)  # fmt: skip
event = st.tuples(st.integers(-1, 5), st.integers(-1, 5), scalars, scalars, values).map(list)


def like(value):
    """Values of the same msgpack type as ``value`` (often valid, sometimes out of range)."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-2, 2**64 - 1)
    if isinstance(value, str):
        return st.text(max_size=6)
    if isinstance(value, dict):
        return st.dictionaries(st.text(max_size=4), st.integers(-2, 5) | values, max_size=3)
    if isinstance(value, list):
        return st.lists(event, max_size=3)
    return values


@st.composite
def near_valid_messages(draw):
    """A valid example with 0-2 edits: a field replaced (same type or any), removed, or added."""
    msg = dict(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(sorted(msg)))
        edit = draw(st.sampled_from(["same-type", "any", "remove", "add"]))
        if edit == "same-type":
            msg[key] = draw(like(msg[key]))
        elif edit == "any":
            msg[key] = draw(values)
        elif edit == "remove":
            del msg[key]
        else:
            msg[draw(field_names)] = draw(values)
    return msg


@fuzz(500)
@given(near_valid_messages())
def test_fuzz_near_valid_messages(msg):
    decode_or_protocol_error(frame(msg))


@fuzz(250)
@given(
    st.sampled_from(sorted(kinds.KINDS) + ["nope"]),
    st.sampled_from([1, 1, 1, 0, 2, True]),
    st.dictionaries(field_names, values | st.lists(event, max_size=3), max_size=7),
)
def test_fuzz_structured_messages(kind, version, fields):
    decode_or_protocol_error(frame({"k": kind, "v": version, **fields}))


# -- the relay's fast path: decode_relay ---------------------------------------------------------
#
# The boundary (see codec.decode_relay): the envelope, the first event's framing (a list of 5) and
# seq (an int >= 1), the event count and the msgpack well-formedness of every byte are checked; seqs
# are consecutive within a batch (the protocol's rule), so the first seq and the count give the
# last. Nothing after the first event's seq is interpreted, so a frame whose only fault is there is
# relayed as received under the seqs it declares (decided: subscribers decode and refuse it).


def evt_frame(events, node="node-1", incarnation=3) -> bytes:
    return frame({"k": "evt", "v": 1, "node": node, "incarnation": incarnation, "events": events})


def test_decode_relay_gives_the_envelope_and_seq_range_of_a_valid_evt_frame():
    raw = p.encode(VALID["evt"])
    batch = p.decode_relay(raw)
    assert type(batch) is p.EvtBatch
    assert (batch.node, batch.incarnation, batch.first, batch.last, batch.count) == ("node-1", 3, 1, 2, 2)
    assert batch.frame is raw
    assert batch.message() == VALID["evt"]


@pytest.mark.parametrize(
    "seqs", [[1], [127, 128], [255, 256, 257], [65535, 65536], [2**32 - 1, 2**32], [2**64 - 2, 2**64 - 1]]
)
def test_decode_relay_reads_seqs_of_every_width(seqs):
    batch = p.decode_relay(evt_frame([[s, 0, "t", "T", {}] for s in seqs]))
    assert (batch.first, batch.last, batch.count) == (seqs[0], seqs[-1], len(seqs))


@pytest.mark.parametrize("name", sorted(n for n in VALID if n != "evt"))
def test_decode_relay_returns_every_other_kind_as_decode_does(name):
    assert p.decode_relay(p.encode(VALID[name])) == VALID[name]


def test_decode_relay_accepts_unusual_but_valid_encodings_through_the_full_decode():
    seq_as_int64 = evt_frame([[1, 0, "t", "T", {}]]).replace(
        b"\x95\x01", b"\x95\xd3" + (1).to_bytes(8, "big")
    )
    map16 = b"\xde\x00\x05" + evt_frame([[1, 0, "t", "T", {}], [2, 0, "t", "T", {}]])[1:]
    for raw, last in ((seq_as_int64, 1), (map16, 2)):
        batch = p.decode_relay(raw)
        assert type(batch) is p.EvtBatch and batch.last == last and batch.message() == p.decode(raw)


GOOD_EVENT = [1, 0, "t", "T", {}]

# (frame, code, text): refused by decode_relay with decode's own words
# fmt: off
RELAY_REFUSED = [
    # the envelope
    (frame(without(VALID["evt"], "node")), "invalid_field", "missing field 'node'"),
    (frame(with_(VALID["evt"], node="")), "invalid_field", "evt.node: expected non-empty str"),
    (frame(with_(VALID["evt"], node=7)), "invalid_field", "evt.node: expected non-empty str"),
    (frame(with_(VALID["evt"], incarnation=0)), "invalid_field", "evt.incarnation: expected int >= 1"),
    (frame(with_(VALID["evt"], incarnation=True)), "invalid_field", "evt.incarnation: expected int >= 1"),
    (frame(with_(VALID["evt"], v=2)), "version", "peer speaks protocol version 2"),
    (frame(with_(VALID["evt"], k="evx")), "unknown_kind", "evx"),
    (frame(with_(VALID["evt"], extra=1)), "invalid_field", "unexpected field 'extra'"),
    (frame({**without(VALID["evt"], "events"), "event": []}), "invalid_field", "unexpected field 'event'"),
    (evt_frame([]), "invalid_field", "evt.events: expected a non-empty list"),
    (evt_frame({"a": 1}), "invalid_field", "evt.events: expected a non-empty list"),
    # the first event's framing and seq
    (evt_frame([[1, 0, "t", "T"]]), "invalid_field", "evt.events[0]: expected a list [seq, ts"),
    (evt_frame([7]), "invalid_field", "evt.events[0]: expected a list [seq, ts"),
    (evt_frame([[1.0, 0, "t", "T", {}]]), "invalid_field", "evt.events[0].seq: expected int >= 1, got float"),
    (evt_frame([["1", 0, "t", "T", {}]]), "invalid_field", "evt.events[0].seq: expected int >= 1, got str"),
    (evt_frame([[True, 0, "t", "T", {}]]), "invalid_field", "evt.events[0].seq: expected int >= 1, got bool"),
    (evt_frame([[0, 0, "t", "T", {}]]), "invalid_field", "evt.events[0].seq: expected int >= 1, got int 0"),
    (evt_frame([[-3, 0, "t", "T", {}]]), "invalid_field", "evt.events[0].seq: expected int >= 1"),
    # a last seq past uint64 (first + count - 1): decode's words about the second event
    (evt_frame([[2**64 - 1, 0, "t", "T", {}], [7, 0, "t", "T", {}]]), "invalid_field", "events[1].seq: expected"),
    # the bytes themselves
    (evt_frame([GOOD_EVENT]) + b"\x00", "malformed", "ExtraData"),
    (evt_frame([GOOD_EVENT, [2, 0, "t", "T", {"n": 1}]]).replace(b"\xa1n\x01", b"\xa1n\xc1"), "malformed", ""),
]
# fmt: on


@pytest.mark.parametrize(
    ("raw", "code", "text"), RELAY_REFUSED, ids=[f"{i}-{c[1]}" for i, c in enumerate(RELAY_REFUSED)]
)
def test_decode_relay_refuses_a_bad_envelope_or_seq_like_decode(raw, code, text):
    with pytest.raises(p.ProtocolError) as fast:
        p.decode_relay(raw)
    with pytest.raises(p.ProtocolError) as full:
        p.decode(raw)
    assert fast.value.code == full.value.code == code
    assert str(fast.value) == str(full.value) and text in str(fast.value)


def test_decode_relay_refuses_every_truncation_of_an_evt_frame():
    raw = p.encode(
        p.evt("node-1", 1, [[i, 10**18 + i, "events.x", "E", {"i": i, "s": "é"}] for i in range(1, 9)])
    )
    for cut in range(len(raw)):
        with pytest.raises(p.ProtocolError) as info:
            p.decode_relay(raw[:cut])
        assert info.value.code in ("malformed", "invalid_field"), cut


def test_decode_relay_refuses_an_oversized_frame_before_parsing():
    events = [[1, 0, "t", "T", {"blob": "x" * p.MAX_FRAME_BYTES}]]
    raw = evt_frame(events)
    assert len(raw) > p.MAX_FRAME_BYTES
    with pytest.raises(p.ProtocolError) as info:
        p.decode_relay(raw)
    assert info.value.code == "too_large"


# Valid envelope and first event, a later event framed or numbered wrongly: decode refuses, the relay
# does not look past the first seq and relays it under first .. first + count - 1 (decided, above).
LATER_EVENT_FAULTS = [
    [GOOD_EVENT, [1, 0, "t", "T", {}]],  # a repeated seq
    [GOOD_EVENT, [5, 0, "t", "T", {}], [4, 0, "t", "T", {}]],  # a jump, then backwards
    [GOOD_EVENT, [2, 0, "t", "T"]],  # a list of 4
    [GOOD_EVENT, [2, 0, "t", "T", {}, 6]],  # a list of 6
    [GOOD_EVENT, 2],  # not a list
]


@pytest.mark.parametrize("events", LATER_EVENT_FAULTS, ids=range(len(LATER_EVENT_FAULTS)))
def test_decode_relay_relays_a_later_event_fault_under_the_declared_seqs(events):
    raw = evt_frame(events)
    batch = p.decode_relay(raw)
    assert type(batch) is p.EvtBatch and (batch.first, batch.last, batch.count) == (
        1,
        len(events),
        len(events),
    )
    with pytest.raises(p.ProtocolError, match="invalid_field: evt.events"):
        p.decode(raw)  # what a subscriber runs
    with pytest.raises(p.ProtocolError):
        batch.message()


# Valid envelope and seqs, odd event body: decode refuses, the relay does not look (decided, above).
ODD_BODIES = [
    [1, -5, "t", "T", {}],  # ts negative
    [1, "ts", "t", "T", {}],  # ts not an int
    [1, 0, 7, "T", {}],  # topic not a str
    [1, 0, "t", None, {}],  # type not a str
    [1, 0, "t", "T", [1, 2]],  # data not a map
    [1, 0, "t", "T", {1: "int key"}],  # map key not a str (decode's strict_map_key)
]


@pytest.mark.parametrize("odd", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_decode_relay_passes_an_odd_event_body_with_a_valid_envelope(odd):
    raw = evt_frame([odd, [2, 0, "t", "T", {}]])
    batch = p.decode_relay(raw)
    assert type(batch) is p.EvtBatch and (batch.first, batch.last, batch.count) == (1, 2, 2)
    with pytest.raises(p.ProtocolError):
        p.decode(raw)  # what a subscriber runs
    with pytest.raises(p.ProtocolError):
        batch.message()


def test_decode_relay_passes_invalid_utf8_inside_an_event_body():
    raw = evt_frame([[1, 0, "t", "T", {"s": "xx"}]]).replace(b"\xa2xx", b"\xa2\xff\xfe")
    assert type(p.decode_relay(raw)) is p.EvtBatch
    with pytest.raises(p.ProtocolError, match="malformed"):
        p.decode(raw)


def relay_agrees_with_decode(raw: bytes) -> None:
    """decode_relay's property, against decode on the same bytes.

    - it raises nothing but ProtocolError, and only where decode does, with the same code and text;
    - what both accept is the same message (for evt: node, incarnation, first/last seq, count);
    - what only decode_relay accepts is an evt frame that is well-formed msgpack whose envelope and
      first event's framing and seq decode would accept: only what follows that seq is odd;
    - the seqs it gives are first .. first + count - 1 (where decode accepts too, the events' own).
    """
    try:
        full, full_error = p.decode(raw), None
    except p.ProtocolError as exc:
        full, full_error = None, exc
    try:
        fast = p.decode_relay(raw)
    except p.ProtocolError as exc:
        assert full_error is not None, f"decode_relay refused what decode accepts: {exc}"
        assert (exc.code, str(exc)) == (full_error.code, str(full_error))
        return
    if type(fast) is not p.EvtBatch:
        assert fast == full
        return
    assert fast.frame is raw
    msg = full
    if msg is None:
        # Maps as lists of pairs: a body may hold a map keyed by a map (nothing hashable to build).
        pairs = msgpack.unpackb(
            raw, raw=False, strict_map_key=False, unicode_errors="surrogateescape", object_pairs_hook=list
        )
        msg = dict(pairs)  # the envelope's keys are str: the fast scan checked them
        first = msg["events"][0]
        assert type(first) in (list, tuple) and len(first) == 5
        count = len(msg["events"])
        msg["events"] = [[first[0] + i, 0, "t", "T", {}] for i in range(count)]
        p.validate(msg)  # envelope and first seq valid: the fault came after it
    events = msg["events"]
    assert (fast.node, fast.incarnation) == (msg["node"], msg["incarnation"])
    assert (fast.first, fast.last, fast.count) == (events[0][0], events[0][0] + len(events) - 1, len(events))
    assert fast.last == events[-1][0]


@fuzz(700)
@given(st.data())
def test_fuzz_decode_relay_on_mutated_evt_frames(data):
    events = data.draw(st.lists(event, min_size=1, max_size=4))
    raw = bytearray(evt_frame(sorted(events, key=lambda e: e[0]) if data.draw(st.booleans()) else events))
    for _ in range(data.draw(st.integers(0, 3))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    relay_agrees_with_decode(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))


@fuzz(500)
@given(near_valid_messages())
def test_fuzz_decode_relay_on_near_valid_messages(msg):
    relay_agrees_with_decode(frame(msg))


@fuzz(350)
@given(st.binary(max_size=256))
def test_fuzz_decode_relay_on_random_bytes(raw):
    relay_agrees_with_decode(raw)
