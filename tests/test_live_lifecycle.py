"""TradingNode lifecycle: the transition table, the guards, run/run_async on both backends,
start-up steps that fail or time out, stop/dispose, and the liveness tick."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
from test_live_support import (
    FAST,
    IID,
    INSTRUMENT,
    HangingDataClient,
    Recorder,
    SilentExecutionClient,
    replay_node,
    sandbox_config,
)

from node.live.config import ClientSpec, NodeTimeouts, TradingNodeConfig
from node.live.errors import (
    NodeAlreadyBuilt,
    NodeDisposed,
    NodeNotBuilt,
    NodeStateError,
    StartupFailed,
    StartupTimeout,
    UnknownClientFactory,
)
from node.live.node import TradingNode
from node.live.states import TRANSITIONS, NodeFSM, NodeState, NodeTrigger
from node.model.identifiers import AccountId, Venue
from node.persistence.generators import random_walk_quotes
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig
from node.system.kernel import Environment


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def mean_reversion(**kwargs) -> QuoteMeanReversion:
    return QuoteMeanReversion(QuoteMeanReversionConfig(instrument_id=IID, trade_size=100_000, **kwargs))


# -- the table ------------------------------------------------------------------------------------

EXPECTED = {
    (NodeState.CREATED, NodeTrigger.BUILD): NodeState.BUILT,
    (NodeState.CREATED, NodeTrigger.DISPOSE): NodeState.DISPOSED,
    (NodeState.BUILT, NodeTrigger.START): NodeState.STARTING,
    (NodeState.BUILT, NodeTrigger.DISPOSE): NodeState.DISPOSED,
    (NodeState.STARTING, NodeTrigger.START_COMPLETED): NodeState.RUNNING,
    (NodeState.STARTING, NodeTrigger.STOP): NodeState.STOPPING,
    (NodeState.RUNNING, NodeTrigger.STOP): NodeState.STOPPING,
    (NodeState.STOPPING, NodeTrigger.STOP_COMPLETED): NodeState.STOPPED,
    (NodeState.STOPPED, NodeTrigger.DISPOSE): NodeState.DISPOSED,
}


def test_transition_table_is_exactly_the_documented_one():
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize("state", list(NodeState))
@pytest.mark.parametrize("trigger", list(NodeTrigger))
def test_every_state_trigger_pair(state, trigger):
    fsm = NodeFSM("node")
    fsm.state = state
    if (state, trigger) in EXPECTED:
        assert fsm.trigger(trigger) is EXPECTED[(state, trigger)]
        return
    with pytest.raises(NodeStateError) as info:
        fsm.trigger(trigger)
    assert fsm.state is state  # a refused trigger changes nothing
    assert "allowed now" in str(info.value)
    if state is NodeState.DISPOSED:
        assert isinstance(info.value, NodeDisposed)
    elif trigger is NodeTrigger.BUILD:
        assert isinstance(info.value, NodeAlreadyBuilt)
    elif trigger is NodeTrigger.START and state is NodeState.CREATED:
        assert isinstance(info.value, NodeNotBuilt)


# -- guards on the node ---------------------------------------------------------------------------


def test_build_twice_raises_and_state_is_readable():
    node = TradingNode(sandbox_config())
    assert node.state is NodeState.CREATED
    node.build()
    assert node.state is NodeState.BUILT
    with pytest.raises(NodeAlreadyBuilt, match="already built"):
        node.build()
    assert node.state is NodeState.BUILT
    node.dispose()
    assert node.state is NodeState.DISPOSED
    with pytest.raises(NodeDisposed):
        node.build()


@pytest.mark.anyio
async def test_run_async_before_build_raises():
    node = TradingNode(sandbox_config())
    with pytest.raises(NodeNotBuilt, match="call build"):
        await node.run_async()
    assert node.state is NodeState.CREATED


def test_run_before_build_raises():
    with pytest.raises(NodeNotBuilt):
        TradingNode(sandbox_config()).run()


def test_stop_before_run_raises_and_dispose_of_a_fresh_node_is_fine():
    node = TradingNode(sandbox_config())
    with pytest.raises(NodeStateError, match="nothing to stop"):
        node.stop()
    node.dispose()
    node.dispose()  # idempotent
    assert node.state is NodeState.DISPOSED


def test_factories_are_per_node_and_registered_before_build():
    a, b = TradingNode(sandbox_config()), TradingNode(sandbox_config())
    a.register_data_client_factory("mine", lambda name, config, context: HangingDataClient(name))
    assert "mine" in a._data_factories and "mine" not in b._data_factories
    a.build()
    with pytest.raises(NodeStateError, match="before build"):
        a.register_data_client_factory("late", lambda *args: None)
    a.dispose()
    b.dispose()


@pytest.mark.parametrize("step", ["build", "build_components"])
def test_unknown_factory_fails_build_and_disposes_the_node(step):
    node = TradingNode(sandbox_config(data_clients=[ClientSpec("nope", "X")]))
    with pytest.raises(UnknownClientFactory, match="no data client factory named 'nope'"):
        getattr(node, step)()
    assert node.state is NodeState.DISPOSED


def test_components_built_ahead_are_kept_by_build_and_once_only():
    node = TradingNode(sandbox_config())
    node.build_components()
    clients = [*node.data_clients, *node.exec_clients]
    assert clients and node.state is NodeState.CREATED  # built ahead, not yet BUILT
    with pytest.raises(NodeStateError, match="built already"):
        node.build_components()
    node.build()
    assert node.state is NodeState.BUILT
    assert [*node.data_clients, *node.exec_clients] == clients  # build() made no second set
    with pytest.raises(NodeAlreadyBuilt):
        node.build_components()
    node.dispose()


def test_backtest_environment_is_refused():
    with pytest.raises(ValueError, match="sandbox' or 'live'"):
        TradingNodeConfig(environment=Environment.BACKTEST)


# -- running --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_run_async_runs_and_stops_on_the_host_loop(anyio_backend):
    sink = Recorder()
    node = TradingNode(sandbox_config(), stream_sink=sink)
    node.add_strategy(mean_reversion())
    node.build()
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(10):
            await node.wait_until_running()
        assert node.is_running
        assert node.backend == anyio_backend
        assert node.kernel.strategies[0].is_running
        account = node.kernel.cache.account(AccountId("SIM-001"))
        assert account is not None  # the portfolio step waited for it
        with anyio.fail_after(10):
            await node.stop_async()
    assert node.state is NodeState.STOPPED
    assert node.failure is None and node.shutdown_problems == []
    await node.dispose_async()
    assert node.state is NodeState.DISPOSED
    assert sink.node_states() == ["STARTING", "RUNNING", "STOPPING", "STOPPED"]
    assert "owned by the host" in node.loop_report()


def test_run_owns_its_loop_and_stops_after_duration():
    node = TradingNode(sandbox_config(backend="trio"))
    node.add_strategy(mean_reversion())
    node.build()
    node.run(duration=0.2)
    assert node.state is NodeState.STOPPED
    assert node.stop_reason == "duration of 0.2 s reached"
    node.dispose()
    assert "trio, owned by the node): finished and closed" in node.loop_report()


def test_dispose_from_another_thread_stops_the_running_node_first():
    sink = Recorder()
    node = TradingNode(sandbox_config(), stream_sink=sink)
    node.add_strategy(mean_reversion())
    node.build()
    errors: list = []
    runner = threading.Thread(target=lambda: _capture(node.run, errors))
    runner.start()
    assert sink.wait_until(lambda r: "RUNNING" in r.node_states())
    node.dispose()  # stop (through the command inbox), wait, then dispose
    runner.join(10)
    assert errors == []
    assert node.state is NodeState.DISPOSED
    assert node.stop_reason == "stop() from another thread"


def _capture(fn, errors):
    try:
        fn()
    except BaseException as exc:  # pragma: no cover - reported by the assertion
        errors.append(exc)


# -- start-up steps -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_connection_timeout_ends_the_node_with_a_specific_error(anyio_backend):
    sink = Recorder()
    timeouts = NodeTimeouts(connection=0.2, disconnection=1, post_stop=1)
    node = TradingNode(
        sandbox_config(data_clients=[ClientSpec("hang", "HANGER")], timeouts=timeouts), stream_sink=sink
    )
    node.register_data_client_factory("hang", lambda name, config, context: HangingDataClient(name))
    node.add_strategy(mean_reversion())
    node.build()
    with anyio.fail_after(10), pytest.raises(StartupTimeout) as info:
        await node.run_async()
    assert info.value.step == "connection"
    assert "HANGER" in str(info.value) and "timeouts.connection" in str(info.value)
    assert node.state is NodeState.STOPPED
    assert "RUNNING" not in sink.node_states()
    assert sink.node_states() == ["STARTING", "STOPPING", "STOPPED"]
    assert node.kernel.strategies[0].state.name == "READY"  # never started
    node.dispose()


@pytest.mark.anyio
async def test_portfolio_timeout_when_a_venue_never_reports_its_account():
    timeouts = NodeTimeouts(portfolio=0.2, disconnection=1, post_stop=1)
    config = sandbox_config(timeouts=timeouts)
    config = TradingNodeConfig(**{**config.__dict__, "exec_clients": (ClientSpec("silent", "QUIET"),)})
    node = TradingNode(config)
    node.register_exec_client_factory(
        "silent", lambda name, c, ctx: SilentExecutionClient(name, Venue("SIM"), AccountId("SIM-001"))
    )
    node.build()
    with anyio.fail_after(10), pytest.raises(StartupTimeout, match="account SIM-001 of QUIET") as info:
        await node.run_async()
    assert info.value.step == "portfolio"
    assert node.state is NodeState.STOPPED


class BrokenStrategy(QuoteMeanReversion):
    def on_start(self) -> None:
        raise RuntimeError("no data")


@pytest.mark.anyio
async def test_strategy_failing_to_start_ends_the_node(anyio_backend):
    node = TradingNode(sandbox_config())
    node.add_strategy(BrokenStrategy(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1)))
    node.build()
    with (
        anyio.fail_after(10),
        pytest.raises(StartupFailed, match="BrokenStrategy-000 failed to start") as info,
    ):
        await node.run_async()
    assert info.value.step == "strategies"
    assert node.state is NodeState.STOPPED


@pytest.mark.anyio
async def test_stop_during_start_up_cancels_it_without_error(anyio_backend):
    config = sandbox_config(data_clients=[ClientSpec("hang", "HANGER")], timeouts=NodeTimeouts(connection=30))
    node = TradingNode(config)
    node.register_data_client_factory("hang", lambda name, c, ctx: HangingDataClient(name))
    node.build()
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(5):
            await node.wait_for_state(NodeState.STARTING)
        node.stop()
        with anyio.fail_after(5):
            await node.wait_for_state(NodeState.STOPPED)
    assert node.failure is None


# -- liveness -------------------------------------------------------------------------------------


class Sleeper(QuoteMeanReversion):
    def on_command(self, name, payload):
        time.sleep(payload)  # a strategy callback that blocks the loop
        return name


@pytest.mark.anyio
async def test_liveness_ticks_come_from_the_kernel_loop_and_stop_while_it_is_blocked(anyio_backend):
    node = TradingNode(sandbox_config(liveness_interval_s=0.02))
    node.add_strategy(Sleeper(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1)))
    node.build()
    ticks: list[tuple[int, int]] = []
    waiters: list[tuple[int, anyio.Event]] = []

    def on_tick(count: int, ts: int) -> None:
        ticks.append((threading.get_ident(), ts))
        for target, event in waiters:
            if count >= target:
                event.set()

    async def ticks_later(n: int) -> None:
        event = anyio.Event()
        waiters.append((node.liveness.count + n, event))
        await event.wait()

    node.liveness.add_listener(on_tick)
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(10):
            await node.wait_until_running()
            await ticks_later(3)
            future = node.inject(
                {"kind": "strategy", "strategy_id": "Sleeper-000", "name": "block", "payload": 0.3}
            )
            await ticks_later(3)  # the blocking command has run in between
            await node.stop_async()
    assert future.result(0) == "block"
    gaps = [(b - a) / 1e9 for (_, a), (_, b) in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) >= 0.29  # no tick while the callback blocked the loop
    assert {thread for thread, _ in ticks} == {threading.get_ident()}  # ticks run on the loop's thread
    assert node.liveness.last_tick_ns > 0


@pytest.mark.anyio
async def test_two_nodes_on_one_loop_share_nothing(anyio_backend):
    a_quotes = random_walk_quotes(INSTRUMENT, 300, seed=1)
    b_quotes = random_walk_quotes(INSTRUMENT, 200, seed=2)
    a = replay_node(a_quotes, [mean_reversion(window=5)], trader_id="A-001")
    b = replay_node(b_quotes, [mean_reversion(window=5)], trader_id="B-001")
    a.build()
    b.build()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.run_async)
            tg.start_soon(b.run_async)
    assert a.state is b.state is NodeState.STOPPED
    assert a.stats()["queues"]["data"]["processed"] == 300
    assert b.stats()["queues"]["data"]["processed"] == 200
    assert a.kernel.cache.quote_tick(INSTRUMENT.id).bid_price == a_quotes[-1].bid_price
    assert b.kernel.cache.quote_tick(INSTRUMENT.id).bid_price == b_quotes[-1].bid_price
    assert {str(o.trader_id) for o in a.kernel.cache.orders()} <= {"A-001"}
    assert {str(o.trader_id) for o in b.kernel.cache.orders()} <= {"B-001"}
    a.dispose()
    b.dispose()


def test_fast_timeouts_are_valid():
    assert FAST.connection == 5
    with pytest.raises(ValueError, match="node.timeouts.connection"):
        NodeTimeouts(connection=0)


@pytest.mark.anyio
async def test_host_cancelling_run_async_still_stops_the_node_cleanly(anyio_backend):
    sink = Recorder()
    node = TradingNode(sandbox_config(), stream_sink=sink)
    node.add_strategy(mean_reversion())
    node.build()
    with anyio.fail_after(10):  # the stop must not sit out its timeouts waiting for dead tasks
        with anyio.CancelScope() as host:
            async with anyio.create_task_group() as tg:
                tg.start_soon(node.run_async)
                await node.wait_until_running()
                host.cancel()
    assert node.state is NodeState.STOPPED
    assert node.kernel.strategies[0].state.name == "STOPPED"
    assert node.stats()["queues"]["data_commands"]["size"] == 0  # the unsubscriptions were applied
    await node.dispose_async()
    assert node.state is NodeState.DISPOSED


class BadSubscriber(QuoteMeanReversion):
    def on_start(self) -> None:
        from node.model.data import BarType

        self.subscribe_bars(BarType.from_str("GBP/USD.SIM-1-SECOND-MID-INTERNAL"))  # not in the cache


@pytest.mark.anyio
async def test_a_subscription_refused_at_start_up_ends_the_node(anyio_backend):
    node = TradingNode(sandbox_config())
    node.add_strategy(BadSubscriber(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1)))
    node.build()
    with (
        anyio.fail_after(10),
        pytest.raises(StartupFailed, match="queue 'data_commands'.*GBP/USD.SIM") as info,
    ):
        await node.run_async()
    assert info.value.step == "strategies"
    assert node.state is NodeState.STOPPED
