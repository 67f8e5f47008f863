"""Portfolio: PnL and exposure computed from the cache, every number worked out by hand.

Positions are built the real way (strategy -> risk -> execution -> a recording venue client that
reports fills); prices reach the cache through the DataEngine.
"""

from __future__ import annotations

from decimal import Decimal

from node.common.clock import TestClock
from node.execution.client import ExecutionClient
from node.model.data import Bar, BarSpecification, BarType, QuoteTick, TradeTick
from node.model.enums import (
    AccountType,
    AggregationSource,
    AggressorSide,
    BarAggregation,
    LiquiditySide,
    OmsType,
    OrderSide,
    PriceType,
)
from node.model.events import AccountBalance, AccountState, OrderFilled
from node.model.identifiers import AccountId, TradeId, Venue, VenueOrderId
from node.model.instruments import default_fx_pair
from node.model.objects import CURRENCIES, USD, Money, Price, Quantity
from node.system.kernel import Environment, Kernel, KernelConfig
from node.trading.strategy import Strategy

EURUSD = default_fx_pair("EUR/USD", "SIM")
GBPUSD = default_fx_pair("GBP/USD", "SIM")
USDJPY = default_fx_pair("USD/JPY", "SIM", price_precision=3)
EURUSD_OTHER = default_fx_pair("EUR/USD", "OTHER")
JPY = CURRENCIES["JPY"]
BUY, SELL = OrderSide.BUY, OrderSide.SELL
SIM = Venue("SIM")


class FillingClient(ExecutionClient):
    """A venue adapter that fills every market order in full at the price the test names."""

    def __init__(self, venue: str) -> None:
        super().__init__(venue, Venue(venue), AccountId(f"{venue}-001"))
        self.next_px: str = ""
        self.next_commission: Money | None = None
        self._trade = 0

    def submit_order(self, command) -> None:
        order = command.order
        self._trade += 1
        commission = self.next_commission or Money(0, order_currency(order))
        self.emit(
            OrderFilled(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                venue_order_id=VenueOrderId(f"V-{self._trade}"),
                account_id=self.account_id,
                trade_id=TradeId(f"T-{self._trade}"),
                order_side=order.side,
                order_type=order.order_type,
                last_qty=order.quantity,
                last_px=Price.from_str(self.next_px),
                currency=commission.currency,
                commission=commission,
                liquidity_side=LiquiditySide.TAKER,
                ts_event=0,
                ts_init=0,
            )
        )


def order_currency(order):
    return JPY if order.instrument_id == USDJPY.id else USD


class Setup:
    def __init__(self, oms_type: OmsType = OmsType.NETTING) -> None:
        self.kernel = Kernel(Environment.BACKTEST, TestClock(0), KernelConfig(oms_type=oms_type))
        for instrument in (EURUSD, GBPUSD, USDJPY, EURUSD_OTHER):
            self.kernel.cache.add_instrument(instrument)
        self.clients = {v: FillingClient(v) for v in ("SIM", "OTHER")}
        for client in self.clients.values():
            self.kernel.exec_engine.register_client(client)
        self.strategy = Strategy()
        self.kernel.add_strategy(self.strategy)
        self.kernel.start()
        self.portfolio = self.kernel.portfolio

    def trade(self, instrument, side: OrderSide, qty: int, px: str, commission: str | None = None) -> None:
        client = self.clients[str(instrument.id.venue)]
        client.next_px = px
        client.next_commission = None if commission is None else Money(commission, instrument.quote_currency)
        order = self.strategy.order_factory.market(instrument.id, side, Quantity(qty, 0))
        self.strategy.submit_order(order)

    def quote(self, instrument, bid: str, ask: str) -> None:
        self.kernel.data_engine.process(
            QuoteTick(
                instrument.id, Price.from_str(bid), Price.from_str(ask), Quantity(1, 0), Quantity(1, 0), 0, 0
            )
        )


def usd(amount: str) -> Money:
    return Money(amount, USD)


# -- unrealized PnL ---------------------------------------------------------------------------------


def test_unrealized_pnl_marks_longs_at_the_bid_and_shorts_at_the_ask():
    s = Setup()
    s.trade(EURUSD, BUY, 100_000, "1.10000")
    s.trade(GBPUSD, SELL, 50_000, "1.25000")
    s.quote(EURUSD, "1.10050", "1.10070")
    s.quote(GBPUSD, "1.24900", "1.24950")

    assert s.portfolio.unrealized_pnl(EURUSD.id) == usd("50.00")  # (1.10050 - 1.10000) * 100k
    assert s.portfolio.unrealized_pnl(GBPUSD.id) == usd("25.00")  # (1.25000 - 1.24950) * 50k
    assert s.portfolio.unrealized_pnls(SIM) == {USD: usd("75.00")}


def test_unrealized_pnl_needs_a_mark_and_falls_back_from_quote_to_trade_to_bar():
    s = Setup()
    s.trade(EURUSD, BUY, 100_000, "1.10000")
    assert s.portfolio.unrealized_pnl(EURUSD.id) is None  # nothing to value it at
    assert s.portfolio.unrealized_pnls() == {}

    bar_type = BarType(
        EURUSD.id, BarSpecification(1, BarAggregation.MINUTE, PriceType.BID), AggregationSource.EXTERNAL
    )
    px = Price.from_str("1.09900")
    s.kernel.data_engine.process(Bar(bar_type, px, px, px, px, Quantity(1, 0), 60, 60))
    assert s.portfolio.unrealized_pnl(EURUSD.id) == usd("-100.00")  # bar close

    s.kernel.data_engine.process(
        TradeTick(
            EURUSD.id, Price.from_str("1.10100"), Quantity(1, 0), AggressorSide.BUYER, TradeId("X"), 61, 61
        )
    )
    assert s.portfolio.unrealized_pnl(EURUSD.id) == usd("100.00")  # last trade beats the bar

    s.quote(EURUSD, "1.10020", "1.10040")
    assert s.portfolio.unrealized_pnl(EURUSD.id) == usd("20.00")  # the quote beats both


def test_unrealized_pnls_are_grouped_by_currency_and_filtered_by_venue():
    s = Setup()
    s.trade(EURUSD, BUY, 10_000, "1.10000")
    s.trade(USDJPY, SELL, 1_000, "150.000")
    s.trade(EURUSD_OTHER, BUY, 10_000, "1.10000")
    s.quote(EURUSD, "1.10100", "1.10120")
    s.quote(USDJPY, "149.400", "149.500")
    s.quote(EURUSD_OTHER, "1.20000", "1.20020")

    assert s.portfolio.unrealized_pnls(SIM) == {USD: usd("10.00"), JPY: Money(500, JPY)}
    assert s.portfolio.unrealized_pnls(Venue("OTHER")) == {USD: usd("1000.00")}
    assert s.portfolio.unrealized_pnls() == {USD: usd("1010.00"), JPY: Money(500, JPY)}


# -- realized PnL -----------------------------------------------------------------------------------


def test_realized_pnl_includes_commissions_and_every_round_trip():
    s = Setup()
    s.trade(EURUSD, BUY, 100_000, "1.10000", commission="2.20")
    assert s.portfolio.realized_pnl(EURUSD.id) == usd("-2.20")
    s.trade(EURUSD, SELL, 40_000, "1.10100", commission="0.88")
    assert s.portfolio.realized_pnl(EURUSD.id) == usd("36.92")  # 0.001 * 40k - 2.20 - 0.88
    s.trade(EURUSD, SELL, 60_000, "1.09900", commission="1.32")
    assert s.portfolio.realized_pnl(EURUSD.id) == usd("-24.40")  # 36.92 - 0.001 * 60k - 1.32

    s.trade(EURUSD, SELL, 10_000, "1.10000")  # a second round trip (new position)
    s.trade(EURUSD, BUY, 10_000, "1.09000")
    assert len(s.kernel.cache.positions_closed(EURUSD.id)) == 2
    assert s.portfolio.realized_pnl(EURUSD.id) == usd("75.60")  # -24.40 + 0.01 * 10k
    assert s.portfolio.realized_pnl(GBPUSD.id) is None  # never traded
    assert s.portfolio.realized_pnls(SIM) == {USD: usd("75.60")}


def test_total_pnl_and_equity():
    s = Setup()
    balance = usd("1000000.00")
    s.clients["SIM"].emit(
        AccountState(
            account_id=AccountId("SIM-001"),
            account_type=AccountType.MARGIN,
            base_currency=USD,
            balances=(AccountBalance(total=balance, locked=usd("0"), free=balance),),
            is_reported=True,
            ts_event=0,
            ts_init=0,
        )
    )
    s.trade(EURUSD, BUY, 100_000, "1.10000", commission="2.00")
    s.quote(EURUSD, "1.10050", "1.10060")
    assert s.portfolio.total_pnls(SIM) == {USD: usd("48.00")}  # 50.00 unrealized - 2.00 commission
    assert s.portfolio.equity(SIM) == usd("1000050.00")  # reported balance + unrealized
    assert s.portfolio.equity(Venue("OTHER")) is None  # no account reported there


# -- exposure and net position -----------------------------------------------------------------------


def test_net_exposure_is_signed_notional_at_the_mark():
    s = Setup()
    s.trade(EURUSD, BUY, 100_000, "1.10000")
    s.trade(GBPUSD, SELL, 50_000, "1.25000")
    assert s.portfolio.net_exposure(EURUSD.id) is None  # no mark yet
    s.quote(EURUSD, "1.10050", "1.10070")
    s.quote(GBPUSD, "1.24900", "1.24950")
    assert s.portfolio.net_exposure(EURUSD.id) == usd("110050.00")  # 100k * 1.10050
    assert s.portfolio.net_exposure(GBPUSD.id) == usd("-62475.00")  # -(50k * 1.24950)
    assert s.portfolio.net_exposure(USDJPY.id) is None


def test_hedged_exposure_nets_longs_against_shorts():
    s = Setup(OmsType.HEDGING)
    s.trade(EURUSD, BUY, 100_000, "1.10000")
    s.trade(EURUSD, SELL, 40_000, "1.10000")
    s.quote(EURUSD, "1.10050", "1.10070")
    assert len(s.kernel.cache.positions_open(EURUSD.id)) == 2
    assert s.portfolio.net_position(EURUSD.id) == Decimal(60_000)
    assert s.portfolio.net_exposure(EURUSD.id) == usd("66022.00")  # 110050.00 - 40k * 1.10070
    assert s.portfolio.unrealized_pnl(EURUSD.id) == usd("22.00")  # 50.00 long - 28.00 short
    assert s.portfolio.is_net_long(EURUSD.id)


def test_flat_long_short():
    s = Setup()
    assert s.portfolio.is_flat() and s.portfolio.is_flat(EURUSD.id)
    assert not s.portfolio.is_net_long(EURUSD.id) and not s.portfolio.is_net_short(EURUSD.id)

    s.trade(EURUSD, BUY, 10, "1.10000")
    assert not s.portfolio.is_flat() and not s.portfolio.is_flat(EURUSD.id)
    assert s.portfolio.is_flat(GBPUSD.id)
    assert s.portfolio.is_net_long(EURUSD.id) and not s.portfolio.is_net_short(EURUSD.id)
    assert s.portfolio.net_position(EURUSD.id) == Decimal(10)

    s.trade(EURUSD, SELL, 25, "1.10000")  # flips to short 15
    assert s.portfolio.is_net_short(EURUSD.id) and not s.portfolio.is_net_long(EURUSD.id)
    assert s.portfolio.net_position(EURUSD.id) == Decimal(-15)

    s.trade(EURUSD, BUY, 15, "1.10000")
    assert s.portfolio.is_flat() and s.portfolio.is_flat(EURUSD.id)
    assert s.portfolio.net_position(EURUSD.id) == Decimal(0)
    assert not s.portfolio.is_net_long(EURUSD.id) and not s.portfolio.is_net_short(EURUSD.id)
