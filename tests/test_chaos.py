"""Issue #5's proof: kill -9 trading nodes at random (and the orchestrator once); nothing lost or done twice.

The CI-sized run of ``tests/chaos_harness.py`` (checked by ``tests/chaos_check.py``): three sandbox nodes of ``configs/chaos.toml``
trading several times a second under a real ``orchestrator up`` process; 24 SIGKILLs of a random
node at random instants (seeded), each waited out until the node is RUNNING in a new incarnation;
once, in the middle, a SIGKILL of the orchestrator itself and a restart on the same runtime dir;
then ``orchestrator down`` and the checker on what is left on disk. About 15 s on 2 cores
(sized for the suite's budget; ``bench/chaos.py --kills 200`` is the long run).

The first tests prove the checker itself: a checker that cannot see a loss would make the chaos
test pass for nothing, so each kind of damage is planted in a journal (and a state store) by hand
and must be reported with its numbers.
"""

from __future__ import annotations

import shutil

import pytest
import trio

from node.common.clock import TestClock
from node.model.enums import LiquiditySide, OrderSide, OrderType
from node.model.events import OrderFilled, OrderSubmitted
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
from node.model.instruments import default_fx_pair
from node.model.objects import Currency, Money, Price, Quantity
from node.persistence.store import SqliteStateStore, encode_event
from node.trading.order_factory import OrderFactory
from orchestrator.journal import Journal, journal_path
from orchestrator.protocol import codec, messages
from tests.chaos_check import check_fleet, check_node, state_path
from tests.chaos_harness import ChaosPlan, run_chaos

EURUSD = default_fx_pair("EUR/USD", "SIM")
INSTRUMENTS = {"n": {str(EURUSD.id): EURUSD}}
PID = "EUR/USD.SIM-S-1"


def fill(coid: str, trade: str, side: str, px: str, qty: int = 1000, ts: int = 10) -> OrderFilled:
    return OrderFilled(
        trader_id=TraderId("T-1"),
        strategy_id=StrategyId("S"),
        instrument_id=InstrumentId.from_str("EUR/USD.SIM"),
        client_order_id=ClientOrderId(coid),
        venue_order_id=VenueOrderId(f"V-{coid}"),
        account_id=AccountId("SIM-001"),
        trade_id=TradeId(trade),
        position_id=PositionId(PID),
        order_side=OrderSide[side],
        order_type=OrderType.MARKET,
        last_qty=Quantity(qty, 0),
        last_px=Price.from_str(px),
        currency=Currency.from_str("USD"),
        commission=Money.from_str("0.02 USD"),
        liquidity_side=LiquiditySide.TAKER,
        ts_event=ts,
        ts_init=ts,
    )


def order(coid: str, **extra) -> dict:
    return {"client_order_id": coid, "instrument_id": "EUR/USD.SIM", **extra}


def position(kind: str, signed_qty: str, realized: str) -> tuple[str, dict]:
    return kind, {"position_id": PID, "signed_qty": signed_qty, "realized_pnl": realized}


def write_journal(runtime, frames: list[list[tuple[int, str, dict]]]) -> None:
    """One journal record per frame of ``(seq, type, data)``, as the orchestrator writes them."""
    with Journal(journal_path(runtime, "n"), fsync="never") as journal:
        for frame in frames:
            events = [[seq, seq * 10, "events.test", kind, data] for seq, kind, data in frame]
            journal.append(events[-1][0], codec.encode(messages.evt("n", 1, events)))


def test_the_checker_passes_a_consistent_journal(tmp_path):
    buy, sell = fill("O-1", "T-1", "BUY", "1.10000"), fill("O-2", "T-2", "SELL", "1.10010", ts=20)
    write_journal(
        tmp_path,
        [
            [(1, "OrderSubmitted", order("O-1")), (2, "OrderFilled", buy.to_dict())],
            [(3, *position("PositionOpened", "1000", "-0.02 USD"))],
            [(4, "OrderSubmitted", order("O-2")), (5, "OrderFilled", sell.to_dict())],
            [(6, *position("PositionClosed", "0", "0.06 USD"))],  # 0.10 gain - 2 x 0.02 commission
        ],
    )
    result = check_fleet(tmp_path, ["n"], INSTRUMENTS)
    assert result.ok, result.problems
    assert result.events == 6 and result.nodes["n"].fills == 2
    assert result.nodes["n"].open_at(35) == (0, 1), "between the orders (event ts = seq x 10): a position"
    assert result.nodes["n"].open_at(15) == (1, 0), "O-1 working"


def test_the_checker_reports_every_kind_of_loss_and_duplication(tmp_path):
    buy = fill("O-1", "T-1", "BUY", "1.10000")
    write_journal(
        tmp_path,
        [
            [(1, "OrderSubmitted", order("O-1")), (2, "OrderFilled", buy.to_dict())],
            [(2, "OrderFilled", buy.to_dict()), (3, *position("PositionOpened", "1000", "-0.02 USD"))],
            # seqs 4 and 5 lost; O-1 sent to the venue again; O-2 never heard of after its submit
            [(6, "OrderSubmitted", order("O-1")), (7, "OrderSubmitted", order("O-2"))],
            [
                (
                    8,
                    "OrderRejected",
                    order("O-1", reason="duplicate client order id O-1: venue SIM has..."),
                )
            ],
            [(9, *position("PositionChanged", "2000", "-0.04 USD"))],  # the node books a fill we never saw
        ],
    )
    check = check_node(tmp_path, "n", INSTRUMENTS["n"])
    assert check.missing_seqs == [4, 5] and check.duplicate_seqs == [2]
    assert check.duplicate_client_order_ids == {"O-1": 2} and check.duplicate_rejections == ["O-1"]
    assert check.unfinished_orders == ["O-2"]
    assert check.mismatched_positions == {PID}
    assert any("journal fills net 1000, the node's last event says 2000" in p for p in check.problems)
    result = check_fleet(tmp_path, ["n"], INSTRUMENTS)
    assert (result.lost_events, result.duplicate_events, result.duplicate_client_order_ids) == (2, 1, 2)
    assert (result.lost_orders, result.position_mismatches) == (1, 1)


def test_the_checker_compares_the_journal_with_the_nodes_state_store(tmp_path):
    buy, sell = fill("O-1", "T-1", "BUY", "1.10000"), fill("O-2", "T-2", "SELL", "1.10010", ts=20)
    write_journal(
        tmp_path,
        [[(1, "OrderSubmitted", order("O-1")), (2, "OrderFilled", buy.to_dict())]]
        + [[(3, *position("PositionOpened", "1000", "-0.02 USD"))]],
    )
    # The node stored what the journal has (seqs 1..3) and then a second fill (seq 4) that never
    # reached the journal: a loss the journal's seqs alone cannot show.
    with SqliteStateStore(state_path(tmp_path, "n")) as store:
        with store.transaction() as tx:
            for kind in ("OrderSubmitted", "OrderFilled", "PositionOpened"):
                tx.emit("events.test", kind, b"-")
            tx.append_position_fill(PID, encode_event(buy))
        with store.transaction() as tx:
            tx.append_position_fill(PID, encode_event(sell))
            tx.emit("events.test", "OrderFilled", b"-")
    check = check_node(tmp_path, "n", INSTRUMENTS["n"])
    assert not check.store_errors
    assert check.store_last_seq == 4 and check.unjournaled == 1
    assert check.fills_only_in_store == [f"{PID}/T-2/1000"] and not check.fills_only_in_journal
    assert PID in check.mismatched_positions
    assert any("store replay" in p for p in check.problems)


def test_the_store_may_forget_closed_positions_but_not_open_ones(tmp_path):
    buy = fill("O-1", "T-1", "BUY", "1.10000")
    write_journal(
        tmp_path,
        [[(1, "OrderSubmitted", order("O-1")), (2, "OrderFilled", buy.to_dict())]]
        + [[(3, *position("PositionOpened", "1000", "-0.02 USD"))]],
    )
    with SqliteStateStore(state_path(tmp_path, "n")) as store, store.transaction() as tx:
        for kind in ("OrderSubmitted", "OrderFilled", "PositionOpened"):  # seqs 1..3, no position kept
            tx.emit("events.order.S", kind, b"-")
    check = check_node(tmp_path, "n", INSTRUMENTS["n"])
    assert check.unjournaled == 0 and not check.fills_only_in_store
    assert check.position_mismatches == [f"position {PID}: open in the journal (net 1000), not in the store"]


def test_an_order_still_working_at_the_end_is_lost_unless_the_store_keeps_it(tmp_path):
    order_ = OrderFactory(TraderId("T-1"), StrategyId("S"), TestClock(5)).market(
        EURUSD.id, OrderSide.BUY, Quantity(1000, 0)
    )
    coid = str(order_.client_order_id)
    write_journal(tmp_path, [[(1, "OrderSubmitted", order(coid))]])
    assert check_node(tmp_path, "n").unfinished_orders == [coid], "no store: nobody remembers it"
    submitted = OrderSubmitted(
        trader_id=order_.trader_id,
        strategy_id=order_.strategy_id,
        instrument_id=order_.instrument_id,
        client_order_id=order_.client_order_id,
        account_id=AccountId("SIM-001"),
        ts_event=6,
        ts_init=6,
    )
    with SqliteStateStore(state_path(tmp_path, "n")) as store, store.transaction() as tx:
        tx.emit("events.test", "OrderInitialized", b"-")  # never streamed; the store keeps it
        for event in (order_.init_event, submitted):
            tx.append_order_event(
                event.client_order_id, event.strategy_id, type(event).__name__, encode_event(event)
            )
    check = check_node(tmp_path, "n")
    assert check.unfinished_orders == [] and check.open_at_end == [coid], check.problems
    assert not check.problems


@pytest.mark.trio
async def test_kill9_of_nodes_and_of_the_orchestrator_loses_nothing_and_does_nothing_twice(tmp_path):
    plan = ChaosPlan(kills=24, seed=5, nodes=3, orchestrator_kills=1)
    with trio.fail_after(150):  # bounds a broken run; the run itself takes ~30 s
        run = await run_chaos(plan, tmp_path)
    check = run.check
    print(run.summary())  # with -s: what the run did, restart latencies
    detail = f"{run.summary()}\n  " + "\n  ".join(check.problems[:40])
    assert len(run.kills) == 24 and len(run.orchestrator_kills) == 1, detail
    assert {k.node for k in run.kills} == set(run.node_ids), "every node was killed"
    # The run must have been worth checking: every node traded, and kills hit open books.
    for node_id, node_check in check.nodes.items():
        assert node_check.fills > 0 and node_check.submitted > 0, f"{node_id} traded; {detail}"
    open_books = sum(1 for k in run.kills if k.open_orders or k.open_positions)
    assert open_books >= 5, f"kills that hit an order working or a position open: {open_books}; {detail}"
    if check.problems:
        pytest.fail(f"the checker found problems: {detail}", pytrace=False)
    assert run.up_exit_codes[-1] == 0, (
        f"the final `orchestrator down` stopped every node cleanly (no signal needed); see "
        f"{run.runtime_dir}/logs/orchestrator.log; {detail}"
    )
    shutil.rmtree(run.runtime_dir, ignore_errors=True)  # kept when a check failed, for a look
