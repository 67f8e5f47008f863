"""The Cache: the kernel's in-memory view of instruments, market data, orders, positions, accounts.

Everything in it is written only from the kernel thread (engines update it as they process
messages) and read by strategies, so no locking. Latest quotes/trades are one dict store
per tick: that write sits on the per-tick path, so it is kept to a single assignment.
Bars keep a bounded history per bar type because strategies index recent bars.
"""

from __future__ import annotations

from collections import deque

from node.model.enums import PriceType
from node.model.identifiers import AccountId, ClientOrderId, InstrumentId, PositionId, StrategyId, Venue


class CacheError(KeyError):
    """A lookup or insert the cache cannot honour (e.g. adding an order id twice)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cache error"


class Cache:
    def __init__(self, bar_capacity: int = 10_000) -> None:
        if bar_capacity <= 0:
            raise ValueError(f"bar_capacity must be positive, got {bar_capacity}")
        self._bar_capacity = bar_capacity
        self.reset()

    def reset(self) -> None:
        """Forget everything (between backtest runs, or before loading persisted state)."""
        self._instruments: dict[InstrumentId, object] = {}
        self._quotes: dict[InstrumentId, object] = {}
        self._trades: dict[InstrumentId, object] = {}
        self._bars: dict[object, deque] = {}
        self._orders: dict[ClientOrderId, object] = {}
        self._orders_open: dict[ClientOrderId, object] = {}
        self._order_position: dict[ClientOrderId, PositionId] = {}
        self._positions: dict[PositionId, object] = {}
        self._positions_open: dict[PositionId, object] = {}
        self._accounts: dict[AccountId, object] = {}
        self._venue_accounts: dict[Venue, AccountId] = {}

    dispose = reset

    # -- instruments -----------------------------------------------------------------------------
    def add_instrument(self, instrument) -> None:
        self._instruments[instrument.id] = instrument

    def instrument(self, instrument_id: InstrumentId):
        return self._instruments.get(instrument_id)

    def instruments(self, venue: Venue | None = None) -> list:
        return [i for i in self._instruments.values() if venue is None or i.id.venue == venue]

    # -- market data -----------------------------------------------------------------------------
    def add_quote_tick(self, tick) -> None:
        self._quotes[tick.instrument_id] = tick

    def add_trade_tick(self, tick) -> None:
        self._trades[tick.instrument_id] = tick

    def add_bar(self, bar) -> None:
        bars = self._bars.get(bar.bar_type)
        if bars is None:
            bars = self._bars[bar.bar_type] = deque(maxlen=self._bar_capacity)
        bars.appendleft(bar)

    def quote_tick(self, instrument_id: InstrumentId):
        return self._quotes.get(instrument_id)

    def trade_tick(self, instrument_id: InstrumentId):
        return self._trades.get(instrument_id)

    def bar(self, bar_type, index: int = 0):
        """The bar ``index`` steps back (0 = latest), or None."""
        bars = self._bars.get(bar_type)
        if not bars or index >= len(bars):
            return None
        return bars[index]

    def bars(self, bar_type) -> list:
        """Bars newest first."""
        return list(self._bars.get(bar_type, ()))

    def bar_count(self, bar_type) -> int:
        return len(self._bars.get(bar_type, ()))

    def price(self, instrument_id: InstrumentId, price_type=None):
        """Best available mark: last trade, else quote mid (as Price), else None.

        With ``price_type`` LAST only the last trade counts; BID/ASK/MID read the last quote.
        """
        trade = self._trades.get(instrument_id)
        if price_type is None or price_type == PriceType.LAST:
            if trade is not None:
                return trade.price
            if price_type is not None:
                return None
        quote = self._quotes.get(instrument_id)
        if quote is not None:
            return quote.extract_price(price_type or PriceType.MID)
        return None

    # -- orders ----------------------------------------------------------------------------------
    def add_order(self, order, position_id: PositionId | None = None) -> None:
        if order.client_order_id in self._orders:
            raise CacheError(
                f"order {order.client_order_id} is already in the cache (client order ids are unique)"
            )
        self._orders[order.client_order_id] = order
        if position_id is not None:
            self._order_position[order.client_order_id] = position_id
        self.update_order(order)

    def update_order(self, order) -> None:
        """Re-index an order after an event changed its status."""
        if order.is_closed:
            self._orders_open.pop(order.client_order_id, None)
        elif order.is_open or order.is_inflight:
            self._orders_open[order.client_order_id] = order

    def order(self, client_order_id: ClientOrderId):
        return self._orders.get(client_order_id)

    def order_exists(self, client_order_id: ClientOrderId) -> bool:
        return client_order_id in self._orders

    def orders(
        self, instrument_id: InstrumentId | None = None, strategy_id: StrategyId | None = None
    ) -> list:
        return _filter(self._orders.values(), instrument_id, strategy_id)

    def orders_open(
        self, instrument_id: InstrumentId | None = None, strategy_id: StrategyId | None = None
    ) -> list:
        return _filter(self._orders_open.values(), instrument_id, strategy_id)

    def orders_closed(
        self, instrument_id: InstrumentId | None = None, strategy_id: StrategyId | None = None
    ) -> list:
        return [o for o in _filter(self._orders.values(), instrument_id, strategy_id) if o.is_closed]

    def orders_open_count(self) -> int:
        return len(self._orders_open)

    # -- positions -------------------------------------------------------------------------------
    def add_position_id(self, client_order_id: ClientOrderId, position_id: PositionId) -> None:
        self._order_position[client_order_id] = position_id

    def position_id(self, client_order_id: ClientOrderId) -> PositionId | None:
        return self._order_position.get(client_order_id)

    def add_position(self, position) -> None:
        self._positions[position.id] = position
        self.update_position(position)

    def update_position(self, position) -> None:
        """Re-index a position after a fill changed it (strategies ask for open ones every bar)."""
        if position.is_open:
            self._positions_open[position.id] = position
        else:
            self._positions_open.pop(position.id, None)

    def position(self, position_id: PositionId):
        return self._positions.get(position_id)

    def position_for_order(self, client_order_id: ClientOrderId):
        pid = self._order_position.get(client_order_id)
        return None if pid is None else self._positions.get(pid)

    def positions(
        self, instrument_id: InstrumentId | None = None, strategy_id: StrategyId | None = None
    ) -> list:
        return _filter(self._positions.values(), instrument_id, strategy_id)

    def positions_open(
        self, instrument_id: InstrumentId | None = None, strategy_id: StrategyId | None = None
    ) -> list:
        return _filter(self._positions_open.values(), instrument_id, strategy_id)

    def positions_closed(
        self, instrument_id: InstrumentId | None = None, strategy_id: StrategyId | None = None
    ) -> list:
        return [p for p in _filter(self._positions.values(), instrument_id, strategy_id) if p.is_closed]

    # -- accounts --------------------------------------------------------------------------------
    def add_account(self, account) -> None:
        self._accounts[account.id] = account
        self._venue_accounts[Venue(account.id.issuer)] = account.id

    def account(self, account_id: AccountId):
        return self._accounts.get(account_id)

    def account_for_venue(self, venue: Venue):
        account_id = self._venue_accounts.get(venue)
        return None if account_id is None else self._accounts.get(account_id)

    def accounts(self) -> list:
        return list(self._accounts.values())


def _filter(items, instrument_id, strategy_id) -> list:
    return [
        x
        for x in items
        if (instrument_id is None or x.instrument_id == instrument_id)
        and (strategy_id is None or x.strategy_id == strategy_id)
    ]
