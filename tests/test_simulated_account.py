"""SimulatedAccount: the venue ledger's arithmetic, locks and reported balances, by hand-computed numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from node.backtest.account import (
    AccountConfigError,
    NegativeBalanceError,
    SimulatedAccount,
    commission_raw,
    div_half_even,
    notional_raw,
)
from node.backtest.exchange import SimulatedExchange
from node.cache.cache import Cache
from node.common.clock import TestClock
from node.execution.engine import ExecutionEngine
from node.execution.messages import SubmitOrder
from node.model.data import QuoteTick
from node.model.enums import AccountType, OmsType, OrderSide
from node.model.events import AccountState
from node.model.identifiers import AccountId, ClientOrderId, InstrumentId, StrategyId, TraderId, Venue
from node.model.instruments import CryptoSpot, CurrencyPair, Equity, default_fx_pair
from node.model.objects import USD, Currency, Money
from node.msgbus.bus import MessageBus
from node.trading.order_factory import OrderFactory

ACCOUNT = AccountId("SIM-001")
BTC = Currency.from_str("BTC")
EUR = Currency.from_str("EUR")
FX = default_fx_pair()  # EUR/USD, 5 decimals, fees 0.00002, margin 3% / 3%
BTCUSD = CryptoSpot(
    InstrumentId("BTC/USD", "SIM"),
    BTC,
    USD,
    price_precision=2,
    size_precision=3,
    maker_fee="0.0005",
    taker_fee="0.001",
)
AAPL = Equity(InstrumentId("AAPL", "SIM"), USD, price_precision=2, size_precision=0, taker_fee="0.002")
EURGBP = CurrencyPair(
    InstrumentId("EUR/GBP", "SIM"), EUR, Currency.from_str("GBP"), price_precision=5, size_precision=0
)


def margin(balance="100000") -> SimulatedAccount:
    return SimulatedAccount(ACCOUNT, AccountType.MARGIN, [Money(balance, USD)], USD)


def cash(*balances: Money) -> SimulatedAccount:
    return SimulatedAccount(ACCOUNT, AccountType.CASH, list(balances))


def fill(acct, inst, side, qty: str, px: str, liquidity_fee=None) -> int:
    """Apply a taker fill; returns the commission raw it paid."""
    q, p = inst.make_qty(qty).raw, inst.make_price(px).raw
    fee = inst.taker_fee if liquidity_fee is None else liquidity_fee
    c = commission_raw(inst, q, p, fee)
    acct.apply_fill(inst, side is OrderSide.BUY, q, p, c)
    return c


def balance(acct, currency=USD) -> tuple[str, str, str]:
    return (
        str(acct.balance_total(currency)),
        str(acct.balance_locked(currency)),
        str(acct.balance_free(currency)),
    )


def legs(inst, qty: str, px: str, fee=None):
    return [(inst.make_qty(qty).raw, inst.make_price(px).raw, inst.taker_fee if fee is None else fee)]


# -- rounding ------------------------------------------------------------------------------------


def test_amounts_round_half_even_to_the_currency_precision():
    assert [div_half_even(n, 10) for n in (25, 35, 26, -25, -35, -26)] == [2, 4, 3, -2, -4, -3]
    one = AAPL.make_qty(1).raw
    # 1 x 0.25 x 10% = 0.025 -> 0.02; 1 x 0.35 x 10% = 0.035 -> 0.04; a -10% rebate -> -0.02
    assert commission_raw(AAPL, one, 25, Decimal("0.1")) == 2
    assert commission_raw(AAPL, one, 35, Decimal("0.1")) == 4
    assert commission_raw(AAPL, one, 25, Decimal("-0.1")) == -2
    # 3 x 10.005 = 30.015 USD -> 30.02 (notional is rounded once, exactly)
    fine = Equity(InstrumentId("FINE", "SIM"), USD, price_precision=3, size_precision=0)
    assert notional_raw(fine, 3, 10_005) == 3002


# -- margin --------------------------------------------------------------------------------------


def test_margin_open_and_close_realizes_pnl_and_pays_commissions():
    acct = margin("10000")
    c1 = fill(acct, FX, OrderSide.BUY, "100000", "1.10000")
    assert c1 == 220  # 110,000 x 0.00002 = 2.20
    # total 10000 - 2.20; maintenance 110,000 x 3% = 3300.00 locked
    assert balance(acct) == ("9997.80 USD", "3300.00 USD", "6697.80 USD")
    assert acct.net_position(FX.id) == (100_000, Decimal("1.10000"))
    c2 = fill(acct, FX, OrderSide.SELL, "100000", "1.10100")
    assert c2 == 220  # 110,100 x 0.00002 = 2.202 -> 2.20
    # + (1.10100 - 1.10000) x 100,000 = 100.00 realized, - 2.20
    assert balance(acct) == ("10095.60 USD", "0.00 USD", "10095.60 USD")
    assert acct.net_position(FX.id) is None


def test_margin_average_price_and_partial_reduce():
    acct = margin()
    fill(acct, FX, OrderSide.BUY, "100000", "1.10000", Decimal(0))
    fill(acct, FX, OrderSide.BUY, "100000", "1.20000", Decimal(0))
    assert acct.net_position(FX.id) == (200_000, Decimal("1.15"))
    fill(acct, FX, OrderSide.SELL, "50000", "1.20000", Decimal(0))
    # (1.20 - 1.15) x 50,000 = 2500.00; maintenance 150,000 x 1.15 x 3% = 5175.00
    assert balance(acct) == ("102500.00 USD", "5175.00 USD", "97325.00 USD")


def test_margin_flip_realizes_the_closed_part_and_opens_the_rest_at_the_fill_price():
    acct = margin()
    fill(acct, FX, OrderSide.BUY, "100000", "1.10000")  # - 2.20
    fill(acct, FX, OrderSide.SELL, "150000", "1.20000")  # + 10,000.00 - 3.60
    assert acct.net_position(FX.id) == (-50_000, Decimal("1.20000"))
    # short 50,000 at 1.20: maintenance 60,000 x 3% = 1800.00
    assert balance(acct) == ("109994.20 USD", "1800.00 USD", "108194.20 USD")


def test_short_position_pnl_has_the_opposite_sign():
    acct = margin()
    fill(acct, FX, OrderSide.SELL, "100000", "1.10000", Decimal(0))
    fill(acct, FX, OrderSide.BUY, "100000", "1.10500", Decimal(0))
    assert balance(acct) == ("99500.00 USD", "0.00 USD", "99500.00 USD")


def test_margin_requirement_counts_only_the_part_that_increases_exposure():
    acct = margin()
    opening = acct.requirement(FX, True, legs(FX, "100000", "1.10000"))
    # 110,000 x 3% = 3300.00 margin; + 2.20 taker commission to pass the check
    assert (opening.needed, opening.lock) == (330_220, 330_000)
    fill(acct, FX, OrderSide.BUY, "100000", "1.10000")
    reducing = acct.requirement(FX, False, legs(FX, "100000", "1.10000"))
    assert (reducing.needed, reducing.lock) == (0, 0)
    flipping = acct.requirement(FX, False, legs(FX, "150000", "1.10000"))
    # only 50,000 opens: 55,000 x 3% = 1650.00 margin; commission on all 150,000 = 3.30
    assert (flipping.needed, flipping.lock) == (165_330, 165_000)


def test_margin_check_message_and_locks_of_working_orders():
    acct = margin("1000")
    req = acct.requirement(FX, True, legs(FX, "100000", "1.10010"))
    assert acct.check(req) == "insufficient margin: requires 3302.50 USD, free 1000.00 USD"
    small = acct.requirement(FX, True, legs(FX, "10000", "1.10000"))  # 330.00 margin + 0.22
    assert acct.check(small) is None
    assert acct.lock(ClientOrderId("O-1"), small) is True
    assert acct.lock(ClientOrderId("O-1"), small) is False  # same lock: no change
    assert balance(acct) == ("1000.00 USD", "330.00 USD", "670.00 USD")
    assert acct.check(small, own=ClientOrderId("O-1")) is None  # its own lock counts as free
    assert acct.release(ClientOrderId("O-1")) is True and acct.release(ClientOrderId("O-1")) is False
    assert balance(acct) == ("1000.00 USD", "0.00 USD", "1000.00 USD")


def test_margin_account_refuses_instruments_quoted_in_another_currency():
    acct = margin()
    assert acct.refuse_reason(FX) is None
    assert "does no FX conversion" in acct.refuse_reason(EURGBP)


def test_margin_loss_beyond_the_balance_raises_and_leaves_the_ledger_unchanged():
    acct = margin("1000")
    fill(acct, FX, OrderSide.BUY, "100000", "1.10000", Decimal(0))
    with pytest.raises(NegativeBalanceError, match="USD balance to -1000.00"):
        fill(acct, FX, OrderSide.SELL, "100000", "1.08000", Decimal(0))  # -2000.00
    assert balance(acct) == ("1000.00 USD", "3300.00 USD", "-2300.00 USD")
    assert acct.net_position(FX.id) == (100_000, Decimal("1.10000"))


# -- cash ----------------------------------------------------------------------------------------


def test_cash_buy_and_sell_move_quote_and_base_currency():
    acct = cash(Money("10000", USD))
    fill(acct, BTCUSD, OrderSide.BUY, "0.250", "20000.00")  # 5000.00 + 5.00 commission
    assert balance(acct) == ("4995.00 USD", "0.00 USD", "4995.00 USD")
    assert str(acct.balance_total(BTC)) == "0.25000000 BTC"
    fill(acct, BTCUSD, OrderSide.SELL, "0.100", "21000.00")  # 2100.00 - 2.10 commission
    assert str(acct.balance_total(USD)) == "7092.90 USD"
    assert str(acct.balance_total(BTC)) == "0.15000000 BTC"


def test_cash_checks_buying_power_and_holdings_no_shorting():
    acct = cash(Money("1000", USD))
    buy = acct.requirement(BTCUSD, True, legs(BTCUSD, "0.050", "20000.00"))  # 1000.00 + 1.00
    assert acct.check(buy) == "insufficient balance: requires 1001.00 USD, free 1000.00 USD"
    sell = acct.requirement(BTCUSD, False, legs(BTCUSD, "0.001", "20000.00"))
    assert acct.check(sell) == "insufficient balance: requires 0.00100000 BTC, free 0.00000000 BTC"


def test_cash_working_orders_lock_what_they_would_spend():
    acct = cash(Money("10000", USD), Money("1", BTC))
    buy = acct.requirement(BTCUSD, True, legs(BTCUSD, "0.100", "20000.00"))  # 2000.00 + 2.00
    sell = acct.requirement(BTCUSD, False, legs(BTCUSD, "0.400", "21000.00"))
    acct.lock(ClientOrderId("O-1"), buy)
    acct.lock(ClientOrderId("O-2"), sell)
    assert balance(acct) == ("10000.00 USD", "2002.00 USD", "7998.00 USD")
    assert balance(acct, BTC) == ("1.00000000 BTC", "0.40000000 BTC", "0.60000000 BTC")
    too_much = acct.requirement(BTCUSD, False, legs(BTCUSD, "0.700", "21000.00"))
    assert acct.check(too_much) == "insufficient balance: requires 0.70000000 BTC, free 0.60000000 BTC"


def test_cash_equity_is_held_as_shares():
    acct = cash(Money("10000", USD))
    fill(acct, AAPL, OrderSide.BUY, "10", "150.00")  # 1500.00 + 3.00
    assert str(acct.balance_total(USD)) == "8497.00 USD" and acct.shares_raw(AAPL.id) == 10
    sell = acct.requirement(AAPL, False, legs(AAPL, "11", "150.00"))
    assert acct.check(sell) == "insufficient balance: requires 11 AAPL.SIM, free 10 AAPL.SIM"
    fill(acct, AAPL, OrderSide.SELL, "10", "160.00")  # 1600.00 - 3.20
    assert str(acct.balance_total(USD)) == "10093.80 USD" and acct.shares_raw(AAPL.id) == 0
    assert [b.currency.code for b in acct.balances()] == ["USD"]  # shares are not a currency balance


def test_cash_overdraft_raises_and_changes_nothing():
    acct = cash(Money("100", USD))
    with pytest.raises(NegativeBalanceError):
        fill(acct, AAPL, OrderSide.BUY, "1", "150.00")
    assert str(acct.balance_total(USD)) == "100.00 USD" and acct.shares_raw(AAPL.id) == 0


# -- reporting and configuration -----------------------------------------------------------------


def test_account_state_is_reported_with_total_equal_locked_plus_free_per_currency():
    acct = cash(Money("10000", USD), Money("1", BTC))
    acct.lock(ClientOrderId("O-1"), acct.requirement(BTCUSD, True, legs(BTCUSD, "0.100", "20000.00")))
    fill(acct, BTCUSD, OrderSide.SELL, "0.500", "20000.00")
    state = acct.state(42)
    assert isinstance(state, AccountState) and state.is_reported and state.ts_event == 42
    assert [b.currency.code for b in state.balances] == ["USD", "BTC"]
    for b in state.balances:
        assert b.total.raw == b.locked.raw + b.free.raw
    assert str(state.balances[0].total) == "19990.00 USD"  # 10000 + 10000.00 - 10.00
    assert str(state.balances[1].total) == "0.50000000 BTC"


def test_reset_restores_the_starting_balances():
    acct = margin("1000")
    fill(acct, FX, OrderSide.BUY, "10000", "1.10000")
    acct.lock(ClientOrderId("O-9"), acct.requirement(FX, True, legs(FX, "1000", "1.10000")))
    acct.reset()
    assert balance(acct) == ("1000.00 USD", "0.00 USD", "1000.00 USD")
    assert acct.net_position(FX.id) is None and acct.lock_of(ClientOrderId("O-9")) is None


@pytest.mark.parametrize(
    "account_type, balances, base",
    [
        (AccountType.MARGIN, [Money(1, USD), Money(1, BTC)], None),
        (AccountType.MARGIN, [Money(1, BTC)], USD),
        (AccountType.CASH, [], None),
        (AccountType.CASH, [Money(1, USD), Money(2, USD)], None),
        (AccountType.CASH, [Money(-1, USD)], None),
    ],
)
def test_invalid_account_configurations_are_refused(account_type, balances, base):
    with pytest.raises(AccountConfigError):
        SimulatedAccount(ACCOUNT, account_type, balances, base)


def test_venue_balance_agrees_with_the_nodes_positions_to_the_cent():
    """Through the exchange and the real ExecutionEngine: open, add, flip and close."""
    clock = TestClock(1_000)
    bus = MessageBus("TRADER-001", clock)
    cache = Cache()
    engine = ExecutionEngine(bus, cache, clock)
    exchange = SimulatedExchange(
        Venue("SIM"), OmsType.NETTING, AccountType.MARGIN, [Money(100_000, USD)], clock, USD
    )
    engine.register_client(exchange.exec_client)
    cache.add_instrument(FX)
    exchange.add_instrument(FX)
    exchange.initialize_account()
    factory = OrderFactory(TraderId("TRADER-001"), StrategyId("S-001"), clock)

    def quote(bid, ask):
        exchange.process_quote_tick(
            QuoteTick(
                FX.id, FX.make_price(bid), FX.make_price(ask), FX.make_qty(10**6), FX.make_qty(10**6), 0, 0
            )
        )

    def trade(side, qty):
        order = factory.market(FX.id, side, FX.make_qty(qty))
        engine.execute(SubmitOrder(order.trader_id, order.strategy_id, FX.id, 0, order=order))

    quote("1.10000", "1.10013")
    trade(OrderSide.BUY, 123_457)
    quote("1.10377", "1.10391")
    trade(OrderSide.BUY, 77_777)
    quote("1.09123", "1.09131")
    trade(OrderSide.SELL, 300_001)  # flips short
    quote("1.08777", "1.08781")
    trade(OrderSide.BUY, 98_767)  # back to flat
    positions = cache.positions()
    assert all(p.is_closed for p in positions) and len(positions) == 2
    realized = sum(p.realized_pnl.raw for p in positions)
    account = cache.account(exchange.account_id)
    assert account.balance_total(USD).raw - 10_000_000 == realized
    assert account.balance_total(USD) == exchange.account.balance_total(USD)
