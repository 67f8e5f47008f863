"""Start = recovery (issue #5): a node with a state store carries on where it stopped.

The strongest check is parity: a sandbox node that replays the first part of a quote stream,
stops, and is started again from its store on the rest must trade exactly as one backtest over
the whole stream (same orders, same fills, same decisions), because everything the next decision
depends on (open orders at the venue, positions, balances, the client order id counter, the
strategy's saved state) came back. The other tests pin the pieces: what the store holds (only
live state), the stream's sequence, durability before the sink, corrupt files.
"""

from __future__ import annotations

import sqlite3

import anyio
import msgpack
import pytest
from test_live_parity import RISK, Observed, backtest, comparable
from test_live_support import IID, INSTRUMENT, replay_node

from node.backtest.config import ConfigError
from node.live.config import StateConfig, load_node_config
from node.live.node import TradingNode
from node.live.recovery import StateRestoreError
from node.model.enums import OrderSide, PositionSide
from node.model.events import OrderFilled
from node.model.objects import Money
from node.persistence.generators import random_walk_quotes
from node.persistence.store import SqliteStateStore, StateStoreCorruptError
from node.strategies.quote_mean_reversion import QuoteMeanReversionConfig
from node.trading.strategy import Strategy


@pytest.fixture
def anyio_backend():
    return "trio"


class Restartable(Observed):
    """The parity strategy, made restart-invisible: its SMA window is saved, a stop cancels nothing.

    (A real strategy would re-warm its indicators instead; saving the window here is what lets
    the test demand *identical* decisions across the restart.)
    """

    final = False  # the last run stops like the backtest's strategy (cancel, close positions)

    def on_stop(self) -> None:
        if self.final:
            super().on_stop()
        else:
            self.unsubscribe_quote_ticks(self.instrument_id)

    def on_save(self) -> dict[str, bytes]:
        state = dict(super().on_save())
        sma = self.sma
        state["sma"] = msgpack.packb(
            [list(sma._window), sma._sum, sma._until_resync, sma.count, sma.initialized, sma.value]
        )
        state["cancel_sent"] = b"1" if self._cancel_sent else b"0"
        return state

    def on_load(self, state: dict[str, bytes]) -> None:
        super().on_load(state)
        window, total, until, count, initialized, value = msgpack.unpackb(state["sma"])
        sma = self.sma
        sma._window.extend(window)
        sma._sum, sma._until_resync, sma.count = total, until, count
        sma.initialized, sma.value, sma.has_inputs = initialized, value, bool(window)
        self._cancel_sent = state.get("cancel_sent") == b"1"


CONFIG = QuoteMeanReversionConfig(
    instrument_id=IID,
    trade_size=100_000,
    window=20,
    entry_ticks=2,
    use_limit_orders=True,
    strategy_id="Observed",  # the backtest's Observed and our Restartable are one strategy
)


async def run_part(quotes, state: StateConfig, fills: list, final: bool) -> tuple[TradingNode, Restartable]:
    strategy = Restartable(CONFIG)
    strategy.final = final
    node = replay_node(quotes, [strategy], risk=RISK, state=state)
    node.kernel.msgbus.subscribe(
        "events.order.*", lambda e: fills.append(e) if type(e) is OrderFilled else None
    )
    node.build()
    with anyio.fail_after(60):
        await node.run_async()  # the replay stops the node once every quote is played
    return node, strategy


def stored(path) -> tuple:
    with SqliteStateStore(path) as store:
        return store.load(), list(store.outbox_after(0))


@pytest.mark.anyio
async def test_a_restarted_node_trades_exactly_as_one_uninterrupted_run(tmp_path):
    quotes = random_walk_quotes(INSTRUMENT, 3000, seed=7)
    expected, bt_strategy = backtest(quotes, CONFIG)
    state = StateConfig(tmp_path / "node.sqlite", synchronous="normal")
    fills: list = []
    views: list = []
    open_at_cuts = 0
    parts = (quotes[:900], quotes[900:1700], quotes[1700:])
    for i, part in enumerate(parts):
        node, strategy = await run_part(part, state, fills, final=part is parts[-1])
        if i:
            report = node.restore_report
            assert report.last_seq > 0 and report.venues == 1 and report.accounts == 1
        cache = node.kernel.cache
        open_orders = {str(o.client_order_id) for o in cache.orders_open()}
        open_positions = {str(p.id) for p in cache.positions_open()}
        open_at_cuts += len(open_orders) + len(open_positions) if part is not parts[-1] else 0
        views += strategy.views
        realized = node.kernel.portfolio.realized_pnls()
        node.dispose()
        # State, not history: the store keeps exactly what is still open.
        loaded, outbox = stored(state.path)
        assert set(loaded.orders) == open_orders
        assert {f.position_id for f in loaded.position_fills} == open_positions
        # The stream's sequence runs on across restarts, every event in the outbox (nobody acked).
        assert [e.seq for e in outbox] == list(range(1, loaded.last_seq + 1))
    assert len(expected["fills"]) > 20  # it trades
    assert open_at_cuts > 0  # something was open across a restart, or the test proves little
    assert [comparable(f.to_dict()) for f in fills] == [comparable(r) for r in expected["fills"]]
    assert views == bt_strategy.views  # every decision saw the same orders and positions
    # What closed positions realized before each restart is carried in the portfolio's PnL.
    bt_realized = sum(Money.from_str(p["realized_pnl"]).as_decimal() for p in expected["positions"])
    assert [m.as_decimal() for m in realized.values()] == [bt_realized]
    streamed_fills = [e for e in outbox if e.event_type == "OrderFilled"]
    assert len(streamed_fills) == len(fills)


@pytest.mark.anyio
async def test_nothing_reaches_the_sink_before_it_is_in_the_store(tmp_path):
    quotes = random_walk_quotes(INSTRUMENT, 600, seed=3)
    checked: list[int] = []
    node = None

    def sink(msg: dict) -> None:
        entry = next(node.state_store.outbox_after(msg["seq"] - 1), None)
        assert entry is not None and entry.seq == msg["seq"], f"seq {msg['seq']} not durable yet"
        checked.append(msg["seq"])

    state = StateConfig(tmp_path / "node.sqlite", synchronous="normal")
    node = replay_node(quotes, [Restartable(CONFIG)], risk=RISK, state=state, stream_sink=sink)
    node.build()
    with anyio.fail_after(60):
        await node.run_async()
    assert node.stream.sink_errors == 0
    assert checked == list(range(1, node.stream.seq + 1)) and len(checked) > 50
    node.dispose()


@pytest.mark.anyio
async def test_the_recorder_writes_each_commits_events_as_one_outbox_row(tmp_path):
    quotes = random_walk_quotes(INSTRUMENT, 600, seed=3)
    state = StateConfig(tmp_path / "node.sqlite", synchronous="normal")
    node = replay_node(quotes, [Restartable(CONFIG)], risk=RISK, state=state, stream_sink=lambda msg: None)
    node.build()
    with anyio.fail_after(60):
        await node.run_async()
    stats = node.recorder.stats()
    node.dispose()
    loaded, outbox = stored(state.path)
    assert stats["events_committed"] == loaded.last_seq == len(outbox) > 50
    assert [e.seq for e in outbox] == list(range(1, loaded.last_seq + 1))
    conn = sqlite3.connect(state.path)
    rows = conn.execute("SELECT first_seq, last_seq FROM outbox ORDER BY first_seq").fetchall()
    conn.close()
    assert 0 < len(rows) <= stats["commits"] < loaded.last_seq  # runs, not one row per event
    assert rows[0][0] == 1 and rows[-1][1] == loaded.last_seq
    assert all(b[0] == a[1] + 1 for a, b in zip(rows, rows[1:], strict=False))  # contiguous, no overlap


def test_the_recorder_stores_an_unencodable_message_with_its_data_replaced(tmp_path):
    from types import SimpleNamespace

    from node.live.recorder import StateRecorder, unpack_data

    kernel = SimpleNamespace(strategies=[], exec_engine=SimpleNamespace(position_count=0))
    queue = SimpleNamespace(snapshot=lambda: [])
    with SqliteStateStore(tmp_path / "node.sqlite", synchronous="normal") as store:
        recorder = StateRecorder(store, kernel, queue, [])
        recorder(1, "events.a", "A", object(), {"n": 1})
        recorder(2, "events.a", "B", object(), {"bad": object()})
        recorder(3, "events.b", "C", object(), [3])
        recorder.commit()
        recorder(4, "events.a", "A", object(), {"n": 4})  # the packer still works after a failure
        recorder.commit()
        recorder.commit()  # nothing published: no outbox row, no error
        out = [(e.seq, e.topic, e.event_type, unpack_data(e.payload)) for e in store.outbox_after(0)]
    assert out[0] == (1, "events.a", "A", {"n": 1})
    assert out[1][:3] == (2, "events.a", "B") and "unencodable" in out[1][3]
    assert out[2:] == [(3, "events.b", "C", [3]), (4, "events.a", "A", {"n": 4})]
    assert recorder.stats() == {"commits": 3, "events_committed": 4}


def test_the_recorder_applies_acks_in_its_next_commit_not_in_a_transaction_of_their_own(tmp_path):
    from types import SimpleNamespace

    from node.live.recorder import StateRecorder

    kernel = SimpleNamespace(strategies=[], exec_engine=SimpleNamespace(position_count=0))
    queue = SimpleNamespace(snapshot=lambda: [])
    with SqliteStateStore(tmp_path / "node.sqlite", synchronous="normal") as store:
        recorder = StateRecorder(store, kernel, queue, [])
        for seq in (1, 2, 3):
            recorder(seq, "events.a", "A", object(), {"n": seq})
        recorder.commit()
        commits: list[str] = []  # each COMMIT is a transaction, and under FULL an fsync
        store._conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        recorder.ack(2)  # noted on the loop; nothing written yet
        assert commits == [] and [e.seq for e in store.outbox_after(0)] == [1, 2, 3]
        recorder(4, "events.a", "A", object(), {"n": 4})
        recorder.commit()  # the commit carries the ack: one transaction
        assert commits == ["COMMIT"] and store.load().acked_seq == 2
        assert [e.seq for e in store.outbox_after(0)] == [3, 4]
        commits.clear()
        recorder.ack(4)
        recorder.close()  # acks that no commit carried are applied as the store closes
    assert commits == ["COMMIT"]
    with SqliteStateStore(tmp_path / "node.sqlite", synchronous="normal") as store:
        assert store.load().acked_seq == 4 and list(store.outbox_after(0)) == []


def test_a_corrupt_state_file_stops_the_node_at_build_naming_the_file(tmp_path):
    path = tmp_path / "node.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    node = replay_node([], [Restartable(CONFIG)], state=StateConfig(path))
    with pytest.raises(StateStoreCorruptError) as caught:
        node.build()
    assert str(path) in str(caught.value)
    assert node.state.value == "DISPOSED"


def test_stored_state_that_cannot_be_rebuilt_is_refused(tmp_path):
    """A store that passes SQLite's integrity check but holds an order that cannot be replayed."""
    path = tmp_path / "node.sqlite"
    quotes = random_walk_quotes(INSTRUMENT, 900, seed=7)

    async def first_run():
        node, _ = await run_part(quotes, StateConfig(path, synchronous="normal"), [], False)
        node.dispose()

    anyio.run(first_run, backend="trio")
    loaded, _ = stored(path)
    assert loaded.orders, "the first part must leave an order open for this test"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE order_events SET payload = x'c1'")  # 0xc1: never valid msgpack
    conn.close()
    node = replay_node([], [Restartable(CONFIG)], state=StateConfig(path))
    with pytest.raises(StateRestoreError, match="cannot be rebuilt"):
        node.build()
    assert node.state.value == "DISPOSED"


# -- the [state] table ------------------------------------------------------------------------------

SANDBOX_DOC = {
    "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
    "instruments": [{"id": IID}],
    "strategies": [
        {
            "path": "node.strategies.ema_cross:EMACross",
            "config": {"instrument_id": IID, "bar_type": f"{IID}-1-SECOND-MID-INTERNAL", "trade_size": 1000},
        }
    ],
}


def test_state_table_paths_are_relative_to_the_config_and_default_to_full_sync(tmp_path):
    config = load_node_config({**SANDBOX_DOC, "state": {"path": "state/n.sqlite"}}, tmp_path)
    assert config.state == StateConfig(tmp_path / "state" / "n.sqlite", "full")
    assert load_node_config(SANDBOX_DOC, tmp_path).state is None  # no table: nothing is kept


@pytest.mark.parametrize(
    "doc, key, words",
    [
        ({"state": {}}, "state.path", "required"),
        ({"state": {"path": " "}}, "state.path", "state file"),
        ({"state": {"path": "s.db", "synchronous": "off"}}, "state.synchronous", "full"),
        ({"state": {"path": "s.db", "fsync": True}}, "state", "fsync"),
        (
            {"state": {"path": "s.db"}, "streaming": {"patterns": ["events.system.*"]}},
            "streaming.patterns",
            "events.order.*",
        ),
    ],
)
def test_a_bad_state_table_is_refused_naming_the_key(tmp_path, doc, key, words):
    with pytest.raises(ConfigError) as caught:
        load_node_config({**SANDBOX_DOC, **doc}, tmp_path)
    assert caught.value.key.startswith(key) and words in str(caught.value)


class SubmitThenStop(Observed):
    """On its first quote: submits a resting limit order and asks the node to stop, in one step."""

    node = None

    def on_quote_tick(self, tick) -> None:
        if self.node is None or self.cache.orders():
            return
        order = self.order_factory.limit(
            self.instrument_id, OrderSide.BUY, self.trade_quantity, tick.bid_price
        )
        self.submit_order(order)  # queued for the risk engine, not yet at the venue
        self.node.stop("stop right after a submit")


@pytest.mark.anyio
async def test_an_order_queued_when_the_node_stops_reaches_the_venue_before_on_stop_cancels(tmp_path):
    strategy = SubmitThenStop(CONFIG)
    node = replay_node(
        random_walk_quotes(INSTRUMENT, 50, seed=3), [strategy], risk=RISK, stop_when_done=False
    )
    strategy.node = node
    node.build()
    with anyio.fail_after(60):
        await node.run_async()
    (order,) = node.kernel.cache.orders()
    assert order.status.name == "CANCELED", "on_stop canceled it: nothing outlives the stop"
    assert not node.kernel.exec_engine.clients[0].exchange.open_orders()
    node.dispose()


def test_a_config_built_in_python_with_a_store_must_stream_order_and_account_events(tmp_path):
    from node.live.config import TradingNodeConfig

    with pytest.raises(ConfigError) as caught:
        TradingNodeConfig(state=StateConfig(tmp_path / "s.sqlite"), stream_patterns=("events.system.*",))
    assert caught.value.key == "streaming.patterns" and "events.order.*" in str(caught.value)


class FlipsAndRaises(Strategy):
    """Buys 1000, then sells 2000 (a fill through zero), and has a bug in ``on_order_filled``."""

    def on_start(self) -> None:
        self.step = 0
        self.subscribe_quote_ticks(INSTRUMENT.id)

    def on_quote_tick(self, tick) -> None:
        if self.step == 0 or (self.step == 1 and not self.cache.orders_open(INSTRUMENT.id, self.strategy_id)):
            side = OrderSide.BUY if self.step == 0 else OrderSide.SELL
            qty = INSTRUMENT.make_qty(1000 * (self.step + 1))
            self.step += 1
            self.submit_order(self.order_factory.market(INSTRUMENT.id, side, qty))

    def on_order_filled(self, event) -> None:
        raise RuntimeError("a bug in the strategy")


@pytest.mark.anyio
async def test_a_strategy_raising_on_its_fills_cannot_corrupt_the_stored_book(tmp_path):
    """The node carries on past the strategy's bug, and the store holds the book the venue made."""
    state = StateConfig(tmp_path / "node.sqlite", synchronous="normal")
    node = replay_node(random_walk_quotes(INSTRUMENT, 50, seed=1), [FlipsAndRaises()], state=state)
    node.build()
    with anyio.fail_after(30):
        await node.run_async()
    assert node.bridge.error_count == 2  # both fills reached the strategy, which raised on each
    node.dispose()

    restarted = replay_node([], [], state=state)
    restarted.build()
    try:
        cache = restarted.kernel.cache
        assert cache.orders_open() == []
        (short,) = cache.positions_open()
        assert (short.side, short.quantity) == (PositionSide.SHORT, INSTRUMENT.make_qty(1000))
    finally:
        restarted.dispose()
