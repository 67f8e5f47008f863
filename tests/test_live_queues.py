"""The engine queues: overflow policies, the sentinel, per-queue draining order, execution
before market data, and what happens when a never-drop queue overflows in a running node."""

from __future__ import annotations

import anyio
import pytest
from test_live_support import IID, INSTRUMENT, replay_node, sandbox_config

from node.data.client import DataRequest, DataResponse
from node.data.messages import DataKind
from node.live.bridge import KernelBridge
from node.live.config import ClientSpec, QueueConfig
from node.live.errors import QueueClosed, QueueFull
from node.live.node import TradingNode
from node.live.queues import KERNEL_QUEUE_NAMES, EndOfQueue, KernelQueue, KernelQueues, OverflowPolicy
from node.live.random_walk import RandomWalkConfig
from node.live.sandbox import SandboxExecutionClient, sandbox_exec_factory
from node.live.states import NodeState
from node.model.enums import OrderSide, TradingState
from node.persistence.generators import random_walk_quotes
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig
from node.trading.strategy import Strategy


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


# -- one queue ------------------------------------------------------------------------------------


def test_block_policy_never_drops_a_synchronous_put_fails_loudly():
    queue = KernelQueue("exec_events", 2)
    queue.put_nowait(1)
    queue.put_nowait(2)
    with pytest.raises(QueueFull, match="'exec_events' is full .* never drops"):
        queue.put_nowait(3)
    assert [queue.get_nowait(), queue.get_nowait()] == [1, 2]
    assert queue.dropped == 0


def test_drop_oldest_keeps_the_freshest_and_counts():
    queue = KernelQueue("data", 3, OverflowPolicy.DROP_OLDEST)
    for i in range(5):
        queue.put_nowait(i)
    assert [queue.get_nowait() for _ in range(3)] == [2, 3, 4]
    assert queue.dropped == 2 and queue.put_count == 5  # all accepted; two evicted


def test_drop_newest_keeps_the_oldest_and_counts():
    queue = KernelQueue("data", 3, OverflowPolicy.DROP_NEWEST)
    for i in range(5):
        queue.put_nowait(i)
    assert [queue.get_nowait() for _ in range(3)] == [0, 1, 2]
    assert queue.dropped == 2


@pytest.mark.anyio
async def test_close_is_a_sentinel_after_the_remaining_items():
    queue = KernelQueue("q", 10)
    queue.put_nowait("a")
    queue.put_nowait("b")
    queue.close()
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    with pytest.raises(EndOfQueue):
        await queue.get()
    with pytest.raises(QueueClosed):
        queue.put_nowait("late")


@pytest.mark.anyio
async def test_async_put_waits_for_room_backpressure():
    queue = KernelQueue("exec_events", 1)
    got: list = []

    async def consumer() -> None:
        while True:
            try:
                got.append(await queue.get())
            except EndOfQueue:
                return

    async with anyio.create_task_group() as tg:
        for i in range(50):  # the producer outruns nothing: it waits each time the queue is full
            await queue.put(i)
            if i == 0:
                tg.start_soon(consumer)
        queue.close()  # the consumer still gets what is queued, then the sentinel
    assert got == list(range(50))
    assert queue.high_water == 1 and queue.dropped == 0


# -- the eight queues drained in parallel ---------------------------------------------------------


class _FakeKernel:
    """Just enough kernel for a KernelBridge whose handlers the test replaces."""

    def __init__(self) -> None:
        from node.common.clock import LiveClock
        from node.system.kernel import Environment, Kernel, KernelConfig

        self.kernel = Kernel(Environment.SANDBOX, LiveClock(), KernelConfig(log_level="OFF"))


@pytest.mark.anyio
async def test_each_queue_is_drained_in_the_order_items_were_put(anyio_backend):
    kernel = _FakeKernel().kernel
    queues = KernelQueues(10_000, 10_000)
    bridge = KernelBridge(kernel, queues, on_fatal=pytest.fail, data_clients=[])
    seen: dict[str, list] = {name: [] for name in KERNEL_QUEUE_NAMES}
    for queue in queues:
        bridge._handlers[queue] = seen[queue.name].append
    bridge._settle_order = ()  # plain per-queue draining only
    n = 300
    async with anyio.create_task_group() as tg:
        for queue in queues:
            tg.start_soon(bridge.drain, queue)
        for i in range(n):  # interleaved across queues, some while the tasks are draining
            for queue in queues:
                queue.put_nowait((queue.name, i))
            if i % 37 == 0:
                await anyio.sleep(0)
        with anyio.fail_after(10):
            await queues.wait_idle()
        queues.close()  # the sentinel ends every drain task
    for name in KERNEL_QUEUE_NAMES:
        assert seen[name] == [(name, i) for i in range(n)], name
    assert all(q.processed == n for q in queues)


class Burst(Strategy):
    """Submits a burst of market orders on its first quote; records its order events."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.sent: list = []
        self.events: list = []

    def on_start(self) -> None:
        self.subscribe_quote_ticks(INSTRUMENT.id)

    def on_quote_tick(self, tick) -> None:
        if self.sent:
            return
        for _ in range(self.count):
            order = self.order_factory.market(INSTRUMENT.id, OrderSide.BUY, INSTRUMENT.make_qty(1))
            self.sent.append(order.client_order_id)
            self.submit_order(order)

    def on_order_event(self, event) -> None:
        self.events.append((type(event).__name__, event.client_order_id))


@pytest.mark.anyio
async def test_commands_and_events_flow_through_their_queues_in_order(anyio_backend):
    from node.risk.engine import RiskConfig

    strategy = Burst(200)
    node = replay_node(
        random_walk_quotes(INSTRUMENT, 3, seed=1), [strategy], risk=RiskConfig(max_submit_rate=10_000)
    )
    node.build()
    with anyio.fail_after(20):
        await node.run_async()
    filled = [cid for kind, cid in strategy.events if kind == "OrderFilled"]
    assert filled == strategy.sent  # fills come back in submission order, each once
    for cid in strategy.sent:
        kinds = [kind for kind, c in strategy.events if c == cid]
        assert kinds == ["OrderSubmitted", "OrderAccepted", "OrderFilled"]
    stats = node.stats()["queues"]
    assert stats["risk_commands"]["processed"] >= 200 and stats["exec_commands"]["processed"] >= 200
    node.dispose()


# -- execution before market data -----------------------------------------------------------------


class Watcher(QuoteMeanReversion):
    def __init__(self, config) -> None:
        super().__init__(config)
        self.seen_positions: list[int] = []

    def on_quote_tick(self, tick) -> None:
        self.seen_positions.append(len(self.cache.positions_open()))
        super().on_quote_tick(tick)


@pytest.mark.anyio
async def test_queued_execution_work_is_applied_before_the_data_engine_sees_a_quote(anyio_backend):
    watcher = Watcher(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1))
    node = TradingNode(sandbox_config())
    node.add_strategy(watcher)
    node.build()
    first, second = random_walk_quotes(INSTRUMENT, 2, seed=1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(10):
            await node.wait_until_running()
            node.queues.data.put_nowait(first)
            await node.wait_idle()
        order = watcher.order_factory.market(INSTRUMENT.id, OrderSide.BUY, INSTRUMENT.make_qty(1))
        watcher.submit_order(order)  # queued in risk_commands; nothing has run yet
        assert len(node.queues.risk_commands) == 1
        node.bridge.handle(node.queues.data, second)  # the data task's step for the next quote
        assert watcher.seen_positions == [0, 1]  # the order went through and filled first
        await node.stop_async()
    node.dispose()


# -- overflow in a running node -------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_execution_event_that_cannot_be_queued_stops_the_node_loudly(anyio_backend):
    # One market order makes the venue emit three events synchronously (balances, accepted,
    # filled); with room for two, the third cannot be queued and must not be dropped.
    quotes = random_walk_quotes(INSTRUMENT, 5, seed=1)
    node = replay_node(quotes, [Burst(1)], queues=QueueConfig(capacity=2))
    node.build()
    with anyio.fail_after(10), pytest.raises(QueueFull, match="'exec_events' is full"):
        await node.run_async()
    assert node.state is NodeState.STOPPED
    assert "fatal error: QueueFull" in node.stop_reason
    node.dispose()


@pytest.mark.anyio
async def test_market_data_overflow_is_counted_in_node_stats():
    node = TradingNode(
        sandbox_config(queues=QueueConfig(data_capacity=10, data_overflow=OverflowPolicy.DROP_OLDEST))
    )
    node.build()
    quotes = random_walk_quotes(INSTRUMENT, 25, seed=2)
    for quote in quotes:  # before the loop runs: nothing drains yet
        node.queues.data.put_nowait(quote)
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(10):
            await node.wait_until_running()
            await node.wait_idle()
        await node.stop_async()
    data = node.stats()["queues"]["data"]
    assert data["dropped"] == 15 and data["processed"] == 10 and data["policy"] == "drop_oldest"
    assert node.kernel.cache.quote_tick(INSTRUMENT.id) is quotes[-1]  # the freshest survived
    node.dispose()


# -- requests, responses and risk events ----------------------------------------------------------


@pytest.mark.anyio
async def test_data_request_and_response_go_through_their_queues(anyio_backend):
    config = sandbox_config(data_clients=[ClientSpec("random_walk", "RW", RandomWalkConfig(rate=200.0))])
    node = TradingNode(config)
    node.add_strategy(QuoteMeanReversion(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1)))
    node.build()
    answers: list = []
    answered = anyio.Event()

    def callback(response) -> None:
        answers.append(response.payload)
        answered.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(10):
            await node.wait_until_running()
            while node.stats()["queues"]["data"]["processed"] < 5:
                await node.queues.wait_progress()
            node.kernel.msgbus.request(
                "DataEngine.request", DataRequest(DataKind.QUOTES, INSTRUMENT.id, limit=3), callback
            )
            node.kernel.msgbus.request("DataEngine.request", "not a request", callback)
            await answered.wait()
            while len(answers) < 2:
                await node.queues.wait_progress()
            node.queues.risk_events.put_nowait(TradingState.HALTED)
            await node.wait_idle()
        assert node.kernel.risk_engine.trading_state is TradingState.HALTED
        await node.stop_async()
    history, refused = answers
    assert isinstance(history, DataResponse) and history.client_id == "RW" and len(history.data) == 3
    assert refused.error and "expects a DataRequest" in refused.error
    stats = node.stats()["queues"]
    assert stats["data_requests"]["processed"] == 2 and stats["data_responses"]["processed"] == 2
    node.dispose()


def test_sandbox_exec_factory_builds_a_venue_with_the_node_instruments():
    node = TradingNode(sandbox_config())
    node.build()
    client = node.exec_clients[0]
    assert isinstance(client, SandboxExecutionClient)
    assert client.exchange.instrument(INSTRUMENT.id) is INSTRUMENT
    assert node.bridge.market_data_hooks == [client.market_data_hook()]
    assert sandbox_exec_factory  # the factory registered as "sandbox"
    node.dispose()
