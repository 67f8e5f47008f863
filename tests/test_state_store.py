"""Node state store (issue 5): codec round trips, transactions, reload, outbox, corruption, kill -9."""

from __future__ import annotations

import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import msgpack
import pytest

from node.model.enums import (
    AccountType,
    LiquiditySide,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
)
from node.model.events import (
    AccountBalance,
    AccountState,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderInitialized,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
    OrderTriggered,
    PositionChanged,
    PositionClosed,
    PositionOpened,
)
from node.model.identifiers import (
    AccountId,
    ClientOrderId,
    InstrumentId,
    PositionId,
    StrategyId,
    TradeId,
    TraderId,
    VenueOrderId,
)
from node.model.objects import CURRENCIES, USD, Money, Price, Quantity
from node.model.orders import Order
from node.persistence.store import (
    CodecError,
    InvalidStateValueError,
    NestedTransactionError,
    OutboxAckError,
    OutboxSequenceError,
    ReservedCounterError,
    SqliteStateStore,
    StateStore,
    StateStoreClosedError,
    StateStoreCorruptError,
    StateStoreLockedError,
    StateStoreOpenError,
    StateStoreSchemaError,
    TransactionClosedError,
    decode_accounts,
    decode_event,
    decode_fills,
    encode_event,
    rebuild_orders,
    record_account_state,
    record_order_event,
)
from node.persistence.store.codec import EVENT_TYPES

REPO = Path(__file__).resolve().parent.parent
TRADER = TraderId("TRADER-001")
STRATEGY = StrategyId("S-001")
INSTRUMENT = InstrumentId.from_str("EUR/USD.SIM")
ACCOUNT = AccountId("SIM-001")
TOPIC = "events.order"


# -- sample events ----------------------------------------------------------------------------------


def ids(n: int = 1) -> dict:
    return {
        "trader_id": TRADER,
        "strategy_id": STRATEGY,
        "instrument_id": INSTRUMENT,
        "client_order_id": ClientOrderId(f"O-{STRATEGY}-{n}"),
    }


def ts(t: int) -> dict:
    return {"ts_event": t, "ts_init": t + 1}


def init(n: int = 1, order_type=OrderType.LIMIT, qty="10", price="1.10000", trigger=None, side=OrderSide.BUY):
    return OrderInitialized(
        **ids(n),
        side=side,
        order_type=order_type,
        quantity=Quantity.from_str(qty),
        time_in_force=TimeInForce.GTC,
        price=Price.from_str(price) if price else None,
        trigger_price=Price.from_str(trigger) if trigger else None,
        **ts(1),
    )


def venue(n: int = 1) -> dict:
    return {"venue_order_id": VenueOrderId(f"V-{n}"), "account_id": ACCOUNT}


def fill(n: int, qty: str, px: str, trade: str, side=OrderSide.BUY, order_type=OrderType.LIMIT, t: int = 10):
    return OrderFilled(
        **ids(n),
        **venue(n),
        trade_id=TradeId(trade),
        position_id=PositionId(f"P-{n}"),
        order_side=side,
        order_type=order_type,
        last_qty=Quantity.from_str(qty),
        last_px=Price.from_str(px),
        currency=USD,
        commission=Money("0.21", USD),
        liquidity_side=LiquiditySide.MAKER,
        **ts(t),
    )


def account_state(total: str = "1000000.00", locked: str = "250.50") -> AccountState:
    usd_free = Money(Decimal(total) - Decimal(locked), USD)
    btc = CURRENCIES["BTC"]
    return AccountState(
        account_id=ACCOUNT,
        account_type=AccountType.MARGIN,
        base_currency=None,
        balances=(
            AccountBalance(total=Money(total, USD), locked=Money(locked, USD), free=usd_free),
            AccountBalance(total=Money("1.5", btc), locked=Money("0.25", btc), free=Money("1.25", btc)),
        ),
        is_reported=True,
        **ts(7),
    )


def position_event(cls, side=PositionSide.LONG, closed=False):
    return cls(
        trader_id=TRADER,
        strategy_id=STRATEGY,
        instrument_id=INSTRUMENT,
        position_id=PositionId("P-1"),
        account_id=ACCOUNT,
        opening_order_id=ClientOrderId("O-S-001-1"),
        closing_order_id=ClientOrderId("O-S-001-2") if closed else None,
        entry=OrderSide.BUY,
        side=side,
        signed_qty=Decimal("0") if closed else Decimal("7"),
        quantity=Quantity.from_str("0" if closed else "7"),
        peak_qty=Quantity.from_str("7"),
        last_qty=Quantity.from_str("3"),
        last_px=Price.from_str("1.10020"),
        currency=USD,
        avg_px_open=Decimal("1.100123456789"),
        avg_px_close=Decimal("1.10020") if closed else None,
        realized_pnl=Money("-0.42", USD),
        unrealized_pnl=Money("1.10", USD),
        ts_opened=5,
        ts_closed=20 if closed else None,
        duration_ns=15 if closed else 0,
        **ts(20),
    )


SAMPLES = {
    "OrderInitialized": init(
        order_type=OrderType.STOP_MARKET, price=None, trigger="1.09950", side=OrderSide.SELL
    ),
    "OrderDenied": OrderDenied(**ids(), reason="max notional exceeded", **ts(2)),
    "OrderSubmitted": OrderSubmitted(**ids(), account_id=ACCOUNT, **ts(2)),
    "OrderAccepted": OrderAccepted(**ids(), **venue(), **ts(3)),
    "OrderRejected": OrderRejected(**ids(), account_id=ACCOUNT, reason="no margin", **ts(3)),
    "OrderCanceled": OrderCanceled(**ids(), **ts(4)),  # the None-ids shape (never reached the venue)
    "OrderExpired": OrderExpired(**ids(), **venue(), **ts(4)),
    "OrderTriggered": OrderTriggered(**ids(), **venue(), **ts(4)),
    "OrderPendingCancel": OrderPendingCancel(**ids(), **venue(), **ts(4)),
    "OrderCancelRejected": OrderCancelRejected(
        **ids(), venue_order_id=None, account_id=ACCOUNT, reason="unknown order", **ts(5)
    ),
    "OrderFilled": fill(1, "2.5", "1.10005", "T-1"),
    "PositionOpened": position_event(PositionOpened),
    "PositionChanged": position_event(PositionChanged),
    "PositionClosed": position_event(PositionClosed, side=PositionSide.FLAT, closed=True),
    "AccountState": account_state(),
}


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "node.db"


@pytest.fixture
def store(store_path: Path):
    with SqliteStateStore(store_path) as s:
        yield s


def reopen(s: SqliteStateStore, **kwargs) -> SqliteStateStore:
    s.close()
    return SqliteStateStore(s.path, **kwargs)


# -- codec ------------------------------------------------------------------------------------------


def test_samples_cover_every_event_type():
    assert set(SAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_codec_round_trips_every_event_type(name):
    event = SAMPLES[name]
    data = encode_event(event)
    back = decode_event(data)
    assert type(back) is type(event)
    assert back == event
    assert back.to_dict() == event.to_dict()  # precision, enums and ids exactly as written
    assert encode_event(back) == data


def test_compile_plans_leaves_no_event_type_for_a_first_decode_to_compile():
    from node.persistence.store import codec

    assert codec.compile_plans() == len(EVENT_TYPES)
    assert set(EVENT_TYPES.values()) <= set(codec._PLANS)  # a recovery's decode only looks them up


def test_codec_keeps_precision_and_types():
    back = decode_event(encode_event(SAMPLES["OrderFilled"]))
    assert str(back.last_px) == "1.10005" and back.last_px.precision == 5
    assert type(back.client_order_id) is ClientOrderId and type(back.instrument_id) is InstrumentId
    assert back.instrument_id.venue == "SIM"
    assert back.commission == Money("0.21", USD) and back.liquidity_side is LiquiditySide.MAKER
    acct = decode_event(encode_event(SAMPLES["AccountState"]))
    assert acct.balances[1].total.currency.code == "BTC" and acct.base_currency is None
    pos = decode_event(encode_event(SAMPLES["PositionChanged"]))
    assert pos.avg_px_open == Decimal("1.100123456789") and pos.ts_closed is None


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\xc1garbage", "not a msgpack"),
        (msgpack.packb({"type": "OrderDenied"}), r"\[version, fields\]"),
        (msgpack.packb([99, {"type": "OrderDenied"}]), "codec version 99"),
        (msgpack.packb([1, {"type": "Nope"}]), "unknown event type 'Nope'"),
        (msgpack.packb([1, {**SAMPLES["OrderDenied"].to_dict(), "extra": 1}]), "unknown field"),
        (
            msgpack.packb([1, {k: v for k, v in SAMPLES["OrderDenied"].to_dict().items() if k != "reason"}]),
            "reason",
        ),
        (msgpack.packb([1, {**SAMPLES["OrderAccepted"].to_dict(), "ts_event": -1}]), "OrderAccepted"),
        (msgpack.packb([1, {**SAMPLES["OrderFilled"].to_dict(), "order_side": "UP"}]), "order_side"),
        (msgpack.packb([1, {**SAMPLES["OrderFilled"].to_dict(), "last_px": 1.1}]), "expected a string"),
    ],
)
def test_codec_rejects_bad_bytes_with_codec_error(data, match):
    with pytest.raises(CodecError, match=match):
        decode_event(data)


def test_codec_refuses_to_encode_unknown_types():
    with pytest.raises(CodecError, match="not a known event type"):
        encode_event(object())  # type: ignore[arg-type]


# -- transactions -----------------------------------------------------------------------------------


def write_everything(s: StateStore) -> None:
    with s.transaction() as tx:
        record_order_event(tx, init(1), TOPIC)
        tx.put_strategy_state("S-001", {"ema": b"\x01\x02", "n": b"7"})
        tx.set_counter("orders:S-001", 1)
        tx.put_blob("sim-venue", "open-orders", b"[]")
        record_account_state(tx, account_state(), "events.account")


def test_fresh_store_loads_empty(store):
    state = store.load()
    assert state.is_empty and state.last_seq == 0 and state.acked_seq == 0
    assert list(store.outbox_after(0)) == []


def test_commit_makes_state_and_outbox_visible_together(store):
    write_everything(store)
    state = store.load()
    assert list(state.orders) == ["O-S-001-1"]
    assert state.orders["O-S-001-1"].strategy_id == "S-001"
    assert dict(state.strategy_states["S-001"]) == {"ema": b"\x01\x02", "n": b"7"}
    assert dict(state.counters) == {"orders:S-001": 1}
    assert dict(state.blobs["sim-venue"]) == {"open-orders": b"[]"}
    assert decode_accounts(state)[ACCOUNT] == account_state()
    assert state.last_seq == 2
    out = list(store.outbox_after(0))
    assert [(e.seq, e.topic, e.event_type) for e in out] == [
        (1, TOPIC, "OrderInitialized"),
        (2, "events.account", "AccountState"),
    ]
    assert out[0].payload == state.orders["O-S-001-1"].events[0].payload  # streamed == stored


class Boom(Exception):
    pass


def test_exception_inside_transaction_leaves_nothing_written(store):
    write_everything(store)
    before = store.load()
    outbox_before = list(store.outbox_after(0))
    with pytest.raises(Boom):
        with store.transaction() as tx:
            record_order_event(tx, init(2), TOPIC)
            record_order_event(tx, SAMPLES["OrderSubmitted"], TOPIC)
            tx.put_strategy_state("S-001", {"ema": b"changed"})
            tx.set_counter("orders:S-001", 2)
            tx.put_blob("sim-venue", "open-orders", b"[1]")
            tx.delete_blob("sim-venue", "open-orders")
            record_account_state(tx, account_state("5.00", "0.00"), "events.account")
            raise Boom
    assert store.load() == before
    assert list(store.outbox_after(0)) == outbox_before
    store = reopen(store)  # and nothing reaches the file either
    assert store.load() == before
    with store.transaction() as tx:  # the seq rolled back too: no gap
        assert tx.emit(TOPIC, "X", b"x") == 3
    store.close()


def test_transaction_object_is_dead_after_the_block(store):
    with store.transaction() as tx:
        pass
    with pytest.raises(TransactionClosedError):
        tx.set_counter("a", 1)
    with pytest.raises(Boom), store.transaction() as tx2:
        raise Boom
    with pytest.raises(TransactionClosedError):
        tx2.next_seq()


def test_nested_transaction_and_reads_inside_a_transaction_are_refused(store):
    with pytest.raises(NestedTransactionError), store.transaction() as tx:
        tx.set_counter("a", 1)
        with store.transaction():
            pass
    with pytest.raises(NestedTransactionError), store.transaction():
        store.load()
    with pytest.raises(NestedTransactionError), store.transaction():
        store.ack_outbox(0)
    assert store.load().is_empty  # all three rolled back


def test_seq_must_go_to_the_outbox_exactly_once(store):
    with pytest.raises(OutboxSequenceError, match="never added"), store.transaction() as tx:
        tx.next_seq()
    with pytest.raises(OutboxSequenceError, match="not allocated"), store.transaction() as tx:
        tx.add_outbox(1, TOPIC, "X", b"")
    with pytest.raises(OutboxSequenceError, match="twice"), store.transaction() as tx:
        seq = tx.next_seq()
        tx.add_outbox(seq, TOPIC, "X", b"")
        tx.add_outbox(seq, TOPIC, "X", b"")
    assert store.load().last_seq == 0 and list(store.outbox_after(0)) == []


def test_reserved_counters_and_bad_values_are_refused(store):
    with pytest.raises(ReservedCounterError), store.transaction() as tx:
        tx.set_counter("__seq__", 5)
    bad_calls = [
        lambda tx: tx.append_order_event("O-1", "S", "X", "not bytes"),
        lambda tx: tx.append_order_event("", "S", "X", b""),
        lambda tx: tx.put_account_state("A-1", None),
        lambda tx: tx.put_strategy_state("S", {"k": "str"}),
        lambda tx: tx.put_strategy_state("S", [("k", b"")]),
        lambda tx: tx.set_counter("c", -1),
        lambda tx: tx.set_counter("c", 2**63),
        lambda tx: tx.set_counter("c", True),
        lambda tx: tx.set_counter("c", 1.0),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidStateValueError), store.transaction() as tx:
            call(tx)
    with pytest.raises(InvalidStateValueError):
        SqliteStateStore(store.path.with_name("other.db"), synchronous="OFF")
    assert store.load().is_empty


def test_strategy_state_is_replaced_as_a_whole_and_bytes_like_values_accepted(store):
    with store.transaction() as tx:
        tx.put_strategy_state("S-001", {"a": b"1", "b": bytearray(b"2")})
    with store.transaction() as tx:
        tx.put_strategy_state("S-001", {"c": memoryview(b"3")})
    assert dict(store.load().strategy_states["S-001"]) == {"c": b"3"}


# -- reload -----------------------------------------------------------------------------------------


def order_histories() -> list[list]:
    """Orders in a spread of end states (each list is one order's events in order)."""
    return [
        [  # limit: partial fill, cancel rejected, filled in two more fills
            init(1, qty="10"),
            OrderSubmitted(**ids(1), account_id=ACCOUNT, **ts(2)),
            OrderAccepted(**ids(1), **venue(1), **ts(3)),
            fill(1, "3", "1.10000", "T-1a", t=4),
            OrderPendingCancel(**ids(1), **venue(1), **ts(5)),
            OrderCancelRejected(**ids(1), **venue(1), reason="too late", **ts(6)),
            fill(1, "4", "1.09990", "T-1b", t=7),
            fill(1, "3", "1.09980", "T-1c", t=8),
        ],
        [  # market: partially filled, still working
            init(2, order_type=OrderType.MARKET, qty="5", price=None, side=OrderSide.SELL),
            OrderSubmitted(**ids(2), account_id=ACCOUNT, **ts(2)),
            fill(2, "2", "1.10010", "T-2a", side=OrderSide.SELL, order_type=OrderType.MARKET),
        ],
        [  # stop: triggered then canceled
            init(3, order_type=OrderType.STOP_MARKET, price=None, trigger="1.20000"),
            OrderSubmitted(**ids(3), account_id=ACCOUNT, **ts(2)),
            OrderAccepted(**ids(3), **venue(3), **ts(3)),
            OrderTriggered(**ids(3), **venue(3), **ts(4)),
            OrderCanceled(**ids(3), **venue(3), reason="IOC remainder", **ts(5)),
        ],
        [init(4), OrderDenied(**ids(4), reason="risk", **ts(2))],
        [
            init(5),
            OrderSubmitted(**ids(5), account_id=ACCOUNT, **ts(2)),
            OrderRejected(**ids(5), account_id=ACCOUNT, reason="no", **ts(3)),
        ],
        [
            init(6),
            OrderSubmitted(**ids(6), account_id=ACCOUNT, **ts(2)),
            OrderExpired(**ids(6), **venue(6), **ts(3)),
        ],
        [
            init(7),
            OrderSubmitted(**ids(7), account_id=ACCOUNT, **ts(2)),
            OrderAccepted(**ids(7), **venue(7), **ts(3)),
        ],
    ]


def test_orders_rebuilt_from_stored_events_equal_the_originals(store):
    histories = order_histories()
    originals = [Order.rebuild(events) for events in histories]
    # Interleave the orders' events across transactions, the way a live node would write them.
    rng = random.Random(5)
    queues = [list(h) for h in histories]
    while any(queues):
        with store.transaction() as tx:
            for _ in range(rng.randint(1, 3)):
                live = [q for q in queues if q]
                if live:
                    record_order_event(tx, rng.choice(live).pop(0), TOPIC)
    store = reopen(store)
    rebuilt = rebuild_orders(store.load())
    store.close()
    assert set(rebuilt) == {o.client_order_id for o in originals}
    for original in originals:
        back = rebuilt[original.client_order_id]
        assert type(back) is type(original)
        assert back.status == original.status
        assert back.filled_qty == original.filled_qty and back.leaves_qty == original.leaves_qty
        assert back.avg_px == original.avg_px
        assert back.to_dict() == original.to_dict()
        assert back.events == original.events
    statuses = {o.client_order_id: o.status for o in rebuilt.values()}
    assert statuses["O-S-001-1"] is OrderStatus.FILLED
    assert abs(rebuilt["O-S-001-1"].avg_px - Decimal("1.0999")) < Decimal("1e-20")
    assert statuses["O-S-001-2"] is OrderStatus.PARTIALLY_FILLED
    assert statuses["O-S-001-3"] is OrderStatus.CANCELED


def test_fills_reload_in_application_order(store):
    fills = [fill(1, "3", "1.10000", "T-a"), fill(2, "1", "1.10000", "T-b"), fill(1, "2", "1.10100", "T-c")]
    with store.transaction() as tx:
        for f in fills:
            record_order_event(tx, f, TOPIC)
    store = reopen(store)
    state = store.load()
    store.close()
    assert [f.position_id for f in state.position_fills] == ["P-1", "P-2", "P-1"]
    assert decode_fills(state) == fills


def test_load_after_reopen_gives_the_same_state(store):
    write_everything(store)
    for n in range(2, 6):
        with store.transaction() as tx:
            record_order_event(tx, init(n), TOPIC)
            tx.set_counter("orders:S-001", n)
    store.ack_outbox(3)
    before = store.load()
    for sync in ("NORMAL", "FULL", "EXTRA"):
        store = reopen(store, synchronous=sync)
        assert store.load() == before
    assert before.counters["orders:S-001"] == 5 and before.last_seq == 6 and before.acked_seq == 3
    with store.transaction() as tx:
        assert tx.emit(TOPIC, "X", b"") == 7  # the sequence carries on after a restart
    store.close()


def test_two_stores_in_one_process_share_nothing(tmp_path):
    with SqliteStateStore(tmp_path / "a.db") as a, SqliteStateStore(tmp_path / "b.db") as b:
        with a.transaction() as tx:
            tx.emit(TOPIC, "X", b"a")
            tx.set_counter("c", 1)
        with b.transaction() as tx:
            assert tx.next_seq() == 1  # not 2: b has its own sequence
            tx.add_outbox(1, TOPIC, "X", b"b")
            tx.put_blob("n", "k", b"b")
        assert a.load().counters == {"c": 1} and not a.load().blobs
        assert not b.load().counters and dict(b.load().blobs["n"]) == {"k": b"b"}
        assert [e.payload for e in a.outbox_after(0)] == [b"a"]
        assert [e.payload for e in b.outbox_after(0)] == [b"b"]


def test_same_file_cannot_be_opened_twice(store):
    with pytest.raises(StateStoreLockedError, match=str(store.path)):
        SqliteStateStore(store.path, lock_timeout=0)
    store.close()
    SqliteStateStore(store.path).close()  # closing releases it


HOLD_STORE = """
import sys
from node.persistence.store import SqliteStateStore
store = SqliteStateStore(sys.argv[1])
with store.transaction() as tx:
    tx.set_counter("held", 7)
print("ready", flush=True)
sys.stdin.read()  # hold it until killed
"""


def test_a_store_held_by_another_process_is_refused_then_taken_once_that_process_dies(tmp_path):
    path = tmp_path / "held.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_STORE, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "ready\n"
        with pytest.raises(StateStoreLockedError, match=str(path)):
            SqliteStateStore(path, lock_timeout=0.1)
        # A node restarted while the kernel still tears down the process it replaces waits for
        # that process's lock, and takes the store with what that process committed.
        opened: list = []
        waiter = threading.Thread(
            target=lambda: opened.append(SqliteStateStore(path, lock_timeout=60)), daemon=True
        )
        waiter.start()
        holder.kill()
        waiter.join(30)
        assert not waiter.is_alive() and opened, "the store was not taken once its holder died"
        with opened[0] as store:
            assert store.load().counters == {"held": 7}
    finally:
        holder.kill()
        holder.wait()


def test_closed_store_refuses_work(store):
    store.close()
    store.close()  # idempotent
    with pytest.raises(StateStoreClosedError):
        store.load()
    with pytest.raises(StateStoreClosedError), store.transaction():
        pass


def test_transactions_from_two_threads_serialise(store):
    def writer():
        for _ in range(50):
            with store.transaction() as tx:
                tx.emit(TOPIC, "X", b"")

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.seq for e in store.outbox_after(0)] == list(range(1, 201))


# -- outbox -----------------------------------------------------------------------------------------


def test_outbox_after_and_cumulative_ack(store):
    n = 1200  # more than one page
    for i in range(n // 3):
        with store.transaction() as tx:
            for _ in range(3):
                tx.emit(TOPIC, "X", str(i).encode())
    assert [e.seq for e in store.outbox_after(0)] == list(range(1, n + 1))
    assert [e.seq for e in store.outbox_after(1100)] == list(range(1101, n + 1))
    assert list(store.outbox_after(n)) == []
    store.ack_outbox(700)
    assert [e.seq for e in store.outbox_after(0)] == list(range(701, n + 1))
    store.ack_outbox(300)  # an older (duplicate) ack changes nothing
    assert store.load().acked_seq == 700
    assert next(iter(store.outbox_after(0))).seq == 701
    with pytest.raises(OutboxAckError, match="only 1200"):
        store.ack_outbox(n + 1)
    with pytest.raises(InvalidStateValueError):
        store.ack_outbox(-1)
    store = reopen(store)
    assert store.load().acked_seq == 700 and next(iter(store.outbox_after(0))).seq == 701
    store.ack_outbox(n)
    assert list(store.outbox_after(0)) == [] and store.load().last_seq == n
    store.close()


# -- corrupt or unusable files ----------------------------------------------------------------------


def filled_store(path: Path, transactions: int = 300) -> None:
    with SqliteStateStore(path, synchronous="NORMAL") as s:
        rng = random.Random(1)
        for i in range(transactions):
            with s.transaction() as tx:
                tx.append_order_event(f"O-{i}", "S", "X", rng.randbytes(300))
                tx.emit(TOPIC, "X", rng.randbytes(200))


def test_garbage_file_raises_corrupt_error_naming_the_file(store_path):
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(random.Random(2).randbytes(64 * 1024))
    with pytest.raises(StateStoreCorruptError) as info:
        SqliteStateStore(store_path)
    message = str(info.value)
    assert str(store_path) in message and "will not start" in message and "Move the file" in message
    assert info.value.path == store_path


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_truncated_database_raises_corrupt_error(store_path, keep):
    filled_store(store_path)
    size = store_path.stat().st_size
    os.truncate(store_path, int(size * keep) // 4096 * 4096)
    with pytest.raises(StateStoreCorruptError, match=str(store_path)):
        SqliteStateStore(store_path)


def test_truncated_header_raises_corrupt_error(store_path):
    filled_store(store_path, 5)
    os.truncate(store_path, 50)
    with pytest.raises(StateStoreCorruptError, match=str(store_path)):
        SqliteStateStore(store_path)


def test_damaged_page_fails_the_integrity_check(store_path):
    filled_store(store_path)
    with open(store_path, "r+b") as f:
        f.seek(4096 * 3)
        f.write(random.Random(3).randbytes(4096))
    with pytest.raises(StateStoreCorruptError, match="integrity check failed|malformed"):
        SqliteStateStore(store_path)


def test_foreign_sqlite_file_and_newer_schema_are_refused(tmp_path):
    import sqlite3

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StateStoreCorruptError, match="another application"):
        SqliteStateStore(foreign)
    newer = tmp_path / "newer.db"
    SqliteStateStore(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateStoreSchemaError, match="schema version 99"):
        SqliteStateStore(newer)


def test_unopenable_paths_raise_open_error(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StateStoreOpenError, match="directory"):
        SqliteStateStore(tmp_path / "dir.db")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StateStoreOpenError, match="cannot create its directory"):
        SqliteStateStore(tmp_path / "file" / "node.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_raises_open_error(store_path):
    filled_store(store_path, 1)
    store_path.chmod(0)
    try:
        with pytest.raises((StateStoreOpenError, StateStoreCorruptError), match=str(store_path)):
            SqliteStateStore(store_path)
    finally:
        store_path.chmod(0o600)


def test_empty_file_is_a_fresh_store(store_path):
    store_path.parent.mkdir(parents=True)
    store_path.touch()
    with SqliteStateStore(store_path) as s:
        assert s.load().is_empty


def test_node_store_imports_no_orchestrator_zmq_or_trio():
    code = (
        "import sys, node.persistence.store; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('orchestrator', 'zmq', 'trio')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_write_the_disk_refuses_is_rolled_back_and_named(tmp_path):
    """In a process whose files may not grow (RLIMIT_FSIZE, what a full disk does to SQLite), a
    commit raises StateStoreWriteError naming the file; what was stored before is intact."""
    code = textwrap.dedent(
        f"""
        import os, resource
        from node.persistence.store import SqliteStateStore, StateStoreWriteError
        path = {str(tmp_path / "node.sqlite")!r}
        with SqliteStateStore(path) as store:
            with store.transaction() as tx:
                tx.emit("events.a", "X", b"kept")
            size = max(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
            try:
                with store.transaction() as tx:
                    for i in range(100):
                        tx.put_blob("ns", str(i), b"x" * 4096)
            except StateStoreWriteError as exc:
                print("REFUSED", exc)
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            print("AFTER", [e.payload for e in store.outbox_after(0)], len(store.load().blobs))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    refused, after = result.stdout.splitlines()
    assert refused.startswith(f"REFUSED node state store {tmp_path / 'node.sqlite'}: a write failed")
    assert "Check the disk" in refused
    assert after == "AFTER [b'kept'] 0"


# -- crash simulation -------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import random, sys
    from node.persistence.store import SqliteStateStore

    path, sync, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    store = SqliteStateStore(path, synchronous=sync)
    seq = store.load().last_seq
    print("open", seq, flush=True)
    while True:
        with store.transaction() as tx:
            how = rng.randrange(3)  # the outbox run: event by event, as entries, or as columns
            run = range(seq + 1, seq + 1 + rng.randint(1, 3))
            for n in run:
                if how == 0:
                    assert tx.next_seq() == n
                tx.append_order_event(f"O-S-{n}", "S", "OrderX", str(n).encode())
                if how == 0:
                    tx.add_outbox(n, "events.order", "OrderX", str(n).encode())
            if how == 1:
                tx.append_outbox([(n, "events.order", "OrderX", str(n).encode()) for n in run])
            elif how == 2:
                k = len(run)
                tx.append_outbox_run(run[0], ["events.order"] * k, ["OrderX"] * k, [str(n).encode() for n in run])
            seq = run[-1]
            tx.put_account_state("SIM-001", str(seq).encode())
            tx.set_counter("orders:S", seq)
            tx.put_strategy_state("S", {"last": str(seq).encode(), "pad": rng.randbytes(rng.randint(0, 4000))})
        if rng.random() < 0.2:
            store.ack_outbox(max(0, seq - rng.randint(0, 5)))
        print(seq, flush=True)
    """
)


def read_until(proc: subprocess.Popen, target: int, deadline: float) -> int:
    """Read the child's progress lines until it reports ``target`` committed seqs; returns the last."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    last = 0
    try:
        while last < target:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                raise AssertionError("crash child made no progress before the deadline")
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"crash child exited early: {proc.stderr.read()}")
            word = line.split()
            last = int(word[1]) if word[0] == "open" else int(word[0])
            if word[0] == "open":
                target += last  # advance relative to where this incarnation started
    finally:
        sel.close()
    return last


def check_consistent(path: Path) -> int:
    with SqliteStateStore(path) as s:
        state = s.load()
        outbox = list(s.outbox_after(0))
    last = state.last_seq
    if last == 0:
        assert state.is_empty
        return 0
    # every seq has its state change, and every state change its seq
    assert list(state.orders) == [f"O-S-{n}" for n in range(1, last + 1)]
    assert all(o.events[0].payload == o.client_order_id[4:].encode() for o in state.orders.values())
    assert state.counters["orders:S"] == last
    assert state.accounts["SIM-001"] == str(last).encode()
    assert state.strategy_states["S"]["last"] == str(last).encode()
    # the outbox holds exactly the unacked seqs, contiguous
    assert 0 <= state.acked_seq <= last
    assert [e.seq for e in outbox] == list(range(state.acked_seq + 1, last + 1))
    assert all(e.payload == str(e.seq).encode() for e in outbox)
    return last


@pytest.mark.slow
def test_kill_minus_9_at_random_moments_leaves_a_consistent_store(tmp_path):
    path = tmp_path / "crash.db"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    deadline = time.monotonic() + 60
    committed = 0
    for i in range(20):
        sync = ("FULL", "NORMAL")[i % 2]
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), sync, str(rng.randrange(2**32))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            # every 7th: kill at once, possibly while the file is being created; else mid-stream
            target = 0 if i % 7 == 0 else rng.randint(1, 60)
            reported = read_until(proc, target, deadline) if target else 0
            # Spread the kill over the child's loop: the line arrives at a fixed point of it, so
            # killing at once would always hit the same spot. This picks the instant; nothing waits on it.
            time.sleep(rng.uniform(0, 0.002))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        last = check_consistent(path)
        assert last >= max(reported, committed), "a commit the child reported was lost"
        committed = last
    assert committed > 0


# -- a quick synchronous=FULL vs NORMAL figure (printed with -s; not an assertion) ------------------


@pytest.mark.slow
def test_throughput_full_vs_normal(tmp_path, capsys):
    rates = {}
    for sync in ("FULL", "NORMAL"):
        with SqliteStateStore(tmp_path / f"{sync}.db", synchronous=sync) as s:
            n, start = 300, time.perf_counter()
            payload = encode_event(SAMPLES["OrderFilled"])
            for i in range(n):
                with s.transaction() as tx:
                    tx.append_order_event(f"O-{i}", "S", "OrderFilled", payload)
                    tx.set_counter("orders:S", i)
                    tx.emit(TOPIC, "OrderFilled", payload)
            rates[sync] = n / (time.perf_counter() - start)
    with capsys.disabled():
        print(f"\nstate store tx/s: FULL {rates['FULL']:.0f}, NORMAL {rates['NORMAL']:.0f}")
    assert all(r > 0 for r in rates.values())


def test_copy_of_a_closed_store_is_a_valid_backup(store, tmp_path):
    write_everything(store)
    before = store.load()
    store.close()
    backup = tmp_path / "backup.db"
    shutil.copy(store.path, backup)
    with SqliteStateStore(backup) as b:
        assert b.load() == before


# -- forgetting what is closed ----------------------------------------------------------------------


def test_forget_order_and_position_drop_only_their_own_rows(store):
    with store.transaction() as tx:
        for n in (1, 2):
            tx.append_order_event(f"O-{n}", "S-1", "OrderInitialized", f"init {n}".encode())
            tx.append_position_fill(f"P-{n}", f"fill {n}".encode())
    with store.transaction() as tx:
        tx.forget_order("O-1")
        tx.forget_position("P-2")
        tx.forget_order("O-unknown")  # nothing to drop is not an error
    loaded = reopen(store).load()
    assert list(loaded.orders) == ["O-2"]
    assert [(f.position_id, f.payload) for f in loaded.position_fills] == [("P-1", b"fill 1")]


def test_a_forget_rolled_back_with_its_transaction_keeps_the_rows(store):
    with store.transaction() as tx:
        tx.append_order_event("O-1", "S-1", "OrderInitialized", b"init")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.forget_order("O-1")
        raise RuntimeError("crash mid-transaction")
    assert list(store.load().orders) == ["O-1"]


def test_append_outbox_takes_a_run_of_consecutive_seqs_and_refuses_a_gap(store):
    with store.transaction() as tx:
        assert tx.emit("events.t", "E", b"1") == 1
        tx.append_outbox([(2, "events.t", "E", b"2"), (3, "events.t", "E", b"3")])
        assert tx.emit("events.t", "E", b"4") == 4  # the sequence goes on after the run
    with pytest.raises(OutboxSequenceError, match="expected 5"), store.transaction() as tx:
        tx.append_outbox([(6, "events.t", "E", b"6")])  # 5 skipped: a gap
    with pytest.raises(OutboxSequenceError, match="expected 6"), store.transaction() as tx:
        tx.append_outbox([(5, "events.t", "E", b"5"), (5, "events.t", "E", b"5")])
    assert [(e.seq, e.payload) for e in store.outbox_after(0)] == [(1, b"1"), (2, b"2"), (3, b"3"), (4, b"4")]
    assert store.load().last_seq == 4


# -- the outbox as runs (schema version 2) ----------------------------------------------------------


def outbox_rows(path: Path) -> list[tuple]:
    """The outbox table as stored: ``(first_seq, last_seq, [topics, event_types, payloads])``."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT first_seq, last_seq, events FROM outbox ORDER BY first_seq").fetchall()
    finally:
        conn.close()
    return [(first, last, msgpack.unpackb(events, raw=False)) for first, last, events in rows]


def test_a_commit_is_one_outbox_row_whatever_the_calls_that_filled_it(store):
    with store.transaction() as tx:
        assert tx.emit("events.a", "E", b"1") == 1
        tx.append_outbox([(2, "events.b", "F", b"2")])
        seq = tx.next_seq()  # 3, added after the run below (out of order)
        tx.append_outbox_run(4, ["events.a", "events.c"], ["E", "G"], [b"4", bytearray(b"5")])
        tx.add_outbox(seq, "events.a", "E", b"3")
    with store.transaction() as tx:
        tx.append_outbox_run(6, ("events.a",) * 3, ("E",) * 3, (b"6", b"7", b"8"))
    with store.transaction() as tx:
        tx.set_counter("c", 1)  # no event: no row
    assert [(e.seq, e.topic, e.event_type, e.payload) for e in store.outbox_after(0)] == [
        (1, "events.a", "E", b"1"),
        (2, "events.b", "F", b"2"),
        (3, "events.a", "E", b"3"),
        (4, "events.a", "E", b"4"),
        (5, "events.c", "G", b"5"),
        (6, "events.a", "E", b"6"),
        (7, "events.a", "E", b"7"),
        (8, "events.a", "E", b"8"),
    ]
    store.close()
    assert outbox_rows(store.path) == [
        (1, 5, [["events.a", "events.b", "events.a", "events.a", "events.c"], ["E", "F", "E", "E", "G"],
                [b"1", b"2", b"3", b"4", b"5"]]),
        (6, 8, [["events.a"] * 3, ["E"] * 3, [b"6", b"7", b"8"]]),
    ]  # fmt: skip


def test_a_partly_acked_run_stays_and_only_its_unacked_events_are_resent(store):
    for _ in range(3):  # rows 1..4, 5..8, 9..12
        with store.transaction() as tx:
            for _ in range(4):
                tx.emit(TOPIC, "X", b"p")
    assert [e.seq for e in store.outbox_after(6)] == list(range(7, 13))  # from the middle of a row
    assert [e.seq for e in store.outbox_after(4)] == list(range(5, 13))  # from a row's end
    store.ack_outbox(6)
    for seq in (0, 3, 5, 6):  # whatever the caller asks, nothing acked comes back
        assert [e.seq for e in store.outbox_after(seq)] == list(range(7, 13))
    assert [e.seq for e in store.outbox_after(10)] == [11, 12]
    assert list(store.outbox_after(12)) == []
    store = reopen(store)
    assert store.load().acked_seq == 6 and [e.seq for e in store.outbox_after(0)] == list(range(7, 13))
    store.close()
    assert [(first, last) for first, last, _ in outbox_rows(store.path)] == [(5, 8), (9, 12)]
    store = reopen(store)
    store.ack_outbox(8)  # exactly a row's end: the row goes
    store.ack_outbox(11)
    with pytest.raises(OutboxAckError, match="only 12"):
        store.ack_outbox(13)
    assert [e.seq for e in store.outbox_after(0)] == [12]
    store.close()
    assert [(first, last) for first, last, _ in outbox_rows(store.path)] == [(9, 12)]
    store = reopen(store)
    store.ack_outbox(12)
    assert list(store.outbox_after(0)) == [] and store.load().last_seq == 12
    store.close()
    assert outbox_rows(store.path) == []


def test_an_ack_in_a_transaction_lands_with_its_commit_and_rolls_back_with_it(store):
    """``tx.ack_outbox``: the recorder's acks ride on its next commit (no transaction of their own)."""
    for _ in range(2):  # rows 1..3, 4..6
        with store.transaction() as tx:
            for _ in range(3):
                tx.emit(TOPIC, "X", b"p")
    with store.transaction() as tx:  # acks of earlier commits, with a new run: 7..8
        tx.ack_outbox(2)
        tx.ack_outbox(4)
        tx.ack_outbox(1)  # older: the highest one counts
        tx.append_outbox_run(7, (TOPIC, TOPIC), ("X", "X"), (b"7", b"8"))
        assert [e.seq for e in store.outbox_after(0)][0] == 1  # nothing acked before the commit
    assert store.load().acked_seq == 4 and [e.seq for e in store.outbox_after(0)] == [5, 6, 7, 8]
    store.close()
    assert [(first, last) for first, last, _ in outbox_rows(store.path)] == [(4, 6), (7, 8)]
    store = reopen(store)

    with pytest.raises(RuntimeError), store.transaction() as tx:  # a rolled back ack is undone
        tx.ack_outbox(8)
        raise RuntimeError("the commit failed")
    assert store.load().acked_seq == 4
    with pytest.raises(OutboxAckError, match="only 9"), store.transaction() as tx:  # never issued
        tx.emit(TOPIC, "X", b"9")
        tx.ack_outbox(10)
    assert store.load().last_seq == 8 and store.load().acked_seq == 4  # the whole commit rolled back
    with store.transaction() as tx:  # an ack may cover the run of its own commit
        tx.emit(TOPIC, "X", b"9")
        tx.ack_outbox(9)
    assert list(store.outbox_after(0)) == [] and store.load().acked_seq == 9
    store = reopen(store)
    assert store.load().acked_seq == 9 and store.load().last_seq == 9
    with store.transaction() as tx:
        with pytest.raises(InvalidStateValueError):
            tx.ack_outbox(-1)
    with store.transaction() as tx:
        pass
    with pytest.raises(TransactionClosedError):
        tx.ack_outbox(9)
    store.close()


def test_outbox_after_pages_through_many_long_runs(store):
    rows = store_module().OUTBOX_PAGE * 2 + 3
    for _ in range(rows):
        with store.transaction() as tx:
            first = tx.next_seq()
            tx.add_outbox(first, TOPIC, "X", str(first).encode())
            tx.append_outbox_run(
                first + 1, [TOPIC] * 9, ["X"] * 9, [str(first + i).encode() for i in range(1, 10)]
            )
    store.ack_outbox(15)
    out = list(store.outbox_after(0))
    assert [e.seq for e in out] == list(range(16, rows * 10 + 1))
    assert all(e.payload == str(e.seq).encode() for e in out)


def store_module():
    import node.persistence.store.sqlite as module

    return module


def test_append_outbox_run_checks_like_append_outbox(store):
    with pytest.raises(OutboxSequenceError, match="expected 1"), store.transaction() as tx:
        tx.append_outbox_run(2, [TOPIC], ["X"], [b""])
    with pytest.raises(InvalidStateValueError, match="different lengths"), store.transaction() as tx:
        tx.append_outbox_run(1, [TOPIC, TOPIC], ["X"], [b"", b""])
    bad_runs = [
        ([TOPIC], ["X"], ["not bytes"]),
        ([""], ["X"], [b""]),
        ([TOPIC], [""], [b""]),
        ([7], ["X"], [b""]),
        ([[TOPIC]], ["X"], [b""]),  # unhashable
        ([TOPIC, TOPIC], ["X", "X"], [b"", None]),
    ]
    for topics, types, payloads in bad_runs:
        with pytest.raises(InvalidStateValueError), store.transaction() as tx:
            tx.append_outbox_run(1, topics, types, payloads)
    bad_entries = [[(1, TOPIC, "X")], [(1, TOPIC, "X", b"", "extra")], [None], [(1, TOPIC, "X", "str")]]
    for entries in bad_entries:
        with pytest.raises(InvalidStateValueError), store.transaction() as tx:
            tx.append_outbox(entries)
    assert store.load().last_seq == 0 and list(store.outbox_after(0)) == []
    with store.transaction() as tx:  # identifiers (str subclasses) and bytes-likes are normalised
        tx.append_outbox_run(1, [TraderId("T-1")], [StrategyId("S-1")], [memoryview(b"m")])
        tx.append_outbox([(2, TOPIC, "X", bytearray(b"b"))])
    out = list(store.outbox_after(0))
    assert [(e.seq, e.topic, e.event_type, e.payload) for e in out] == [
        (1, "T-1", "S-1", b"m"),
        (2, TOPIC, "X", b"b"),
    ]
    assert type(out[0].topic) is str and type(out[0].payload) is bytes


V1_OUTBOX = """CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY,
    topic      TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload    BLOB NOT NULL
)"""


def make_v1(path: Path, events: list[tuple]) -> None:
    """Turn a closed store into a schema version 1 file whose outbox holds ``events`` (one row each)."""
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE outbox")
        conn.execute(V1_OUTBOX)
        conn.executemany("INSERT INTO outbox (seq, topic, event_type, payload) VALUES (?, ?, ?, ?)", events)
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def test_a_version_1_file_is_converted_on_open_and_nothing_else_changes(store, monkeypatch):
    write_everything(store)  # seqs 1, 2
    for n in range(2, 7):  # seqs 3..7
        with store.transaction() as tx:
            record_order_event(tx, init(n), TOPIC)
            tx.set_counter("orders:S-001", n)
    store.ack_outbox(2)
    before_state = store.load()
    before = [(e.seq, e.topic, e.event_type, e.payload) for e in store.outbox_after(0)]
    assert [e[0] for e in before] == [3, 4, 5, 6, 7]
    store.close()
    # as a version 1 node left it, plus a gap (seq 6 missing) a version 1 outbox should never have
    make_v1(store.path, [e for e in before if e[0] != 6])
    monkeypatch.setattr(store_module(), "MIGRATE_V1_RUN", 2)  # runs of at most 2: 3-4, 5, 7
    store = reopen(store)
    assert store.load() == before_state
    assert [(e.seq, e.topic, e.event_type, e.payload) for e in store.outbox_after(0)] == [
        e for e in before if e[0] != 6
    ]
    with store.transaction() as tx:
        assert tx.emit(TOPIC, "X", b"new") == 8  # the sequence carries on
    store.ack_outbox(4)
    store.close()
    assert [(first, last) for first, last, _ in outbox_rows(store.path)] == [(5, 5), (7, 7), (8, 8)]
    import sqlite3

    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'outbox%'").fetchall() == [
        ("outbox",)
    ]
    conn.close()


def test_a_version_1_file_with_an_empty_outbox_is_converted(store_path):
    with SqliteStateStore(store_path) as s:
        write_everything(s)
        s.ack_outbox(2)
        before = s.load()
    make_v1(store_path, [])
    with SqliteStateStore(store_path) as s:
        assert s.load() == before and list(s.outbox_after(0)) == []
        with s.transaction() as tx:
            assert tx.emit(TOPIC, "X", b"") == 3
        assert [e.seq for e in s.outbox_after(0)] == [3]


def test_a_damaged_outbox_row_is_reported_as_corruption_naming_the_file(store):
    with store.transaction() as tx:
        tx.emit(TOPIC, "X", b"1")
        tx.emit(TOPIC, "X", b"2")
    store.close()
    import sqlite3

    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute("UPDATE outbox SET last_seq = 3")  # claims 3 events, holds 2
    conn.close()
    store = reopen(store)
    with pytest.raises(StateStoreCorruptError, match=f"{store.path}.*outbox row 1..3"):
        list(store.outbox_after(0))
    store.close()
