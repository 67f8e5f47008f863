"""The external streaming port (every selected event once, in order, as plain dicts) and host
commands (from other threads, executed on the kernel loop in arrival order)."""

from __future__ import annotations

import threading

import anyio
import pytest
from test_live_support import IID, INSTRUMENT, Recorder, replay_node, sandbox_config

from node.live.commands import StartStrategy, StopStrategy, StrategyCommand, parse_command
from node.live.errors import CommandRejected, InvalidCommand, StreamOverflow
from node.live.node import TradingNode
from node.live.states import NodeState
from node.live.streaming import StreamingBus, StreamingPort, to_stream_dict
from node.model.enums import TradingState
from node.persistence.generators import random_walk_quotes
from node.risk.engine import RiskConfig
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def mean_reversion(**kwargs) -> QuoteMeanReversion:
    config = {"window": 20, "entry_ticks": 2, **kwargs}
    return QuoteMeanReversion(QuoteMeanReversionConfig(instrument_id=IID, trade_size=100_000, **config))


# -- the stream -----------------------------------------------------------------------------------


class AsyncRecorder(Recorder):
    """A coroutine sink that yields to the loop on every message (a slow, async host)."""

    async def __call__(self, msg: dict) -> None:  # type: ignore[override]
        await anyio.sleep(0)
        super().__call__(msg)


@pytest.mark.anyio
@pytest.mark.parametrize("sink_kind", ["sync", "async"])
async def test_sink_receives_every_order_event_exactly_once_in_order(anyio_backend, sink_kind):
    sink = Recorder() if sink_kind == "sync" else AsyncRecorder()
    strategy = mean_reversion()
    node = replay_node(
        random_walk_quotes(INSTRUMENT, 1500, seed=7),
        [strategy],
        stream_sink=sink,
        risk=RiskConfig(max_submit_rate=1_000_000),
    )
    published: list = []  # what the kernel published, in order, seen by an ordinary subscriber
    node.kernel.msgbus.subscribe("events.order.*", published.append)
    node.build()
    with anyio.fail_after(30):
        await node.run_async()
    streamed = sink.on("events.order.")
    assert len(published) > 100  # the strategy traded
    assert [(m["type"], m["data"]) for m in streamed] == [(type(e).__name__, e.to_dict()) for e in published]
    assert all(m["topic"] == f"events.order.{strategy.id}" for m in streamed)
    seqs = [m["seq"] for m in sink.messages]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing lost, nothing twice, in order
    positions = sink.on("events.position.")
    assert {m["type"] for m in positions} >= {"PositionOpened", "PositionClosed"}
    assert sink.on("events.account.")  # balances changed as fills came in
    assert sink.node_states() == ["STARTING", "RUNNING", "STOPPING", "STOPPED"]
    assert node.stream.stats()["delivered"] == len(sink.messages)
    node.dispose()


def test_overlapping_patterns_deliver_once_with_the_exact_topic():
    bus = StreamingBus("T-001", clock=None)
    seen: list = []
    bus.set_tap(lambda topic, msg: seen.append((topic, msg)), ("events.*", "events.order.*"))
    bus.publish("events.order.S-1", "a")
    bus.publish("data.quotes.X", "b")
    bus.publish("events.account.A", "c")
    assert seen == [("events.order.S-1", "a"), ("events.account.A", "c")]


def test_stream_dicts_are_plain():
    from node.live.node import NodeStateChanged

    msg = to_stream_dict(3, "events.system.TradingNode", NodeStateChanged("N", NodeState.RUNNING, 5))
    assert msg == {
        "seq": 3,
        "topic": "events.system.TradingNode",
        "type": "NodeStateChanged",
        "data": {"node_id": "N", "state": "RUNNING", "ts_event": 5, "reason": ""},
    }


def test_a_full_stream_buffer_fails_loudly_instead_of_dropping():
    port = StreamingPort(("events.*",), capacity=2)
    port.sink = print
    port._on_publish("events.x", {"a": 1})
    port._on_publish("events.x", {"a": 2})
    with pytest.raises(StreamOverflow, match="sink does not keep up"):
        port._on_publish("events.x", {"a": 3})


# -- host commands --------------------------------------------------------------------------------


class Commanded(QuoteMeanReversion):
    """Records each custom command with the thread it ran on."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.commands: list[tuple[str, object, int]] = []

    def on_command(self, name, payload):
        self.commands.append((name, payload, threading.get_ident()))
        return len(self.commands)


async def result_of(future, timeout: float = 10.0):
    """Wait for a command's concurrent Future without blocking the node's loop."""
    return await anyio.to_thread.run_sync(future.result, timeout)


@pytest.mark.anyio
async def test_commands_from_other_threads_run_on_the_kernel_loop_in_arrival_order(anyio_backend):
    strategy = Commanded(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1))
    node = TradingNode(sandbox_config())
    node.add_strategy(strategy)
    node.build()
    n = 200
    futures: dict[str, list] = {"a": [], "b": []}

    def sender(tag: str) -> None:
        for i in range(n):
            futures[tag].append(node.inject(StrategyCommand(strategy.id, "count", (tag, i))))

    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(10):
            await node.wait_until_running()
        loop_thread = threading.get_ident()
        threads = [threading.Thread(target=sender, args=(tag,)) for tag in futures]
        for thread in threads:
            thread.start()
        with anyio.fail_after(10):
            for thread in threads:
                await anyio.to_thread.run_sync(thread.join)
            results = {tag: [await result_of(f) for f in fs] for tag, fs in futures.items()}
        await node.stop_async()
    payloads = [p for _, p, _ in strategy.commands]
    for tag in futures:  # each sender's commands ran in the order it sent them ...
        assert [i for t, i in payloads if t == tag] == list(range(n))
        assert results[tag] == sorted(results[tag])  # ... and each saw the ones before it
    assert sorted(results["a"] + results["b"]) == list(range(1, 2 * n + 1))  # each exactly once
    assert {thread for _, _, thread in strategy.commands} == {loop_thread}  # on the kernel loop
    node.dispose()


@pytest.mark.anyio
async def test_stop_start_and_custom_commands_in_sequence_from_a_thread(anyio_backend):
    strategy = Commanded(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1))
    node = TradingNode(sandbox_config())
    node.add_strategy(strategy)
    node.build()
    sequence = [
        StopStrategy(strategy.id),
        {"kind": "strategy", "strategy_id": strategy.id, "name": "while_stopped", "payload": 1},
        {"kind": "start_strategy", "strategy_id": strategy.id},
        StartStrategy(strategy.id),  # already running: harmless
        {"kind": "set_trading_state", "state": "reducing"},
        {"kind": "stop_strategy", "strategy_id": "nope"},
        {"kind": "stop_node", "reason": "host says so"},
    ]
    sent: list = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(10):
            await node.wait_until_running()
            thread = threading.Thread(target=lambda: sent.extend(node.inject(c) for c in sequence))
            thread.start()
            await anyio.to_thread.run_sync(thread.join)
            await node.wait_for_state(NodeState.STOPPED)
    assert [f.result(0) for f in sent[:5]] == ["STOPPED", 1, "RUNNING", "RUNNING", "REDUCING"]
    with pytest.raises(CommandRejected, match="no strategy 'nope'"):
        sent[5].result(0)
    assert sent[6].result(0) == "RUNNING"  # the state when the stop was requested
    assert node.stop_reason == "host says so"
    assert node.kernel.risk_engine.trading_state is TradingState.REDUCING
    with pytest.raises(CommandRejected, match="not running"):
        node.inject(StopStrategy(strategy.id)).result(0)
    node.dispose()


def test_malformed_commands_fail_in_the_caller():
    with pytest.raises(InvalidCommand, match="unknown command kind 'explode'"):
        parse_command({"kind": "explode"})
    with pytest.raises(InvalidCommand, match="unknown field"):
        parse_command({"kind": "stop_strategy", "strategy_id": "x", "force": True})
    with pytest.raises(InvalidCommand, match="missing"):
        parse_command({"kind": "stop_strategy"})
    with pytest.raises(InvalidCommand, match="must be one of"):
        parse_command("stop")
    assert parse_command({"kind": "start_strategy", "strategy_id": "S"}) == StartStrategy("S")


class SlowSink(Recorder):
    """An async sink that lets the loop run several times per message (a host slower than the node)."""

    async def __call__(self, msg: dict) -> None:  # type: ignore[override]
        for _ in range(20):
            await anyio.sleep(0)
        super().__call__(msg)


@pytest.mark.anyio
async def test_a_slow_sink_slows_the_node_down_instead_of_losing_messages(anyio_backend):
    from node.live.config import QueueConfig

    sink = SlowSink()
    node = replay_node(
        random_walk_quotes(INSTRUMENT, 1500, seed=7),
        [mean_reversion()],
        stream_sink=sink,
        risk=RiskConfig(max_submit_rate=1_000_000),
        queues=QueueConfig(stream_capacity=64),
        stream_patterns=(
            "events.*",
            "data.quotes.*",
        ),  # every quote too: far more than the sink keeps up with
    )
    node.build()
    with anyio.fail_after(60):
        await node.run_async()
    stats = node.stream.stats()
    assert 32 <= stats["high_water"] <= 64  # the buffer filled to the backpressure mark, never past capacity
    assert stats["delivered"] == stats["published"] == len(sink.messages) > 1500
    assert [m["seq"] for m in sink.messages] == list(range(1, len(sink.messages) + 1))
    node.dispose()


# -- record sinks (the fast path the orchestrator's child uses) -----------------------------------


class RecordTaker:
    """A RecordSink with ``take_records``: one tuple per message, handed over in runs.

    ``slow``: every run is followed by an awaitable (a sink whose buffer is always full), which
    the port must await before handing the next run. ``durable``: called with each run, to check
    that nothing arrives before it is committed.
    """

    def __init__(self, slow: bool = False, durable=None, room: int = 10**9) -> None:
        self.records: list[tuple] = []
        self.runs: list[int] = []
        self.room = room
        self.slow = slow
        self.durable = durable

    def stream_record(self, seq, topic, type_name, data):
        return (seq, topic, type_name, data)

    def record_room(self) -> int:
        return self.room

    def take_records(self, records: list):
        if self.durable is not None:
            self.durable(records)
        self.records += records
        self.runs.append(len(records))
        return anyio.sleep(0) if self.slow else None

    def __call__(self, record):  # never used when take_records exists
        raise AssertionError("the port called the sink per record although it has take_records")


@pytest.mark.anyio
@pytest.mark.parametrize("slow, room", [(False, 10**9), (True, 10**9), (True, 3)])
async def test_a_record_sink_with_take_records_gets_every_record_once_in_order(anyio_backend, slow, room):
    from node.live.config import QueueConfig
    from node.live.streaming import TAKE_MAX

    sink = RecordTaker(slow=slow, room=room)
    node = replay_node(
        random_walk_quotes(INSTRUMENT, 1500, seed=7),
        [mean_reversion()],
        stream_sink=sink,
        risk=RiskConfig(max_submit_rate=1_000_000),
        queues=QueueConfig(stream_capacity=4096),
        stream_patterns=("events.*", "data.quotes.*"),  # every quote too: runs of many records
    )
    node.build()
    with anyio.fail_after(60):
        await node.run_async()
    stats = node.stream.stats()
    assert [r[0] for r in sink.records] == list(range(1, stats["published"] + 1))
    assert stats["delivered"] == stats["published"] == len(sink.records) > 1500
    assert stats["buffered"] == 0 and node.stream.sink_errors == 0
    assert max(sink.runs) <= min(TAKE_MAX, room) and min(sink.runs) >= 1
    assert max(sink.runs) > 1  # records were handed in runs, not one by one
    assert sum(1 for r in sink.records if r[2] == "QuoteTick") == 1500
    node.dispose()


def test_the_port_buffers_what_the_record_sink_builds_at_publish():
    port = StreamingPort(("events.*",), capacity=4)
    sink = RecordTaker()
    port.sink = sink
    port._on_publish("events.x", {"a": 1})
    port._on_publish("events.y", "text")
    # The record's fields are those of the ordinary sink's dict, built at publish.
    assert list(port._items) == [
        (d["seq"], d["topic"], d["type"], d["data"])
        for d in (to_stream_dict(1, "events.x", {"a": 1}), to_stream_dict(2, "events.y", "text"))
    ]
    assert port.stats()["buffered"] == 2 and port.stats()["high_water"] == 2
    port.close()
    port._on_publish("events.z", {})  # closed: nothing more is buffered or numbered
    assert port.seq == 2 and len(port._items) == 2


@pytest.mark.anyio
async def test_a_record_sink_gets_nothing_before_it_is_durable(anyio_backend, tmp_path):
    """The child's path (take_records) with a state store: every run was committed before it."""
    from node.live.config import StateConfig

    node = None
    checked: list[int] = []

    def durable(records: list) -> None:
        last = records[-1][0]
        stored = [e.seq for e in node.state_store.outbox_after(records[0][0] - 1)]
        assert stored[: len(records)] == [r[0] for r in records], f"seq {last} not durable yet"
        checked.extend(r[0] for r in records)

    sink = RecordTaker(durable=durable)
    state = StateConfig(tmp_path / "node.sqlite", synchronous="normal")
    node = replay_node(
        random_walk_quotes(INSTRUMENT, 600, seed=3),
        [mean_reversion()],
        risk=RiskConfig(max_submit_rate=1_000_000),
        state=state,
        stream_sink=sink,
    )
    node.build()
    with anyio.fail_after(60):
        await node.run_async()
    assert node.stream.sink_errors == 0
    assert checked == list(range(1, node.stream.seq + 1)) and len(checked) > 50
    node.dispose()


# -- a node's start: one commit after it, not one per step ------------------------------------------


def held_port(capacity: int) -> tuple[StreamingPort, RecordTaker, list[int]]:
    """A port whose commits are recorded (the seq each one covered up to), its commits held."""
    port = StreamingPort(("events.*",), capacity=capacity)
    port.sink = sink = RecordTaker()
    commits: list[int] = []

    async def make_durable() -> None:
        commits.append(port.seq)

    port.recorder = lambda *record: None
    port.make_durable = make_durable
    port.hold_commits()
    return port, sink, commits


@pytest.mark.anyio
async def test_a_held_port_commits_and_hands_over_nothing_until_released_then_all_in_one_commit(
    anyio_backend,
):
    port, sink, commits = held_port(capacity=8)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(port.run)
            for i in range(3):  # published at three points of a start, the stream task waiting between
                port._on_publish("events.x", {"i": i})
                await anyio.wait_all_tasks_blocked()
            assert commits == [] and sink.records == []
            port.release_commits()
            await anyio.wait_all_tasks_blocked()
            assert commits == [3]
            assert [r[0] for r in sink.records] == [1, 2, 3]
            port.close()


@pytest.mark.anyio
async def test_a_held_port_still_commits_once_its_buffer_is_congested(anyio_backend):
    # Backpressure must never wait on the hold: at the high-water mark (half of 8) it commits.
    port, sink, commits = held_port(capacity=8)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(port.run)
            for i in range(3):
                port._on_publish("events.x", {"i": i})
            await anyio.wait_all_tasks_blocked()
            assert commits == []
            port._on_publish("events.x", {"i": 3})
            await anyio.wait_all_tasks_blocked()
            assert commits == [4] and len(sink.records) == 4 and not port.congested
            port._on_publish("events.x", {"i": 4})  # held again below the mark: flush releases it
            await port.flush()
            assert commits == [4, 5] and len(sink.records) == 5
            port.close()


@pytest.mark.anyio
async def test_a_durable_node_commits_nothing_while_it_starts_and_everything_after(anyio_backend, tmp_path):
    from node.live.config import StateConfig

    sink = RecordTaker()
    node = replay_node(
        random_walk_quotes(INSTRUMENT, 300, seed=3),
        [mean_reversion()],
        state=StateConfig(tmp_path / "node.sqlite", synchronous="normal"),
        stream_sink=sink,
    )
    node.build()
    commit = node.stream.make_durable
    commits_begun_in: list[NodeState] = []

    async def counted_commit() -> None:
        commits_begun_in.append(node.state)
        await commit()

    node.stream.make_durable = counted_commit
    with anyio.fail_after(60):
        await node.run_async()
    assert commits_begun_in and NodeState.STARTING not in commits_begun_in
    # Everything the start published was committed after it and handed over, in order.
    assert [r[0] for r in sink.records] == list(range(1, node.stream.seq + 1))
    started = [r for r in sink.records if r[2] == "NodeStateChanged"]
    assert [r[3]["state"] for r in started][:2] == ["STARTING", "RUNNING"]
    node.dispose()
