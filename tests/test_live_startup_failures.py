"""A node refuses what it cannot trade on, and a start-up that fails still ends in a clean stop.

- market data priced at or below zero (a replayed file) stops the start naming file, row, field;
- a subscription to quotes or trades of an instrument the node does not have fails the start at
  its 'strategies' step, as bars already did;
- a start-up failure whose stop cannot publish as usual (a full stream buffer, a subscriber that
  raises) still reaches STOPPED, and ``run_async`` raises the start-up's own error;
- the config loader refuses a stream buffer too small for what a start publishes at once.
"""

from __future__ import annotations

import anyio
import pytest
from test_live_support import IID, INSTRUMENT, Recorder, sandbox_config

from node.backtest.config import ConfigError
from node.live.config import QueueConfig, load_node_config
from node.live.errors import StartupFailed
from node.live.node import NODE_TOPIC, TradingNode
from node.live.states import NodeState
from node.live.streaming import MIN_STREAM_CAPACITY
from node.model.identifiers import InstrumentId
from node.persistence.generators import random_walk_quotes
from node.persistence.loaders import write_quotes_csv
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def mean_reversion() -> QuoteMeanReversion:
    return QuoteMeanReversion(QuoteMeanReversionConfig(instrument_id=IID, trade_size=100_000, window=20))


MINIMAL = {
    "node": {"log_level": "OFF", "liveness_interval_s": 0.05},
    "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
    "instruments": [{"id": IID}],
    "strategies": [
        {
            "path": "node.strategies.quote_mean_reversion:QuoteMeanReversion",
            "config": {"instrument_id": IID, "trade_size": 100_000, "window": 20, "entry_ticks": 2},
        }
    ],
}


# -- market data priced at or below zero ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_replayed_file_with_a_zero_bid_stops_the_start_naming_file_row_and_field(tmp_path):
    quotes = random_walk_quotes(INSTRUMENT, 50, seed=3)
    write_quotes_csv(tmp_path / "q.csv", quotes, include_sizes=False)
    lines = (tmp_path / "q.csv").read_text().splitlines()
    ts, _bid, ask = lines[31].split(",")
    lines[31] = f"{ts},0.00000,{ask}"  # row 31: a zero bid, the rest of the file is fine
    (tmp_path / "q.csv").write_text("\n".join(lines) + "\n")
    replay = {"type": "replay", "instrument_id": IID, "path": "q.csv", "speed": 0, "stop_when_done": True}
    node = TradingNode(load_node_config({**MINIMAL, "data_clients": [replay]}, tmp_path))
    node.build()
    with anyio.fail_after(10), pytest.raises(StartupFailed) as info:
        await node.run_async()
    assert info.value.step == "connection"
    assert f"{tmp_path / 'q.csv'} row 31, field 'bid': not positive: '0.00000'" in str(info.value)
    assert node.state is NodeState.STOPPED
    assert node.kernel.cache.orders() == []  # nothing was traded on it
    node.dispose()


# -- subscriptions to an instrument the node does not have ----------------------------------------


class SubscribesToUnknown(QuoteMeanReversion):
    """Subscribes to its own instrument, then to ``kind`` of one the node was not given."""

    kind = "quotes"

    def on_start(self) -> None:
        super().on_start()
        unknown = InstrumentId.from_str("GBP/USD.SIM")
        if self.kind == "quotes":
            self.subscribe_quote_ticks(unknown)
        else:
            self.subscribe_trade_ticks(unknown)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["quotes", "trades"])
async def test_a_subscription_to_an_unknown_instrument_fails_the_start_at_strategies(anyio_backend, kind):
    strategy = SubscribesToUnknown(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1))
    strategy.kind = kind
    node = TradingNode(sandbox_config())
    node.add_strategy(strategy)
    node.build()
    with anyio.fail_after(10), pytest.raises(StartupFailed) as info:
        await node.run_async()
    assert info.value.step == "strategies"
    assert f"cannot subscribe to {kind} of GBP/USD.SIM: instrument GBP/USD.SIM is not in the cache" in str(
        info.value
    )
    assert node.state is NodeState.STOPPED
    await node.dispose_async()


# -- a failed start still stops cleanly -----------------------------------------------------------


@pytest.mark.anyio
async def test_a_stream_overflow_at_start_up_ends_stopped_with_the_start_up_error(anyio_backend):
    # A capacity the config loader refuses (the Python API takes it): starting the engines alone
    # publishes more at once. The stop that follows must not trip on the full buffer again.
    sink = Recorder()
    node = TradingNode(sandbox_config(queues=QueueConfig(stream_capacity=5)), stream_sink=sink)
    node.add_strategy(mean_reversion())
    node.build()
    with anyio.fail_after(10):
        with pytest.raises(StartupFailed, match="StreamOverflow.*raise queues.stream_capacity") as info:
            await node.run_async()
        assert info.value.step == "engines"
        assert node.state is NodeState.STOPPED
        await node.dispose_async()  # returns at once: the node is not left STOPPING
    assert node.state is NodeState.DISPOSED
    # Nothing dropped: every message numbered was handed over, in order, the stop's included.
    assert [m["seq"] for m in sink.messages] == list(range(1, node.stream.seq + 1))
    assert sink.node_states() == ["STARTING", "STOPPING", "STOPPED"]
    assert node.shutdown_problems == []  # the stop had room for its messages: nothing went wrong


class RaisesOnStart(QuoteMeanReversion):
    def on_start(self) -> None:
        raise RuntimeError("cannot start")


@pytest.mark.anyio
async def test_a_subscriber_raising_on_the_stop_does_not_keep_a_failed_start_from_stopping(anyio_backend):
    node = TradingNode(sandbox_config())
    node.add_strategy(RaisesOnStart(QuoteMeanReversionConfig(instrument_id=IID, trade_size=1)))

    def broken_listener(event) -> None:
        if event.state in (NodeState.STOPPING, NodeState.STOPPED):
            raise RuntimeError(f"listener bug on {event.state.value}")

    node.kernel.msgbus.subscribe(NODE_TOPIC, broken_listener)
    node.build()
    with anyio.fail_after(10), pytest.raises(StartupFailed) as info:
        await node.run_async()
    assert info.value.step == "strategies" and "cannot start" in str(info.value)  # not the listener's
    assert node.state is NodeState.STOPPED
    assert [p for p in node.shutdown_problems if "listener bug" in p] == [
        "publishing the node's STOP transition failed: RuntimeError: listener bug on STOPPING",
        "publishing the node's STOP_COMPLETED transition failed: RuntimeError: listener bug on STOPPED",
    ]
    await node.dispose_async()


# -- the stream buffer's floor in the config --------------------------------------------------------


def test_the_config_loader_refuses_a_stream_buffer_smaller_than_a_start_publishes():
    doc = {**MINIMAL, "node": {"queues": {"stream_capacity": MIN_STREAM_CAPACITY - 1}}}
    with pytest.raises(
        ConfigError, match=f"node.queues.stream_capacity.*must be at least {MIN_STREAM_CAPACITY}"
    ):
        load_node_config(doc)
    doc = {**MINIMAL, "node": {"queues": {"stream_capacity": MIN_STREAM_CAPACITY}}}
    assert load_node_config(doc).queues.stream_capacity == MIN_STREAM_CAPACITY
    assert load_node_config(MINIMAL).queues.stream_capacity == 100_000  # the default
