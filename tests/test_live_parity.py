"""Backtest/sandbox parity: the same strategy fed the same quotes makes the same orders and fills.

The sandbox run replays the backtest's quotes through a real TradingNode (queues, drain tasks,
the SimulatedExchange behind the sandbox execution client) as fast as the node absorbs them
(lock-step). What may differ is only what the wall clock inherently decides:

* timestamps (``ts_*`` fields, and a position's ``duration_ns``);
* the risk engine's submit-rate throttle counts orders per *clock* second, so both runs use a
  limit high enough never to bind (a replay compresses hours of quotes into a fraction of a second);
* the trader id (each run names its own trader).

Beyond the final orders, fills and positions, the strategy records what it *saw* on every quote
(open positions and open orders): parity of decisions needs parity of the state they were made
on, and that is what the node's "execution before market data" rule guarantees.
"""

from __future__ import annotations

import anyio
import pytest
from test_live_support import IID, INSTRUMENT, replay_node

from node.backtest.engine import BacktestEngine, BacktestEngineConfig
from node.model.events import OrderFilled
from node.model.objects import Money
from node.persistence.generators import random_walk_quotes
from node.risk.engine import RiskConfig
from node.strategies.quote_mean_reversion import QuoteMeanReversion, QuoteMeanReversionConfig

RISK = RiskConfig(max_submit_rate=1_000_000)
WALL_CLOCK_FIELDS = {"ts_event", "ts_init", "ts_last", "ts_opened", "ts_closed", "duration_ns", "trader_id"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


class Observed(QuoteMeanReversion):
    """QuoteMeanReversion that records, per quote, the state it decides on."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.views: list = []

    def on_quote_tick(self, tick) -> None:
        self.views.append(
            (
                str(tick.bid_price),
                [str(p.signed_qty) for p in self.cache.positions_open()],
                sorted(str(o.client_order_id) for o in self.cache.orders_open()),
            )
        )
        super().on_quote_tick(tick)


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in WALL_CLOCK_FIELDS}


def backtest(quotes, config) -> tuple[dict, Observed]:
    engine = BacktestEngine(BacktestEngineConfig(risk=RISK))
    engine.add_venue("SIM", [Money(1_000_000, INSTRUMENT.quote_currency)])
    engine.add_instrument(INSTRUMENT)
    engine.add_data(quotes)
    strategy = Observed(config)
    engine.add_strategy(strategy)
    result = engine.run()
    out = {"orders": result.orders, "fills": result.fills, "positions": result.positions}
    engine.dispose()
    return out, strategy


async def sandbox(quotes, config) -> tuple[dict, Observed]:
    strategy = Observed(config)
    node = replay_node(quotes, [strategy], risk=RISK)
    fills: list = []
    node.kernel.msgbus.subscribe(
        "events.order.*", lambda e: fills.append(e) if type(e) is OrderFilled else None
    )
    node.build()
    with anyio.fail_after(60):
        await node.run_async()  # the replay stops the node once every quote is played
    cache = node.kernel.cache
    out = {
        "orders": [o.to_dict() for o in cache.orders()],
        "fills": [f.to_dict() for f in fills],
        "positions": [p.to_dict() for p in cache.positions()],
    }
    assert node.stats()["queues"]["data"]["dropped"] == 0
    node.dispose()
    return out, strategy


@pytest.mark.anyio
@pytest.mark.parametrize("use_limit_orders", [True, False], ids=["limit", "market"])
async def test_same_quotes_same_orders_and_fills(anyio_backend, use_limit_orders):
    quotes = random_walk_quotes(INSTRUMENT, 3000, seed=7)
    config = QuoteMeanReversionConfig(
        instrument_id=IID, trade_size=100_000, window=20, entry_ticks=2, use_limit_orders=use_limit_orders
    )
    expected, bt_strategy = backtest(quotes, config)
    got, sb_strategy = await sandbox(quotes, config)
    assert len(expected["fills"]) > 20  # the run actually trades
    for kind in ("orders", "fills", "positions"):
        assert [comparable(r) for r in got[kind]] == [comparable(r) for r in expected[kind]], kind
    assert sb_strategy.views == bt_strategy.views
