"""The simulated venue's durable state: a restored venue behaves exactly like the one it came from.

Real exchanges, real orders: an original venue is put through quotes and orders, its state is
taken (one ``snapshot()`` blob, or ``state_blobs()`` upserted into a dict as a store would), a
freshly built venue restores it, and then both get the same market data and commands and must emit
identical events (every field) and end in identical states.
"""

from __future__ import annotations

import gc

import anyio
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.backtest import venue_state
from node.backtest.exchange import SimulatedExchange
from node.backtest.matching import InstrumentBook, OrderStatusAtVenue, WorkingOrder
from node.backtest.venue_state import SEEN_CHUNK, VenueStateError
from node.common.clock import TestClock
from node.execution.messages import CancelAllOrders, CancelOrder, SubmitOrder
from node.live.sandbox import SandboxExecutionClient
from node.model.data import Bar, BarSpecification, BarType, QuoteTick, TradeTick
from node.model.enums import (
    AccountType,
    AggressorSide,
    BarAggregation,
    OmsType,
    OrderSide,
    PriceType,
    TimeInForce,
)
from node.model.events import AccountState, OrderCanceled, OrderCancelRejected, OrderFilled, OrderRejected
from node.model.identifiers import ClientOrderId, InstrumentId, StrategyId, TradeId, TraderId, Venue
from node.model.instruments import CurrencyPair, Equity, default_fx_pair
from node.model.objects import USD, Currency, Money
from node.trading.order_factory import OrderFactory

BUY, SELL = OrderSide.BUY, OrderSide.SELL
TRADER = TraderId("TRADER-001")
FX = default_fx_pair()  # EUR/USD.SIM: 5 decimals, unit size
EUR = Currency.from_str("EUR")
AAPL = Equity(
    InstrumentId("AAPL", "SIM"),
    USD,
    price_precision=2,
    size_precision=0,
    maker_fee="0.001",
    taker_fee="0.002",
)
BARS = Equity(  # an instrument that only ever sees bars (queued orders, next_open)
    InstrumentId("BARS", "SIM"), USD, price_precision=2, size_precision=0, maker_fee="0", taker_fee="0.001"
)
BAR_TYPE = BarType(BARS.id, BarSpecification(1, BarAggregation.MINUTE, PriceType.LAST))


def build(account_type=AccountType.MARGIN, venue="SIM", instruments=(FX, AAPL, BARS), oms=OmsType.NETTING):
    if account_type is AccountType.MARGIN:
        balances, base = [Money(1_000_000, USD)], USD
    else:
        balances, base = [Money(1_000_000, USD), Money(200_000, EUR)], None
    exchange = SimulatedExchange(
        Venue(venue), oms, account_type, balances, TestClock(1_000), base_currency=base
    )
    for instrument in instruments:
        exchange.add_instrument(instrument)
    events: list = []
    exchange.exec_client.bind(events.append)
    return exchange, events


class Script:
    """Steps (market data and commands) that can be played on several venues alike."""

    def __init__(self) -> None:
        self.clock = TestClock(1_000)
        self.factory = OrderFactory(TRADER, StrategyId("S-001"), self.clock)
        self.other = OrderFactory(TRADER, StrategyId("S-002"), self.clock)
        self.orders: dict = {}
        self.steps: list = []

    def _tick(self, dt: int = 1_000) -> int:
        self.clock.set_time(self.clock.timestamp_ns() + dt)
        return self.clock.timestamp_ns()

    def quote(self, bid, ask, bid_size=100_000, ask_size=100_000, instrument=FX):
        ts = self._tick()
        mk, mq = instrument.make_price, instrument.make_qty
        self.steps.append(
            ("quote", ts, QuoteTick(instrument.id, mk(bid), mk(ask), mq(bid_size), mq(ask_size), ts, ts))
        )

    def trade(self, price, instrument=AAPL):
        ts = self._tick()
        tick = TradeTick(
            instrument.id, instrument.make_price(price), instrument.make_qty(10), AggressorSide.SELLER,
            TradeId(f"X-{ts}"), ts, ts,
        )  # fmt: skip
        self.steps.append(("trade", ts, tick))

    def bar(self, o, h, low, c):
        ts = self._tick(60_000_000_000)
        mk = BARS.make_price
        self.steps.append(
            ("bar", ts, Bar(BAR_TYPE, mk(o), mk(h), mk(low), mk(c), BARS.make_qty(100), ts, ts))
        )

    def submit(self, order):
        self.orders[order.client_order_id] = order
        self.steps.append(("submit", self._tick(), order))
        return order

    def market(self, side, qty, instrument=FX, factory=None, **kw):
        f = factory or self.factory
        return self.submit(f.market(instrument.id, side, instrument.make_qty(qty), **kw))

    def limit(self, side, qty, price, instrument=FX, factory=None, **kw):
        f = factory or self.factory
        return self.submit(
            f.limit(instrument.id, side, instrument.make_qty(qty), instrument.make_price(price), **kw)
        )

    def stop(self, side, qty, trigger, instrument=FX, factory=None, **kw):
        f = factory or self.factory
        return self.submit(
            f.stop_market(instrument.id, side, instrument.make_qty(qty), instrument.make_price(trigger), **kw)
        )

    def cancel(self, order, strategy=None):
        self.steps.append(
            ("cancel", self._tick(), (order, StrategyId(strategy) if strategy else order.strategy_id))
        )

    def cancel_all(self, instrument=FX, strategy="S-001"):
        self.steps.append(("cancel_all", self._tick(), (instrument.id, StrategyId(strategy))))

    def take(self) -> list:
        steps, self.steps = self.steps, []
        return steps


def play(exchange: SimulatedExchange, steps) -> None:
    clock = exchange._clock
    for kind, ts, arg in steps:
        clock.set_time(ts)
        if kind == "quote":
            exchange.process_quote_tick(arg)
        elif kind == "trade":
            exchange.process_trade_tick(arg)
        elif kind == "bar":
            exchange.process_bar(arg)
        elif kind == "submit":
            exchange.submit_order(SubmitOrder(TRADER, arg.strategy_id, arg.instrument_id, ts, order=arg))
        elif kind == "cancel":
            order, strategy = arg
            exchange.cancel_order(
                CancelOrder(TRADER, strategy, order.instrument_id, ts, order.client_order_id)
            )
        else:
            exchange.cancel_all_orders(CancelAllOrders(TRADER, arg[1], arg[0], ts))


def plain(events) -> list:
    """Every field of every event (and its type): equal lists mean identical events."""
    return [(type(e).__name__, e.to_dict()) for e in events]


def restored_copy(original: SimulatedExchange, orders, how: str, store=None, **build_kw):
    exchange, events = build(
        original.account.account_type, str(original.venue), tuple(original.instruments), original.oms_type
    )
    exchange._clock.set_time(original._clock.timestamp_ns())
    if how == "snapshot":
        exchange.restore(original.snapshot(), orders)
    else:
        if store is None:
            store = dict(original.state_blobs(full=True))
        exchange.restore_blobs(store, orders)
    return exchange, events


def assert_same_future(a, a_events, b, b_events, steps) -> list:
    """Play ``steps`` on both venues; they must emit identical events and end in identical states."""
    ma, mb = len(a_events), len(b_events)
    play(a, steps)
    play(b, steps)
    assert plain(b_events[mb:]) == plain(a_events[ma:])
    assert b.snapshot() == a.snapshot()
    return a_events[ma:]


# -- a scripted session ------------------------------------------------------------------------


def margin_session():
    s = Script()
    s.quote("1.10000", "1.10010")
    s.trade("150.00")
    s.bar("50.00", "51.00", "49.00", "50.50")
    resting_buy = s.limit(BUY, 10_000, "1.09900")
    resting_sell = s.limit(SELL, 5_000, "1.10200")
    s.stop(BUY, 2_000, "1.10300")
    s.limit(BUY, 150_000, "1.10010")  # 100_000 at the touch now, 50_000 rests
    s.limit(SELL, 60_000, "1.10500", reduce_only=True)
    s.limit(SELL, 60_000, "1.10600", reduce_only=True)  # together they exceed the position
    canceled = s.limit(BUY, 1_000, "1.05000")
    s.cancel(canceled)
    s.market(BUY, 1_000)  # filled at once
    s.limit(BUY, 5, "150.50", instrument=AAPL)  # marketable against the last trade
    s.limit(SELL, 5, "151.00", instrument=AAPL, factory=s.other)
    s.submit(s.factory.limit(FX.id, BUY, FX.make_qty(3), FX.make_price("1.000001")))  # rejected: increment
    s.limit(BUY, 1_000, "1.10100", post_only=True)  # rejected: would take
    queued = s.market(BUY, 10, instrument=BARS)  # queued for the next bar's open
    s.stop(SELL, 10, "40.00", instrument=BARS)
    prefix = s.take()

    s.submit(resting_buy)  # a duplicate: refused, restored or not
    s.cancel(canceled)  # already canceled
    s.cancel(resting_sell, strategy="S-002")  # not that strategy's
    s.quote("1.09990", "1.10000")  # the partial's rest fills
    s.quote("1.10500", "1.10510")  # sell limit, stop, first reduce-only
    s.market(SELL, 50_000)
    s.quote("1.10600", "1.10610")  # second reduce-only: would now open a short
    s.trade("151.00")
    s.bar("48.00", "49.00", "39.00", "39.50")  # queued market at the open, then the stop
    s.limit(BUY, 1_000, "1.09000")
    s.cancel_all()
    s.cancel(queued)
    s.stop(SELL, 1_000, "1.10000")
    s.quote("1.09000", "1.09010")
    return s, prefix, s.take()


@pytest.mark.parametrize("how", ["snapshot", "blobs"])
def test_restored_margin_venue_emits_the_same_events_as_the_original(how):
    s, prefix, suffix = margin_session()
    a, a_events = build()
    a.initialize_account()
    play(a, prefix)
    kinds = {type(e) for e in a_events}
    assert {OrderFilled, OrderCanceled, OrderRejected, AccountState} <= kinds
    working = {wo.client_order_id: wo for wo in a.open_orders()}
    assert len(working) >= 8 and any(wo.leaves_raw < wo.quantity_raw for wo in working.values())
    assert any(wo.queued for wo in working.values())
    b, b_events = restored_copy(a, s.orders, how)
    assert b.snapshot() == a.snapshot()
    assert b.seen_client_order_ids() == a.seen_client_order_ids()
    assert [repr(wo) for wo in b.open_orders()] == [repr(wo) for wo in a.open_orders()]
    assert all(wo.order is s.orders[wo.client_order_id] for wo in b.open_orders())
    assert b.account.balances() == a.account.balances()
    assert b.account.net_position(FX.id) == a.account.net_position(FX.id)

    future = assert_same_future(a, a_events, b, b_events, suffix)
    texts = [getattr(e, "reason", None) or "" for e in future]
    assert any("duplicate client order id" in t for t in texts)
    assert any("reduce-only" in t for t in texts)
    assert any("already canceled" in t for t in texts)
    assert sum(isinstance(e, OrderFilled) for e in future) >= 5
    assert any(isinstance(e, OrderCancelRejected) for e in future)


def test_restored_cash_venue_with_shares_and_locks_behaves_the_same():
    s = Script()
    s.quote("1.10000", "1.10010")
    s.trade("100.00")
    s.market(BUY, 20, instrument=AAPL)  # shares: an instrument id in the ledger
    s.limit(SELL, 15, "105.00", instrument=AAPL)  # locks shares
    s.limit(SELL, 50_000, "1.11000")  # locks EUR
    s.limit(BUY, 100_000, "1.09000")  # locks USD
    s.limit(BUY, 10_000_000, "1.09000")  # rejected: insufficient balance
    prefix = s.take()
    s.trade("106.00")
    s.quote("1.11000", "1.11010")
    s.limit(SELL, 10, "100.00", instrument=AAPL)  # only 5 free shares left
    s.quote("1.08000", "1.08010")
    s.market(SELL, 200_000)
    suffix = s.take()
    for how in ("snapshot", "blobs"):
        a, a_events = build(AccountType.CASH)
        a.initialize_account()
        play(a, prefix)
        assert a.account.shares_raw(AAPL.id) == 20
        b, b_events = restored_copy(a, s.orders, how)
        future = assert_same_future(a, a_events, b, b_events, suffix)
        assert any(isinstance(e, OrderFilled) for e in future)
        assert any(isinstance(e, OrderRejected) for e in future)


def test_counters_continue_after_a_restore():
    s = Script()
    s.quote("1.10000", "1.10010")
    s.market(BUY, 1_000)
    s.limit(BUY, 1_000, "1.09000")
    prefix = s.take()
    a, a_events = build()
    play(a, prefix)
    b, b_events = restored_copy(a, s.orders, "snapshot")
    s.market(BUY, 1_000)
    future = assert_same_future(a, a_events, b, b_events, s.take())
    fill = next(e for e in future if isinstance(e, OrderFilled))
    assert (str(fill.venue_order_id), str(fill.trade_id)) == ("SIM-3", "SIM-T-2")
    assert (b._order_count, b._trade_count) == (3, 2)


def test_a_duplicate_client_order_id_is_refused_after_a_restore():
    s = Script()
    s.quote("1.10000", "1.10010")
    filled = s.market(BUY, 1_000)
    working = s.limit(BUY, 1_000, "1.09000")
    rejected = s.limit(BUY, 1_000, "1.10100", post_only=True)
    a, _ = build()
    play(a, s.take())
    for how in ("snapshot", "blobs"):
        b, b_events = restored_copy(a, s.orders, how)
        for order in (filled, working, rejected):
            assert b.has_seen(order.client_order_id)
            s.submit(order)
        play(b, s.take())
        assert [type(e) for e in b_events] == [OrderRejected] * 3
        assert all("duplicate client order id" in e.reason for e in b_events)
        assert len(b.open_orders()) == 1


# -- the incremental form (state_blobs) ----------------------------------------------------------


def many_orders_script(count: int):
    """``count`` orders: most rejected or filled (done), a few resting; quotes in between."""
    s = Script()
    s.quote("1.10000", "1.10010")
    for i in range(count):
        kind = i % 5
        if kind == 0:
            s.limit(BUY, 1_000, "1.10100", post_only=True)  # rejected
        elif kind == 1:
            s.market(BUY if i % 2 else SELL, 1_000)  # filled
        elif kind == 2:
            order = s.limit(BUY, 1_000, "1.09000")
            if i % 3:
                s.cancel(order)
        elif kind == 3:
            s.limit(SELL, 1_000, "1.10500")
        else:
            s.quote("1.10000" if i % 2 else "1.10490", "1.10010" if i % 2 else "1.10500")
    return s


def test_state_blobs_upserted_each_step_restore_the_venue_and_carry_on():
    s = many_orders_script(3 * SEEN_CHUNK)
    steps = s.take()
    a, a_events = build()
    store: dict = {}
    sizes = []
    for step in steps:
        play(a, [step])
        blobs = a.state_blobs()
        sizes.append(len(blobs))
        store.update(blobs)
    assert venue_state.seen_key(1) in store and max(sizes) <= 3  # the core + at most 2 chunks
    assert set(a.state_blobs()) == {"exchange"}  # nothing done since: the chunks are not rewritten
    b, b_events = restored_copy(a, s.orders, "blobs", store=store)
    assert b.snapshot() == a.snapshot()
    assert b.seen_client_order_ids() == a.seen_client_order_ids()

    # both go on taking blobs: what they write from now on is the same, chunk for chunk
    for i in range(SEEN_CHUNK):
        if i % 2:
            s.limit(BUY, 1_000, "1.10100", post_only=True)
        else:
            s.market(BUY, 1_000)
    later = s.take()
    a_store, b_store = dict(store), dict(store)
    for step in later:
        play(a, [step])
        play(b, [step])
        a_blobs, b_blobs = a.state_blobs(), b.state_blobs()
        assert a_blobs == b_blobs
        a_store.update(a_blobs)
        b_store.update(b_blobs)
    assert plain(b_events) == plain(a_events[-len(b_events) :])
    c, _ = restored_copy(a, s.orders, "blobs", store=b_store)
    assert c.snapshot() == a.snapshot()
    assert a.state_blobs(full=True).keys() == {k for k in a_store if k.startswith("seen.")} | {"exchange"}


def test_state_blobs_cost_does_not_grow_with_the_seen_ids():
    s = many_orders_script(2_000)
    a, _ = build()
    play(a, s.take())
    a.state_blobs()
    assert len(a._seen) > 1_500
    blobs = a.state_blobs()
    assert set(blobs) == {"exchange"}  # nothing new: the seen chunks are not rewritten
    assert len(blobs["exchange"]) < 20 * len(a.open_orders()) * 60 + 2_000


def test_stale_chunk_keys_beyond_the_count_are_ignored():
    s = many_orders_script(10)
    a, _ = build()
    play(a, s.take())
    store = dict(a.state_blobs())
    store[venue_state.seen_key(7)] = b"left over from an earlier life"
    b, _ = restored_copy(a, s.orders, "blobs", store=store)
    assert b.snapshot() == a.snapshot()


def test_a_venue_restored_with_many_seen_ids_refuses_each_and_explains_cancels_the_same():
    s = many_orders_script(4 * SEEN_CHUNK + 37)
    a, a_events = build()
    play(a, s.take())
    b, b_events = restored_copy(a, s.orders, "blobs")
    assert b.seen_client_order_ids() == a.seen_client_order_ids()
    assert all(type(coid) is ClientOrderId for coid in b.seen_client_order_ids())
    # the restore left done orders stored: decoded only if a cancel needs one
    assert sum(type(v) is venue_state.StoredOrders for v in b._seen.values()) > SEEN_CHUNK

    status = {coid: None if wo is None else wo.status for coid, wo in a._seen.items()}
    assert {None, OrderStatusAtVenue.FILLED, OrderStatusAtVenue.CANCELED} <= set(status.values())
    for order in list(s.orders.values()):
        s.submit(order)  # every id ever seen: a duplicate
    for coid, at_venue in status.items():
        order = s.orders[coid]
        if at_venue is not OrderStatusAtVenue.WORKING:
            s.cancel(order)  # rejected, filled or canceled: each says which
        s.cancel(order, strategy="S-002")  # another strategy's
    future = assert_same_future(a, a_events, b, b_events, s.take())

    rejected = [e for e in future if isinstance(e, OrderRejected)]
    assert len(rejected) == len(s.orders)
    assert all("duplicate client order id" in e.reason for e in rejected)
    reasons = [e.reason for e in future if isinstance(e, OrderCancelRejected)]
    done = sum(at_venue is not OrderStatusAtVenue.WORKING for at_venue in status.values())
    assert len(reasons) == len(status) + done
    for text in ("was rejected by venue", "is already filled", "is already canceled", "belongs to strategy"):
        assert any(text in r for r in reasons), text
    assert not any(type(v) is venue_state.StoredOrders for v in b._seen.values())  # all decoded by now


def rewrite_chunk(blob: bytes, edit) -> bytes:
    """A chunk blob after ``edit(head, records)``: head = [arrived ids, late ids, pending count]."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(blob)  # a stream: header, head, records
    (*header, _, _), head, *records = unpacker
    edit(head, records)
    packed_head, packed_records = msgpack.packb(head), b"".join(msgpack.packb(r) for r in records)
    return msgpack.packb([*header, len(packed_head), len(packed_records)]) + packed_head + packed_records


def test_a_damaged_done_order_record_is_refused_when_it_is_decoded():
    s = many_orders_script(SEEN_CHUNK + 20)
    a, _ = build()
    play(a, s.take())
    store = dict(a.state_blobs(full=True))
    key = venue_state.seen_key(0)
    damaged = []

    def damage(head, records):
        at = next(i for i, r in enumerate(records) if r)  # an order record (not None, not pending)
        damaged.append([*head[0], *head[1]][at])
        records[at][2] = "GONE.SIM"  # an instrument this venue does not trade

    store[key] = rewrite_chunk(store[key], damage)
    b, _ = restored_copy(a, s.orders, "blobs", store=store)  # checked when it is needed
    coid = damaged[0]
    assert b.has_seen(coid)
    s.cancel(s.orders[ClientOrderId(coid)])
    with pytest.raises(VenueStateError, match=f"{coid}.*GONE.SIM.*not traded"):
        play(b, s.take())


def test_restored_at_any_step_the_venue_writes_the_same_blobs_as_the_original():
    """Whatever state the chunks are in (the open one empty, partly filled, with pending and late
    records), the restored venue's StateLog carries on byte for byte like the original's."""
    s = many_orders_script(SEEN_CHUNK + 96)
    steps = s.take()
    a, _ = build()
    store: dict = {}
    outs, stores = [], []
    for step in steps:
        play(a, [step])
        outs.append(a.state_blobs())
        store.update(outs[-1])
        stores.append(dict(store))
    late = [msgpack.Unpacker(raw=False) for _ in range(2)]
    for unpacker, key in zip(late, [venue_state.seen_key(0), venue_state.seen_key(1)], strict=True):
        unpacker.feed(store[key])
    heads = [(next(u), next(u))[1] for u in late]
    assert heads[0][2] > 0 and heads[1][1]  # orders pending in chunk 0, done late in chunk 1
    new_chunk = {n for n in range(1, len(steps)) if len(stores[n]) != len(stores[n - 1])}
    empty_open_chunk = 0
    for n in sorted(new_chunk | {n - 1 for n in new_chunk} | set(range(0, len(steps), 37))):
        b, _ = build()
        b.restore_blobs(stores[n], s.orders)
        log = b._state_log
        empty_open_chunk += bool(log._closed) and not (log._arrived or log._late)
        for k in range(n + 1, min(n + 25, len(steps))):
            play(b, [steps[k]])
            assert b.state_blobs() == outs[k], (n, k)
    assert empty_open_chunk  # restored once with the last chunk just full


def test_venue_state_of_an_older_format_is_refused_saying_what_to_do():
    s = many_orders_script(40)
    a, _ = build()
    play(a, s.take())
    blobs = a.state_blobs(full=True)
    _, kind, core = msgpack.unpackb(blobs["exchange"])
    with pytest.raises(VenueStateError, match="older version of the node.*format version 1.*fresh state dir"):
        fresh().restore_blobs({**blobs, "exchange": msgpack.packb([1, kind, core])}, s.orders)
    _, kind, core, seen = msgpack.unpackb(a.snapshot())
    with pytest.raises(VenueStateError, match="older version of the node.*format version 1.*fresh state dir"):
        fresh().restore(msgpack.packb([1, kind, core, seen]), s.orders)


@pytest.mark.parametrize("enabled", [True, False])
def test_restore_blobs_puts_the_garbage_collector_back_as_it_was(enabled):
    s = many_orders_script(50)
    a, _ = build()
    play(a, s.take())
    blobs = a.state_blobs(full=True)
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        fresh().restore_blobs(blobs, s.orders)
        assert gc.isenabled() is enabled
        with pytest.raises(VenueStateError):
            fresh().restore_blobs({**blobs, venue_state.seen_key(0): b"\x93"}, s.orders)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


# -- what cannot be restored ---------------------------------------------------------------------


def scripted_venue():
    s, prefix, _ = margin_session()
    a, _ = build()
    a.initialize_account()
    play(a, prefix)
    return a, s.orders


def fresh():
    return build()[0]


def test_corrupt_truncated_or_foreign_snapshots_are_refused_with_advice():
    a, orders = scripted_venue()
    data = a.snapshot()
    bad = {
        "truncated": data[: len(data) // 2],
        "garbage": b"\xc1\x00\x01",
        "empty": b"",
        "not a list": msgpack.packb({"v": 1}),
    }
    for name, blob in bad.items():
        with pytest.raises(VenueStateError, match="fresh state dir") as info:
            fresh().restore(blob, orders)
        assert "cannot restore" in str(info.value), name
    version, kind, core, seen = msgpack.unpackb(data)
    with pytest.raises(VenueStateError, match="format version 99"):
        fresh().restore(msgpack.packb([99, kind, core, seen]), orders)
    with pytest.raises(VenueStateError, match="'full' record"):
        fresh().restore(msgpack.packb([version, "core", core]), orders)
    broken = dict(core, books=[[*core["books"][0][:6], [[0, "O-x", [1, 2]]]]])
    with pytest.raises(VenueStateError, match="malformed"):
        fresh().restore(msgpack.packb([version, kind, broken, seen]), orders)
    with pytest.raises(VenueStateError, match="seen client order ids"):
        fresh().restore(msgpack.packb([version, kind, core, seen[:-1]]), orders)
    with pytest.raises(VenueStateError, match="appears twice"):
        fresh().restore(msgpack.packb([version, kind, core, [*seen[:-1], seen[0]]]), orders)


def test_a_snapshot_only_restores_into_a_fresh_venue_of_the_same_config_and_instruments():
    a, orders = scripted_venue()
    data = a.snapshot()
    with pytest.raises(VenueStateError, match="venue 'SIM'"):
        fx_other = CurrencyPair(
            InstrumentId("EUR/USD", "OTHER"), EUR, USD, price_precision=5, size_precision=0
        )
        build(venue="OTHER", instruments=(fx_other,))[0].restore(data, orders)
    with pytest.raises(VenueStateError, match="oms_type"):
        build(oms=OmsType.HEDGING)[0].restore(data, orders)
    with pytest.raises(VenueStateError, match="account_type"):
        build(AccountType.CASH)[0].restore(data, orders)
    with pytest.raises(VenueStateError, match="AAPL.SIM.*not traded"):
        build(instruments=(FX, BARS))[0].restore(data, orders)
    coarse = CurrencyPair(FX.id, EUR, USD, price_precision=4, size_precision=0)
    with pytest.raises(VenueStateError, match="precision"):
        build(instruments=(coarse, AAPL, BARS))[0].restore(data, orders)
    used = fresh()
    used.restore(data, orders)
    with pytest.raises(VenueStateError, match="freshly built"):
        used.restore(data, orders)


def test_an_order_working_at_the_venue_but_missing_from_the_node_is_named():
    a, orders = scripted_venue()
    missing = a.open_orders()[2].client_order_id
    partial = {coid: o for coid, o in orders.items() if coid != missing}
    for how in ("snapshot", "blobs"):
        b = fresh()
        with pytest.raises(VenueStateError, match=f"order {missing} is working at the venue but is missing"):
            if how == "snapshot":
                b.restore(a.snapshot(), partial)
            else:
                b.restore_blobs(a.state_blobs(full=True), partial)
        assert not b._seen and not b.open_orders()  # nothing half-restored


def test_done_orders_missing_from_the_node_restore_unlinked():
    a, orders = scripted_venue()
    working = {wo.client_order_id for wo in a.open_orders()}
    only_working = {coid: o for coid, o in orders.items() if coid in working}
    b = fresh()
    b.restore(a.snapshot(), only_working)
    assert b.snapshot() == a.snapshot()
    done = [wo for wo in b._seen.values() if wo is not None and wo.status is not OrderStatusAtVenue.WORKING]
    assert done and all(wo.order is None for wo in done)


def test_an_order_of_another_instrument_or_side_in_the_node_is_refused():
    a, orders = scripted_venue()
    wo = a.open_orders()[0]
    impostor = OrderFactory(TRADER, StrategyId("S-001"), TestClock(0)).limit(
        FX.id, SELL if wo.is_buy else BUY, FX.make_qty(1), FX.make_price("1.0")
    )
    with pytest.raises(VenueStateError, match="is not the one the venue holds"):
        fresh().restore(a.snapshot(), {**orders, wo.client_order_id: impostor})


def test_damaged_blobs_are_refused():
    s = many_orders_script(2 * SEEN_CHUNK)
    a, _ = build()
    blobs: dict = {}
    for step in s.take():  # a commit per step: chunks with pending and late orders
        play(a, [step])
        blobs.update(a.state_blobs())
    first, second = venue_state.seen_key(0), venue_state.seen_key(1)

    def edited(key, edit):
        return {**blobs, key: rewrite_chunk(blobs[key], edit)}

    def twice(head, _):
        head[0][1] = head[0][0]

    def not_a_string(head, _):
        head[0][3] = 12

    def pending_off(head, _):
        head[2] += 1

    def late_never_arrived(head, _):
        head[1][0] = "O-NEVER-1"

    cases = {
        "no core": ({k: v for k, v in blobs.items() if k != "exchange"}, "no 'exchange' blob"),
        "chunk missing": ({k: v for k, v in blobs.items() if k != first}, "missing"),
        "chunk truncated": ({**blobs, first: blobs[first][:-7]}, "truncated"),
        "chunk swapped": ({**blobs, first: blobs[second]}, "says it is chunk 1"),
        "core truncated": ({**blobs, "exchange": blobs["exchange"][:-3]}, "not valid msgpack"),
        "an id twice": (edited(first, twice), "arrived twice"),
        "an id not a string": (edited(first, not_a_string), "not a string"),
        "pending count off": (edited(first, pending_off), "working when their chunk closed"),
        "a late id never seen": (edited(second, late_never_arrived), "never arrived"),
    }
    for name, (store, what) in cases.items():
        with pytest.raises(VenueStateError, match="cannot restore") as info:
            fresh().restore_blobs(store, s.orders)
        assert what in str(info.value), name


def test_the_format_knows_every_field_of_the_venue():
    """A field added to the venue must be added to venue_state too (this test then needs updating)."""
    exchange = fresh()
    assert set(vars(exchange)) == {
        "venue", "oms_type", "account_id", "account", "bar_execution", "reject_stop_orders_in_market",
        "_fill_at_close", "_clock", "_books", "_seen", "_order_count", "_trade_count", "_last_reported",
        "_state_log", "exec_client",
    }  # fmt: skip
    assert set(vars(exchange.account)) == {
        "account_id", "account_type", "base_currency", "_starting", "_rules",
        "_totals", "_locks", "_locked", "_positions", "_maint_raw",
    }  # fmt: skip
    assert InstrumentBook.__slots__ == ("instrument", "quote", "trade", "bar", "orders", "_index")
    assert len(WorkingOrder.__slots__) == 16


# -- the sandbox client ----------------------------------------------------------------------------


def test_sandbox_client_persists_and_a_restored_venue_does_not_report_its_account_again():
    s, prefix, suffix = margin_session()
    a, _ = build()
    client_a = SandboxExecutionClient(a)
    a_events: list = []
    client_a.bind(a_events.append)
    assert SandboxExecutionClient.persists_state is True
    anyio.run(client_a.reconcile_async)
    assert [type(e) for e in a_events] == [AccountState]
    play(a, prefix)
    store = dict(client_a.state_blobs())

    b, _ = build()
    client_b = SandboxExecutionClient(b)
    b_events: list = []
    client_b.bind(b_events.append)
    client_b.restore_state(store, s.orders)
    anyio.run(client_b.reconcile_async)
    assert b_events == [] and client_b.restored
    assert_same_future(a, a_events, b, b_events, suffix)

    c, _ = build()
    client_c = SandboxExecutionClient(c)
    c_events: list = []
    client_c.bind(c_events.append)
    client_c.restore_state({}, {})  # a first start: nothing stored
    anyio.run(client_c.reconcile_async)
    assert [type(e) for e in c_events] == [AccountState] and not client_c.restored


def test_a_venue_stored_before_it_ever_reported_its_account_reports_it_after_a_restore():
    a, _ = build()
    client_a = SandboxExecutionClient(a)
    store = dict(client_a.state_blobs())  # a commit before reconciliation ran
    b, _ = build()
    client_b = SandboxExecutionClient(b)
    events: list = []
    client_b.bind(events.append)
    client_b.restore_state(store, {})
    anyio.run(client_b.reconcile_async)
    assert [type(e) for e in events] == [AccountState] and b.account_reported


# -- random sessions -----------------------------------------------------------------------------

_op = st.one_of(
    st.tuples(st.just("quote"), st.integers(-60, 60), st.integers(1, 4), st.integers(0, 3)),
    st.tuples(st.just("limit"), st.booleans(), st.integers(1, 60), st.integers(-40, 40), st.integers(0, 5)),
    st.tuples(st.just("market"), st.booleans(), st.integers(1, 60), st.integers(0, 1), st.integers(0, 1)),
    st.tuples(st.just("stop"), st.booleans(), st.integers(1, 60), st.integers(-40, 40), st.integers(0, 1)),
    st.tuples(st.just("cancel"), st.integers(0, 50), st.just(0), st.just(0)),
    st.tuples(st.just("resubmit"), st.integers(0, 50), st.just(0), st.just(0)),
    st.tuples(st.just("cancel_all"), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("bar"), st.integers(-30, 30), st.integers(0, 20), st.integers(0, 20)),
)


def _script(s: Script, ops, mid: list) -> None:
    """Turn random ops into steps: prices around a moving mid (in increments), sizes in lots."""
    tif = (TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)
    placed = list(s.orders.values())
    for kind, a, b, c, *rest in ops:
        flag = rest[0] if rest else 0
        if kind == "quote":
            mid[0] += a * 10
            bid = mid[0]
            s.quote(f"{bid / 1e5:.5f}", f"{(bid + b * 10) / 1e5:.5f}", 10_000 * (c + 1), 10_000 * (c or 1))
        elif kind == "limit":
            px = f"{(mid[0] + c * 10) / 1e5:.5f}"
            if flag < 5:
                placed.append(s.limit(BUY if a else SELL, b * 1_000, px, time_in_force=tif[flag]))
            else:
                placed.append(s.limit(BUY if a else SELL, b * 1_000, px, post_only=True))
        elif kind == "market":
            placed.append(s.market(BUY if a else SELL, b * 1_000, reduce_only=bool(c)))
        elif kind == "stop":
            placed.append(s.stop(BUY if a else SELL, b * 1_000, f"{(mid[0] + c * 10) / 1e5:.5f}"))
        elif kind in ("cancel", "resubmit") and placed:
            order = placed[a % len(placed)]
            s.cancel(order) if kind == "cancel" else s.submit(order)
        elif kind == "cancel_all":
            s.cancel_all()
        elif kind == "bar":
            o = 5_000 + a
            s.bar(f"{o / 100:.2f}", f"{(o + b) / 100:.2f}", f"{(o - c) / 100:.2f}", f"{o / 100:.2f}")
            placed.append(s.market(BUY if a % 2 else SELL, 5, instrument=BARS))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(_op, max_size=40),
    after=st.lists(_op, max_size=40),
    how=st.sampled_from(["snapshot", "blobs"]),
)
def test_random_sessions_restored_at_any_point_continue_identically(before, after, how):
    s = Script()
    mid = [110_000]
    s.quote("1.10000", "1.10010")
    _script(s, before, mid)
    a, a_events = build()
    a.initialize_account()
    store: dict = {}
    for step in s.take():
        play(a, [step])
        store.update(a.state_blobs())  # as the node's recorder would, at every commit
    b, b_events = restored_copy(a, s.orders, how, store=store)
    _script(s, after, mid)
    assert_same_future(a, a_events, b, b_events, s.take())


def test_restore_keeps_client_order_ids_the_node_uses():
    a, orders = scripted_venue()
    b = fresh()
    b.restore(a.snapshot(), orders)
    for wo in b.open_orders():
        assert type(wo.client_order_id) is ClientOrderId
        assert wo.order.client_order_id == wo.client_order_id
