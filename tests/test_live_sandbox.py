"""The sandbox clients (random walk, replay) and the node's TOML config."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from test_live_support import IID, INSTRUMENT, replay_node, sandbox_config

from node.backtest.config import ConfigError
from node.live.config import ClientSpec, load_node_config
from node.live.node import TradingNode
from node.live.queues import OverflowPolicy
from node.live.random_walk import RandomWalkConfig
from node.live.replay import ReplayConfig, ReplayDataClient, restamped
from node.model.data import QuoteTick
from node.persistence.generators import random_walk_quotes
from node.persistence.loaders import write_quotes_csv
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def listener() -> QuoteMeanReversion:
    return QuoteMeanReversion(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1, window=1000))


async def collect_quotes(node: TradingNode, count: int) -> list[QuoteTick]:
    quotes: list[QuoteTick] = []
    enough = anyio.Event()

    def on_quote(tick) -> None:
        quotes.append(tick)
        if len(quotes) >= count:
            enough.set()

    node.kernel.msgbus.subscribe(f"data.quotes.{IID}", on_quote)
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.run_async)
        with anyio.fail_after(20):
            await enough.wait()
        await node.stop_async()
    node.dispose()
    return quotes


@pytest.mark.anyio
async def test_random_walk_is_seeded_live_stamped_and_paced(anyio_backend):
    runs = []
    for _ in range(2):
        config = sandbox_config(
            data_clients=[ClientSpec("random_walk", "RW", RandomWalkConfig(rate=100.0, seed=5))]
        )
        node = TradingNode(config)
        node.add_strategy(listener())
        node.build()
        started = time.time_ns()
        quotes = await collect_quotes(node, 20)
        runs.append(quotes)
        assert all(started <= q.ts_init == q.ts_event <= time.time_ns() for q in quotes)  # live clock
        span = (quotes[19].ts_init - quotes[0].ts_init) / 1e9
        assert 0.12 < span < 2.0  # 19 steps at 100/s (loose: a busy machine may skip steps)
        assert all(q.ask_price.raw - q.bid_price.raw == 20 for q in quotes)
    prices = [[(q.bid_price, q.ask_price) for q in run] for run in runs]
    assert prices[0][:10] == prices[1][:10]  # the same seed walks the same path


@pytest.mark.anyio
async def test_replay_at_a_speed_multiple_keeps_the_recorded_gaps_scaled(anyio_backend):
    recorded = random_walk_quotes(INSTRUMENT, 11, seed=3, interval_ns=100_000_000)  # 10 gaps of 0.1 s
    node = replay_node(recorded, [listener()], speed=4.0)  # 1 s of data in 0.25 s
    node.build()
    quotes = await collect_quotes(node, 11)
    assert [q.bid_price for q in quotes] == [q.bid_price for q in recorded]
    span = (quotes[-1].ts_init - quotes[0].ts_init) / 1e9
    assert 0.2 <= span < 1.0
    assert quotes[0].ts_init > recorded[-1].ts_init  # re-stamped with the live clock


def test_restamped_copies_keep_everything_but_the_stamps():
    quote = random_walk_quotes(INSTRUMENT, 1)[0]
    copy = restamped(quote, 42)
    assert (copy.bid_price, copy.ask_price, copy.bid_size, copy.ts_event, copy.ts_init) == (
        quote.bid_price,
        quote.ask_price,
        quote.bid_size,
        42,
        42,
    )
    with pytest.raises(TypeError, match="cannot replay"):
        restamped("x", 1)


def test_replay_needs_data_and_lock_step_needs_wait_idle():
    with pytest.raises(ValueError, match="data file"):
        ReplayDataClient("R", ReplayConfig(IID), clock=None)
    with pytest.raises(ValueError, match="wait_idle"):
        ReplayDataClient("R", ReplayConfig(IID, speed=0), clock=None, items=[])


# -- TOML config ----------------------------------------------------------------------------------

MINIMAL = {
    "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
    "instruments": [{"id": "EUR/USD.SIM"}],
    "data_clients": [{"type": "random_walk"}],
    "strategies": [
        {
            "path": "node.strategies.quote_mean_reversion:QuoteMeanReversion",
            "config": {"instrument_id": "EUR/USD.SIM", "trade_size": 1},
        }
    ],
}


def with_changes(**changes) -> dict:
    return {**MINIMAL, **changes}


def test_minimal_config_gets_documented_defaults():
    config = load_node_config(MINIMAL)
    assert config.timeouts.connection == 10.0 and config.timeouts.post_stop == 5.0
    assert config.queues.data_overflow is OverflowPolicy.DROP_OLDEST
    assert config.stream_patterns[0] == "events.order.*"
    assert config.data_clients[0] == ClientSpec("random_walk", "RANDOM_WALK", RandomWalkConfig())
    assert config.exec_clients[0].factory == "sandbox" and config.exec_clients[0].name == "SIM"


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (with_changes(node={"timeouts": {"connection": 0}}), "node.timeouts.connection"),
        (with_changes(node={"queues": {"data_overflow": "drop_all"}}), "node.queues.data_overflow"),
        (with_changes(node={"backend": "curio"}), "node.backend"),
        (with_changes(data_clients=[{"rate": 3}]), "data_clients[0].type"),
        (with_changes(data_clients=[{"type": "random_walk", "rate": 0}]), "data_clients[0].rate"),
        (with_changes(data_clients=[{"type": "random_walk", "rate": float("nan")}]), "data_clients[0].rate"),
        (with_changes(data_clients=[{"type": "random_walk", "rate": float("inf")}]), "data_clients[0].rate"),
        (
            with_changes(data_clients=[{"type": "random_walk", "instruments": ["GBP/USD.SIM"]}]),
            "data_clients[0]",
        ),
        (
            with_changes(data_clients=[{"type": "replay", "instrument_id": IID, "path": "nope.csv"}]),
            "data_clients[0].path",
        ),
        (with_changes(exec_clients=[{"type": "x"}]), "exec_clients"),
        (with_changes(streaming={"patterns": [""]}), "streaming.patterns[0]"),
        (with_changes(strategies=[]), "strategies"),
        (with_changes(instruments=[{"id": "EUR/USD.OTHER"}]), "instruments[0].id"),
        (  # a strategy on an instrument the node lacks: refused at load, not at every start
            with_changes(
                strategies=[
                    {**MINIMAL["strategies"][0], "config": {"instrument_id": "GBP/USD.SIM", "trade_size": 1}}
                ]
            ),
            "strategies[0].config.instrument_id",
        ),
    ],
)
def test_config_errors_name_the_key(doc, key):
    with pytest.raises(ConfigError) as info:
        load_node_config(doc)
    assert info.value.key == key


def test_replay_config_paths_are_relative_to_the_config_file(tmp_path):
    write_quotes_csv(tmp_path / "q.csv", random_walk_quotes(INSTRUMENT, 5))
    doc = with_changes(
        data_clients=[{"type": "replay", "name": "FILE", "instrument_id": IID, "path": "q.csv"}]
    )
    config = load_node_config(doc, tmp_path)
    assert config.data_clients[0].config.path == tmp_path / "q.csv"


@pytest.mark.anyio
async def test_replay_client_loads_its_file_when_connecting(tmp_path):
    recorded = random_walk_quotes(INSTRUMENT, 30, seed=4)
    write_quotes_csv(tmp_path / "q.csv", recorded)
    doc = with_changes(
        node={"log_level": "ERROR", "liveness_interval_s": 0.05},
        data_clients=[
            {"type": "replay", "instrument_id": IID, "path": "q.csv", "speed": 0, "stop_when_done": True}
        ],
    )
    node = TradingNode(load_node_config(doc, tmp_path))
    node.build()
    with anyio.fail_after(20):
        await node.run_async()
    assert node.data_clients[0].played == 30
    assert node.kernel.cache.quote_tick(INSTRUMENT.id).bid_price == recorded[-1].bid_price
    node.dispose()
