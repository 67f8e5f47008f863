"""Shared builders for the live-node tests (no tests here; real nodes, no mocks of the kernel)."""

from __future__ import annotations

import threading

import anyio

from node.backtest.config import VenueConfig
from node.live.clients import LiveDataClient, LiveExecutionClient
from node.live.config import ClientSpec, NodeTimeouts, QueueConfig, TradingNodeConfig, sandbox_exec_clients
from node.live.node import TradingNode
from node.live.replay import ReplayConfig, ReplayDataClient
from node.model.instruments import default_fx_pair
from node.model.objects import Money

INSTRUMENT = default_fx_pair("EUR/USD", "SIM")
IID = str(INSTRUMENT.id)
FAST = NodeTimeouts(
    connection=5, reconciliation=5, portfolio=5, strategies=5, disconnection=5, post_stop=5, shutdown=10
)


def sim_venue() -> VenueConfig:
    return VenueConfig("SIM", (Money(1_000_000, INSTRUMENT.quote_currency),))


def sandbox_config(data_clients=(), timeouts=FAST, queues=None, **kwargs) -> TradingNodeConfig:
    return TradingNodeConfig(
        trader_id=kwargs.pop("trader_id", "TESTER-001"),
        log_level=kwargs.pop("log_level", "ERROR"),
        instruments=(INSTRUMENT,),
        exec_clients=sandbox_exec_clients([sim_venue()]),
        data_clients=tuple(data_clients),
        timeouts=timeouts,
        queues=queues or QueueConfig(),
        liveness_interval_s=kwargs.pop("liveness_interval_s", 0.05),
        **kwargs,
    )


def replay_node(
    quotes, strategies=(), *, speed: float = 0.0, stop_when_done: bool = True, stream_sink=None, **kwargs
) -> TradingNode:
    """A sandbox node that replays ``quotes`` (lock-step by default) and stops when they are played."""
    config = sandbox_config(data_clients=[ClientSpec("memory_replay", "REPLAY", None)], **kwargs)
    node = TradingNode(config, stream_sink=stream_sink)

    def factory(name, _config, context):
        return ReplayDataClient(
            name,
            ReplayConfig(IID, speed=speed, stop_when_done=stop_when_done),
            context.clock,
            INSTRUMENT,
            items=list(quotes),
            wait_idle=context.wait_idle,
            request_stop=context.request_stop,
        )

    node.register_data_client_factory("memory_replay", factory)
    for strategy in strategies:
        node.add_strategy(strategy)
    return node


class HangingDataClient(LiveDataClient):
    """A data client whose connect never returns (a venue that does not answer)."""

    async def connect_async(self) -> None:
        await anyio.sleep_forever()


class SilentExecutionClient(LiveExecutionClient):
    """Connects, but never reports an account (so the portfolio step cannot complete)."""

    def submit_order(self, command) -> None:  # pragma: no cover - never reached
        raise AssertionError("unexpected order")


class Recorder:
    """A stream sink that keeps every message (plain function); other threads can wait on it."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self._changed = threading.Condition()

    def __call__(self, msg: dict) -> None:
        with self._changed:
            self.messages.append(msg)
            self._changed.notify_all()

    def wait_until(self, predicate, timeout: float = 10.0) -> bool:
        """Block the calling thread (never the node's loop) until ``predicate(self)`` holds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def on(self, prefix: str) -> list[dict]:
        return [m for m in self.messages if m["topic"].startswith(prefix)]

    def node_states(self) -> list[str]:
        return [m["data"]["state"] for m in self.on("events.system.TradingNode")]
