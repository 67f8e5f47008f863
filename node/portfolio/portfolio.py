"""The Portfolio: balances, realized and unrealized PnL and net exposure, per instrument.

Everything here is computed on request from the cache (positions, accounts, latest prices)
rather than updated on every tick: a backtest asks for it once per equity sample, a
strategy when it needs it, and the per-tick path stays free of PnL arithmetic.

Realized PnL of positions closed before a restart: a node with a state store forgets a closed
position (its fills are history, kept in the orchestrator's journal) and keeps only what it
realized, per instrument; :meth:`Portfolio.restore_realized` adds that back as a baseline, so
the PnL a node reports carries on across restarts.
"""

from __future__ import annotations

from decimal import Decimal

from node.common.component import Component
from node.model.enums import PositionSide
from node.model.objects import Money


class Portfolio(Component):
    def __init__(self, msgbus, cache, clock, logger=None) -> None:
        super().__init__("Portfolio", clock=clock, logger=logger, msgbus=msgbus)
        self._cache = cache
        self._realized_before: dict = {}  # instrument id -> Money realized by forgotten positions

    def restore_realized(self, instrument_id, money: Money) -> None:
        """Add ``money`` (realized by positions closed before a restart) to the instrument's PnL."""
        before = self._realized_before.get(instrument_id)
        self._realized_before[instrument_id] = money if before is None else before + money

    def on_reset(self) -> None:
        self._realized_before.clear()

    def account(self, venue):
        return self._cache.account_for_venue(venue)

    def _mark(self, position):
        """Price to value an open position at: the side it would close against."""
        quote = self._cache.quote_tick(position.instrument_id)
        if quote is not None:
            return quote.bid_price if position.side == PositionSide.LONG else quote.ask_price
        trade = self._cache.trade_tick(position.instrument_id)
        if trade is not None:
            return trade.price
        bars = self._cache._bars
        for bar_type, history in bars.items():
            if bar_type.instrument_id == position.instrument_id and history:
                return history[0].close
        return None

    def unrealized_pnl(self, instrument_id) -> Money | None:
        total = None
        for position in self._cache.positions_open(instrument_id):
            mark = self._mark(position)
            if mark is None:
                continue
            pnl = position.unrealized_pnl(mark)
            total = pnl if total is None else total + pnl
        return total

    def realized_pnl(self, instrument_id) -> Money | None:
        total = self._realized_before.get(instrument_id)
        for position in self._cache.positions(instrument_id):
            total = position.realized_pnl if total is None else total + position.realized_pnl
        return total

    def _sum_by_currency(self, fn, venue=None) -> dict:
        out: dict = {}
        ids = {p.instrument_id for p in self._cache.positions()} | self._realized_before.keys()
        for iid in sorted(ids):
            if venue is not None and iid.venue != venue:
                continue
            money = fn(iid)
            if money is not None:
                out[money.currency] = out.get(money.currency, Money(0, money.currency)) + money
        return out

    def unrealized_pnls(self, venue=None) -> dict:
        return self._sum_by_currency(self.unrealized_pnl, venue)

    def realized_pnls(self, venue=None) -> dict:
        return self._sum_by_currency(self.realized_pnl, venue)

    def total_pnls(self, venue=None) -> dict:
        out = dict(self.realized_pnls(venue))
        for currency, money in self.unrealized_pnls(venue).items():
            out[currency] = out.get(currency, Money(0, currency)) + money
        return out

    def net_position(self, instrument_id) -> Decimal:
        return sum((p.signed_qty for p in self._cache.positions_open(instrument_id)), Decimal(0))

    def net_exposure(self, instrument_id) -> Money | None:
        """Signed notional of the open positions at the current mark."""
        instrument = self._cache.instrument(instrument_id)
        total = None
        for position in self._cache.positions_open(instrument_id):
            mark = self._mark(position)
            if mark is None or instrument is None:
                continue
            value = instrument.notional_value(position.quantity, mark)
            if position.side == PositionSide.SHORT:
                value = -value
            total = value if total is None else total + value
        return total

    def is_flat(self, instrument_id=None) -> bool:
        return not self._cache.positions_open(instrument_id)

    def is_net_long(self, instrument_id) -> bool:
        return self.net_position(instrument_id) > 0

    def is_net_short(self, instrument_id) -> bool:
        return self.net_position(instrument_id) < 0

    def equity(self, venue, currency=None) -> Money | None:
        """Account balance plus unrealized PnL in the account's base currency."""
        account = self.account(venue)
        if account is None:
            return None
        balance = account.balance_total(currency)
        if balance is None:
            return None
        unrealized = self.unrealized_pnls(venue).get(balance.currency)
        return balance if unrealized is None else balance + unrealized
