"""MessageBus: wildcard topics, dispatch order, endpoints, request/response, isolation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.common.clock import TestClock
from node.msgbus import MessageBus
from node.msgbus.bus import (
    DuplicateResponse,
    EndpointAlreadyRegistered,
    EndpointHandlerMismatch,
    InvalidTopic,
    Request,
    Response,
    UnknownCorrelationId,
    UnknownEndpoint,
    topic_matches,
)


def oracle(topic: str, pattern: str) -> bool:
    """Independent definition: translate the pattern to an anchored regex."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.fullmatch("".join(parts), topic, re.DOTALL) is not None


@pytest.fixture
def bus() -> MessageBus:
    return MessageBus("TRADER-001", TestClock(1_000))


# -- matching ----------------------------------------------------------------------------------

MATCH_TABLE = [
    ("data.quotes.EURUSD", "data.quotes.EURUSD", True),
    ("data.quotes.EURUSD", "data.quotes.GBPUSD", False),
    ("data.quotes.EURUSD", "data.*", True),  # * crosses dots
    ("data.quotes.EURUSD", "*", True),
    ("data", "data*", True),  # * may be empty
    ("data.", "data.*", True),
    ("data", "data.*", False),
    ("data.quotes.EURUSD", "*.EURUSD", True),
    ("data.quotes.EURUSD", "data.*.EURUSD", True),
    ("data.EURUSD", "data.*.EURUSD", False),
    ("data.quotes.EURUSD", "data.quotes.EUR???", True),
    ("data.quotes.EURUS", "data.quotes.EUR???", False),  # ? is exactly one character
    ("data.quotes.EURUSDX", "data.quotes.EUR???", False),
    ("a.b", "a?b", True),  # ? matches a dot too
    ("ab", "a?b", False),
    ("a[b]", "a[b]", True),  # [ is literal, unlike fnmatch
    ("ab", "a[b]", False),
    ("a[x]", "a[?]", True),
    ("aaa", "a*a*a", True),
    ("aa", "a*a*a", False),
    ("abcabd", "*abd", True),  # needs backtracking past a first partial match
    ("x", "**", True),
    ("", "*", True),
    ("", "?", False),
]


@pytest.mark.parametrize(("topic", "pattern", "expected"), MATCH_TABLE)
def test_match_table(topic, pattern, expected):
    assert topic_matches(topic, pattern) is expected
    assert oracle(topic, pattern) is expected  # the oracle agrees, so the property test is meaningful


@given(
    topic=st.text(alphabet="ab.[*?", max_size=12),
    pattern=st.text(alphabet="ab.[*?", max_size=8),
)
def test_matcher_agrees_with_regex_translation(topic, pattern):
    assert topic_matches(topic, pattern) == oracle(topic, pattern)


@given(
    patterns=st.lists(st.text(alphabet="ab.*?", min_size=1, max_size=5), max_size=6, unique=True),
    topics=st.lists(st.text(alphabet="ab.", min_size=1, max_size=6), min_size=1, max_size=6),
)
def test_bus_delivers_exactly_to_matching_patterns(patterns, topics):
    bus = MessageBus("T", TestClock())
    received: list[tuple[str, str]] = []
    for pattern in patterns:
        bus.subscribe(pattern, lambda msg, p=pattern: received.append((p, msg)))
    for topic in topics:
        received.clear()
        bus.publish(topic, topic)
        expected = sorted({p for p in patterns if oracle(topic, p)})
        assert sorted(p for p, _ in received) == expected
        assert bus.has_subscribers(topic) == bool(expected)


# -- publish / subscribe -------------------------------------------------------------------------


def test_priority_then_subscription_order(bus):
    order: list[str] = []

    def make(name):
        return lambda msg: order.append(name)

    bus.subscribe("data.*", make("low-1"))
    bus.subscribe("data.quotes", make("high"), priority=10)
    bus.subscribe("*", make("low-2"))
    bus.subscribe("data.quotes", make("mid"), priority=5)
    bus.subscribe("data.?uotes", make("low-3"))
    bus.publish("data.quotes", "q")
    assert order == ["high", "mid", "low-1", "low-2", "low-3"]


def test_subscribing_twice_is_a_no_op(bus):
    got = []
    bus.subscribe("t", got.append)
    bus.subscribe("t", got.append, priority=99)
    bus.publish("t", 1)
    assert got == [1]
    assert [s.priority for s in bus.subscriptions()] == [0]


def test_subscribe_after_topic_was_cached_is_seen(bus):
    got = []
    bus.publish("data.x", 0)  # caches an empty handler tuple for data.x
    assert not bus.has_subscribers("data.x")
    bus.subscribe("data.*", got.append)
    bus.publish("data.x", 1)
    bus.unsubscribe("data.*", got.append)
    bus.publish("data.x", 2)
    assert got == [1]


def test_unsubscribe_during_dispatch_does_not_break_current_dispatch(bus):
    got: list[str] = []

    def first(msg):
        got.append(f"first:{msg}")
        bus.unsubscribe("t", first)
        bus.unsubscribe("t", second)

    def second(msg):
        got.append(f"second:{msg}")

    def third(msg):
        got.append(f"third:{msg}")

    for handler in (first, second, third):
        bus.subscribe("t", handler)
    bus.publish("t", 1)  # the dispatch in progress still reaches everyone it started with
    bus.publish("t", 2)  # the next one sees the change
    assert got == ["first:1", "second:1", "third:1", "third:2"]


def test_subscribe_during_dispatch_applies_from_next_publish(bus):
    got: list[str] = []

    def late(msg):
        got.append(f"late:{msg}")

    def adder(msg):
        got.append(f"adder:{msg}")
        bus.subscribe("t", late)

    bus.subscribe("t", adder)
    bus.publish("t", 1)
    bus.publish("t", 2)
    assert got == ["adder:1", "adder:2", "late:2"]


def test_unsubscribe_unknown_returns_false(bus):
    assert bus.unsubscribe("t", print) is False
    bus.subscribe("t", print)
    assert bus.unsubscribe("t", print) is True
    assert bus.topics() == []


def test_subscriptions_and_topics_listing(bus):
    def h1(msg):
        pass

    def h2(msg):
        pass

    bus.subscribe("data.quotes.*", h1)
    bus.subscribe("events.order", h2)
    bus.subscribe("data.trades", h2)
    assert bus.topics() == ["data.quotes.*", "data.trades", "events.order"]
    assert [(s.topic_pattern, s.handler) for s in bus.subscriptions()] == [
        ("data.quotes.*", h1),
        ("events.order", h2),
        ("data.trades", h2),
    ]
    assert [s.topic_pattern for s in bus.subscriptions("data.*")] == ["data.quotes.*", "data.trades"]


def test_publish_counts_and_handler_exception_propagates(bus):
    def bad(msg):
        raise RuntimeError("handler failed")

    bus.subscribe("t", bad)
    with pytest.raises(RuntimeError):
        bus.publish("t", 1)
    bus.publish("other", 2)
    assert bus.pub_count == 2


@pytest.mark.parametrize("kind", ["MessageBus", "StreamingBus"])
def test_a_raising_handler_does_not_keep_the_message_from_the_others(kind):
    """A strategy's bug must not starve the portfolio or the stream of an event (they run after it).
    The live node's StreamingBus inlines publish: it must behave the same, its tap included."""
    from node.live.streaming import StreamingBus

    tapped = []
    if kind == "MessageBus":
        bus = MessageBus("TRADER-001", TestClock(1_000))
    else:
        bus = StreamingBus("TRADER-001", TestClock(1_000))
        bus.set_tap(lambda topic, msg: tapped.append(msg), ("*",))
    got = []

    def bad(msg):
        raise RuntimeError("strategy bug")

    def worse(msg):
        raise ValueError("second bug")

    bus.subscribe("t", got.append, priority=1)
    bus.subscribe("t", bad)
    bus.subscribe("t", lambda m: got.append(("after bad", m)))
    bus.subscribe("t", worse)
    bus.subscribe("t", lambda m: got.append(("after worse", m)))
    with pytest.raises(RuntimeError, match="strategy bug") as info:
        bus.publish("t", 1)
    assert got == [1, ("after bad", 1), ("after worse", 1)]
    assert info.value.__notes__ == ["another handler of 't' failed too: ValueError: second bug"]
    assert tapped == ([] if kind == "MessageBus" else [1])


@pytest.mark.parametrize("topic", ["", "data.*", "a?b"])
def test_publishing_to_an_invalid_topic_is_refused(bus, topic):
    with pytest.raises(InvalidTopic):
        bus.publish(topic, 1)


def test_invalid_subscription_arguments(bus):
    with pytest.raises(InvalidTopic):
        bus.subscribe("", print)
    with pytest.raises(TypeError):
        bus.subscribe("t", "not callable")  # type: ignore[arg-type]


# -- point to point ------------------------------------------------------------------------------


def test_send_reaches_the_registered_handler(bus):
    got = []
    bus.register("RiskEngine.execute", got.append)
    bus.send("RiskEngine.execute", "cmd")
    assert got == ["cmd"] and bus.sent_count == 1
    assert bus.endpoints() == ["RiskEngine.execute"]


def test_send_to_unknown_endpoint_names_it(bus):
    bus.register("DataEngine.execute", print)
    with pytest.raises(UnknownEndpoint, match="'ExecEngine.execute'.*registered: DataEngine.execute"):
        bus.send("ExecEngine.execute", "cmd")
    assert bus.sent_count == 0


def test_register_and_deregister_errors(bus):
    def a(msg):
        pass

    def b(msg):
        pass

    bus.register("ep", a)
    bus.register("ep", a)  # same handler again: no-op
    with pytest.raises(EndpointAlreadyRegistered, match="deregister"):
        bus.register("ep", b)
    with pytest.raises(EndpointHandlerMismatch):
        bus.deregister("ep", b)
    bus.deregister("ep", a)
    assert bus.endpoints() == []
    with pytest.raises(UnknownEndpoint, match="'ep'"):
        bus.deregister("ep", a)
    with pytest.raises(UnknownEndpoint):
        bus.send("ep", 1)


# -- request / response --------------------------------------------------------------------------


def test_request_response_correlation(bus):
    requests: list[Request] = []
    bus.register("DataEngine.request", requests.append)
    responses: dict[str, list[Response]] = {"a": [], "b": []}
    cid_a = bus.request("DataEngine.request", "bars A", responses["a"].append)
    cid_b = bus.request("DataEngine.request", "bars B", responses["b"].append)
    assert (cid_a, cid_b) == ("MessageBus-1", "MessageBus-2")
    assert requests == [Request(cid_a, "bars A", 1_000), Request(cid_b, "bars B", 1_000)]
    assert bus.has_pending_request(cid_a)

    bus._clock.set_time(2_000)
    bus.respond(cid_b, "data B")  # out of order: each answer reaches its own requester
    bus.respond(cid_a, "data A")
    assert responses == {
        "a": [Response(cid_a, "data A", 2_000)],
        "b": [Response(cid_b, "data B", 2_000)],
    }
    assert (bus.req_count, bus.res_count) == (2, 2)
    assert not bus.has_pending_request(cid_a)


def test_synchronous_response_from_inside_the_handler(bus):
    bus.register("echo", lambda req: bus.respond(req.correlation_id, req.payload * 2))
    got: list[Response] = []
    cid = bus.request("echo", 21, got.append)
    assert got == [Response(cid, 42, 1_000)]


def test_duplicate_and_unknown_correlation_ids(bus):
    bus.register("ep", lambda req: None)
    got = []
    cid = bus.request("ep", None, got.append)
    bus.respond(cid, 1)
    with pytest.raises(DuplicateResponse, match="already been answered"):
        bus.respond(cid, 2)
    for unknown in ("MessageBus-99", "Other-1", "MessageBus-0", "MessageBus-01", "nonsense"):
        with pytest.raises(UnknownCorrelationId, match="never issued"):
            bus.respond(unknown, 3)
    assert len(got) == 1


def test_request_to_unknown_endpoint_allocates_nothing(bus):
    with pytest.raises(UnknownEndpoint):
        bus.request("missing", None, print)
    bus.register("ep", lambda req: None)
    assert bus.request("ep", None, print) == "MessageBus-1"


def test_request_whose_handler_raises_is_not_left_pending(bus):
    def boom(req):
        raise RuntimeError("handler failed")

    bus.register("ep", boom)
    with pytest.raises(RuntimeError):
        bus.request("ep", None, print)
    assert not bus.has_pending_request("MessageBus-1")


# -- isolation ----------------------------------------------------------------------------------


def test_two_buses_in_one_process_are_isolated():
    a = MessageBus("TRADER-A", TestClock())
    b = MessageBus("TRADER-B", TestClock())
    got_a: list[int] = []
    got_b: list[int] = []
    a.subscribe("*", got_a.append)
    b.subscribe("t", got_b.append)
    a.publish("t", 1)
    b.publish("t", 2)
    assert (got_a, got_b) == ([1], [2])

    a.register("ep", lambda req: None)
    with pytest.raises(UnknownEndpoint):
        b.send("ep", 1)
    b.register("ep", lambda req: None)
    # each bus counts its own correlation ids, so replays are reproducible per bus
    assert a.request("ep", None, print) == "MessageBus-1"
    assert b.request("ep", None, print) == "MessageBus-1"
    with pytest.raises(UnknownCorrelationId):
        MessageBus("TRADER-C", TestClock(), name="Other").respond("MessageBus-1", None)
    assert (a.pub_count, b.pub_count) == (1, 1)
