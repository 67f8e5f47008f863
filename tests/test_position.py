"""Position arithmetic (hand-computed), its guards, and position/account events."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from node.model.enums import AccountType, LiquiditySide, OrderSide, OrderType, PositionSide
from node.model.events import (
    AccountBalance,
    AccountState,
    InvalidAccountBalanceError,
    InvalidEventError,
    OrderFilled,
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
from node.model.instruments import Equity, default_fx_pair
from node.model.objects import CURRENCIES, USD, Money, Price, Quantity
from node.model.position import DuplicatePositionFillError, InvalidPositionError, Position

BUY, SELL = OrderSide.BUY, OrderSide.SELL
EURUSD = default_fx_pair()  # price precision 5, size precision 0, USD quote, multiplier 1
POSITION_ID = PositionId("P-1")


def equity(multiplier: int = 1, price_precision: int = 2) -> Equity:
    return Equity(
        InstrumentId.from_str("ACME.XNAS"),
        USD,
        price_precision=price_precision,
        size_precision=0,
        multiplier=Quantity(multiplier, 0),
    )


def fill(
    instrument,
    side: OrderSide,
    qty: str,
    px: str,
    trade: str,
    order: str = "O-1",
    commission: Money | None = None,
    ts: int = 1_000,
    position_id: PositionId | None = POSITION_ID,
) -> OrderFilled:
    return OrderFilled(
        trader_id=TraderId("TRADER-001"),
        strategy_id=StrategyId("S-001"),
        instrument_id=instrument.id,
        client_order_id=ClientOrderId(order),
        venue_order_id=VenueOrderId(f"V-{order}"),
        account_id=AccountId("SIM-001"),
        trade_id=TradeId(trade),
        position_id=position_id,
        order_side=side,
        order_type=OrderType.MARKET,
        last_qty=Quantity.from_str(qty),
        last_px=Price.from_str(px),
        currency=instrument.quote_currency,
        commission=commission if commission is not None else Money(0, instrument.quote_currency),
        liquidity_side=LiquiditySide.TAKER,
        ts_event=ts,
        ts_init=ts + 1,
    )


def usd(amount: str) -> Money:
    return Money(amount, USD)


def test_long_open_add_reduce_close_hand_computed():
    p = Position(EURUSD, fill(EURUSD, BUY, "100000", "1.00000", "T-1", "O-1", usd("2.00"), ts=1_000))
    assert (p.side, p.entry, p.signed_qty, p.quantity) == (
        PositionSide.LONG,
        BUY,
        Decimal(100000),
        Quantity(100000, 0),
    )
    assert p.is_open and p.is_long and not p.is_short
    assert p.avg_px_open == Decimal("1.00000")
    assert p.realized_pnl == usd("-2.00")  # the commission alone
    assert p.unrealized_pnl(Price.from_str("1.00050")) == usd("50.00")  # 0.0005 * 100000
    assert p.total_pnl(Price.from_str("1.00050")) == usd("48.00")
    assert p.notional_value(Price.from_str("1.00050")) == usd("100050.00")

    # add 50k at 1.00030: (100000 * 1.0 + 50000 * 1.0003) / 150000 = 1.0001
    p.apply(fill(EURUSD, BUY, "50000", "1.00030", "T-2", "O-2", usd("1.00"), ts=2_000))
    assert p.avg_px_open == Decimal("1.0001")
    assert p.quantity == Quantity(150000, 0)
    assert p.peak_qty == Quantity(150000, 0)
    assert p.realized_pnl == usd("-3.00")

    # reduce 60k at 1.00060: (1.0006 - 1.0001) * 60000 = 30.00, minus 1.20 commission
    p.apply(fill(EURUSD, SELL, "60000", "1.00060", "T-3", "O-3", usd("1.20"), ts=3_000))
    assert p.side is PositionSide.LONG
    assert p.signed_qty == Decimal(90000)
    assert p.realized_pnl == usd("25.80")
    assert p.avg_px_close == Decimal("1.0006")
    assert p.avg_px_open == Decimal("1.0001")  # reducing does not move the entry price
    assert p.ts_closed is None and p.closing_order_id is None

    # close 90k at 1.00000: (1.0 - 1.0001) * 90000 = -9.00, minus 1.80 commission
    p.apply(fill(EURUSD, SELL, "90000", "1.00000", "T-4", "O-4", usd("1.80"), ts=4_500))
    assert p.side is PositionSide.FLAT and p.is_closed and not p.is_open
    assert p.signed_qty == 0 and p.quantity.is_zero()
    assert p.realized_pnl == usd("15.00")
    assert p.commissions == usd("6.00")
    # (1.0006 * 60000 + 1.0 * 90000) / 150000
    assert p.avg_px_close == Decimal("1.00024")
    assert p.peak_qty == Quantity(150000, 0)
    assert p.closing_order_id == ClientOrderId("O-4")
    assert (p.ts_opened, p.ts_closed, p.duration_ns, p.ts_last) == (1_000, 4_500, 3_500, 4_500)
    assert p.unrealized_pnl(Price.from_str("2.00000")) == usd("0.00")
    assert p.trade_ids == [TradeId("T-1"), TradeId("T-2"), TradeId("T-3"), TradeId("T-4")]
    assert len(p.events) == 4


def test_short_with_multiplier_hand_computed():
    inst = equity(multiplier=10)
    p = Position(inst, fill(inst, SELL, "10", "100.00", "T-1"))
    assert p.side is PositionSide.SHORT and p.is_short
    assert p.signed_qty == Decimal(-10)
    assert p.quantity == Quantity(10, 0)
    assert p.entry is SELL
    # short loses when the price rises: (100 - 101.50) * 10 * 10
    assert p.unrealized_pnl(Price.from_str("101.50")) == usd("-150.00")
    assert p.unrealized_pnl(Price.from_str("98.00")) == usd("200.00")
    assert p.notional_value(Price.from_str("101.50")) == usd("10150.00")
    # add 5 more at 103.00: (10 * 100 + 5 * 103) / 15 = 101
    p.apply(fill(inst, SELL, "5", "103.00", "T-2"))
    assert p.avg_px_open == Decimal(101)
    # cover 4 at 99.00: (101 - 99) * 4 * 10 = 80
    p.apply(fill(inst, BUY, "4", "99.00", "T-3"))
    assert p.realized_pnl == usd("80.00")
    assert p.signed_qty == Decimal(-11)
    assert p.side is PositionSide.SHORT


def test_flip_through_zero_realizes_closed_part_and_reopens_at_fill_price():
    inst = equity()
    p = Position(inst, fill(inst, BUY, "10", "100.00", "T-1", "O-1", ts=100))
    p.apply(fill(inst, SELL, "15", "104.00", "T-2", "O-2", usd("3.00"), ts=200))
    # closed part: (104 - 100) * 10 = 40, minus the whole fill's commission 3
    assert p.realized_pnl == usd("37.00")
    assert p.side is PositionSide.SHORT
    assert p.signed_qty == Decimal(-5)
    assert p.entry is SELL
    assert p.avg_px_open == Decimal("104.00")
    assert p.avg_px_close is None  # the new leg has closed nothing yet
    assert p.opening_order_id == ClientOrderId("O-2")
    assert p.closing_order_id is None
    assert p.ts_opened == 200 and p.ts_closed is None
    assert p.peak_qty == Quantity(10, 0)  # over the whole life
    # cover the short leg: (104 - 103) * 5 = 5
    p.apply(fill(inst, BUY, "5", "103.00", "T-3", "O-3", ts=260))
    assert p.realized_pnl == usd("42.00")
    assert p.is_closed
    assert p.avg_px_close == Decimal("103.00")
    assert p.duration_ns == 60
    assert p.commissions == usd("3.00")


def test_money_is_rounded_half_even_per_fill():
    inst = equity(price_precision=3)
    p = Position(inst, fill(inst, BUY, "2", "1.000", "T-1"))
    p.apply(fill(inst, SELL, "1", "1.125", "T-2"))  # 0.125 -> 0.12
    assert p.realized_pnl == usd("0.12")
    assert p.unrealized_pnl(Price.from_str("1.135")) == usd("0.14")  # 0.135 -> 0.14
    p.apply(fill(inst, SELL, "1", "1.135", "T-3"))
    assert p.realized_pnl == usd("0.26")


def test_unrealized_pnl_is_in_settlement_currency_and_excludes_commission():
    p = Position(EURUSD, fill(EURUSD, SELL, "1000", "1.10000", "T-1", commission=usd("5.00")))
    unrealized = p.unrealized_pnl(Price.from_str("1.09000"))
    assert unrealized == usd("10.00")
    assert unrealized.currency == USD
    assert p.total_pnl(Price.from_str("1.09000")) == usd("5.00")


def test_duplicate_trade_id_raises_and_changes_nothing():
    p = Position(EURUSD, fill(EURUSD, BUY, "100", "1.00000", "T-1"))
    with pytest.raises(DuplicatePositionFillError, match="T-1"):
        p.apply(fill(EURUSD, BUY, "100", "1.00000", "T-1"))
    assert p.quantity == Quantity(100, 0)
    assert len(p.events) == 1


def test_closed_position_refuses_more_fills():
    p = Position(EURUSD, fill(EURUSD, BUY, "100", "1.00000", "T-1"))
    p.apply(fill(EURUSD, SELL, "100", "1.00000", "T-2"))
    with pytest.raises(InvalidPositionError, match="closed"):
        p.apply(fill(EURUSD, BUY, "1", "1.00000", "T-3"))


def test_guards_on_open_and_apply():
    with pytest.raises(InvalidPositionError, match="position_id"):
        Position(EURUSD, fill(EURUSD, BUY, "1", "1.00000", "T-1", position_id=None))
    with pytest.raises(InvalidPositionError, match="ACME"):
        Position(EURUSD, fill(equity(), BUY, "1", "1.00", "T-1"))
    p = Position(EURUSD, fill(EURUSD, BUY, "1", "1.00000", "T-1"))
    with pytest.raises(InvalidPositionError, match="P-2"):
        p.apply(fill(EURUSD, BUY, "1", "1.00000", "T-2", position_id=PositionId("P-2")))
    with pytest.raises(InvalidPositionError, match="settlement currency"):
        p.apply(fill(EURUSD, BUY, "1", "1.00000", "T-3", commission=Money("1", CURRENCIES["EUR"])))
    with pytest.raises(InvalidPositionError, match="size"):
        p.apply(fill(EURUSD, BUY, "1.5", "1.00000", "T-4"))
    # a zero commission in another currency is harmless
    p.apply(fill(EURUSD, BUY, "1", "1.00000", "T-5", commission=Money(0, CURRENCIES["EUR"])))
    assert p.quantity == Quantity(2, 0)
    assert p.commissions == usd("0.00")


def test_is_opposite_side():
    p = Position(EURUSD, fill(EURUSD, BUY, "1", "1.00000", "T-1"))
    assert p.is_opposite_side(SELL) and not p.is_opposite_side(BUY)


def test_position_events_snapshot_and_to_dict():
    inst = equity()
    first = fill(inst, BUY, "10", "100.00", "T-1", "O-1", usd("1.00"), ts=100)
    p = Position(inst, first)
    opened = PositionOpened.create(p, first, p.unrealized_pnl(first.last_px))
    data = opened.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "type": "PositionOpened",
        "trader_id": "TRADER-001",
        "strategy_id": "S-001",
        "instrument_id": "ACME.XNAS",
        "position_id": "P-1",
        "account_id": "SIM-001",
        "opening_order_id": "O-1",
        "closing_order_id": None,
        "entry": "BUY",
        "side": "LONG",
        "signed_qty": "10",
        "quantity": "10",
        "peak_qty": "10",
        "last_qty": "10",
        "last_px": "100.00",
        "currency": "USD",
        "avg_px_open": "100.00",
        "avg_px_close": None,
        "realized_pnl": "-1.00 USD",
        "unrealized_pnl": "0.00 USD",
        "ts_opened": 100,
        "ts_closed": None,
        "duration_ns": 0,
        "ts_event": 100,
        "ts_init": 101,
    }
    with pytest.raises(InvalidEventError, match="PositionChanged instead"):
        PositionClosed.create(p, first, p.unrealized_pnl(first.last_px))

    last = fill(inst, SELL, "10", "101.00", "T-2", "O-2", ts=400)
    p.apply(last)
    closed = PositionClosed.create(p, last, p.unrealized_pnl(last.last_px)).to_dict()
    assert closed["type"] == "PositionClosed"
    assert closed["side"] == "FLAT"
    assert closed["realized_pnl"] == "9.00 USD"
    assert closed["avg_px_close"] == "101.00"
    assert (closed["ts_closed"], closed["duration_ns"]) == (400, 300)
    assert closed["closing_order_id"] == "O-2"
    changed = PositionChanged.create(p, last, usd("0")).to_dict()
    assert changed["type"] == "PositionChanged"


def test_position_to_dict_is_json_serialisable():
    p = Position(EURUSD, fill(EURUSD, BUY, "1000", "1.10000", "T-1", commission=usd("0.50")))
    data = p.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["side"] == "LONG" and data["realized_pnl"] == "-0.50 USD" and data["avg_px_open"] == "1.10000"


def test_account_balance_must_add_up_in_one_currency():
    AccountBalance(total=usd("10.00"), locked=usd("3.00"), free=usd("7.00"))
    with pytest.raises(InvalidAccountBalanceError, match="does not add up"):
        AccountBalance(total=usd("10.00"), locked=usd("3.00"), free=usd("6.00"))
    with pytest.raises(InvalidAccountBalanceError, match="mixes currencies"):
        AccountBalance(total=usd("10.00"), locked=Money(3, CURRENCIES["EUR"]), free=usd("7.00"))


def test_account_state_to_dict_and_validation():
    usd_balance = AccountBalance(total=usd("1000.00"), locked=usd("0.00"), free=usd("1000.00"))
    state = AccountState(
        account_id=AccountId("SIM-001"),
        account_type=AccountType.MARGIN,
        base_currency=USD,
        balances=(usd_balance,),
        is_reported=False,
        ts_event=5,
        ts_init=6,
    )
    data = state.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["type"] == "AccountState"
    assert data["account_type"] == "MARGIN"
    assert data["base_currency"] == "USD"
    assert data["balances"] == [{"total": "1000.00 USD", "locked": "0.00 USD", "free": "1000.00 USD"}]
    with pytest.raises(InvalidEventError, match="twice"):
        AccountState(
            account_id=AccountId("SIM-001"),
            account_type=AccountType.CASH,
            base_currency=None,
            balances=(usd_balance, usd_balance),
            is_reported=True,
            ts_event=5,
            ts_init=6,
        )
    with pytest.raises(InvalidEventError, match="balances"):
        AccountState(
            account_id=AccountId("SIM-001"),
            account_type=AccountType.CASH,
            base_currency=None,
            balances=[usd_balance],  # a list, not a tuple
            is_reported=True,
            ts_event=5,
            ts_init=6,
        )
