"""Matching rules of the simulated venue, one instrument at a time.

Pure logic: this module decides *whether* and *at what price* a working order executes; it emits
no events and touches no ledger (``exchange.py`` does both). Keeping the rules here, as small
functions over raw integers, is what makes each of them checkable by hand in a unit test.

All prices and sizes are raw ints at the instrument's precision (``Price.raw``/``Quantity.raw``):
market data, order prices and the instrument must share one precision (the exchange rejects orders
at another precision and raises on such market data while orders work), so a comparison is one
integer comparison.

What drives execution for an instrument (``MarketDriver``): quotes if any quote has been seen,
else trade ticks, else bars. Bars therefore drive fills only for an instrument that has no ticks.

The rules (``bid``/``ask`` are the latest quote; for trade ticks bid = ask = the trade price):

* MARKET buy takes the ask, sell the bid, as TAKER. A quote carries the size at the touch: up to
  that size fills at the touch, and each further slice of the same size fills one price increment
  worse (a thin-book model, ``thin_book_slices``), one OrderFilled per slice. A zero size means
  "depth unknown" (one slice). Slices stop at ``MAX_LEVELS`` levels: the last level takes the rest,
  so a pathological size (ask_size 1, order 10**6) cannot flood the node with fill events. Trades and
  bars carry no depth: one fill at the price (a MARKET order on a trade-driven instrument fills
  at the last trade price). The L1 book is not depleted by earlier orders.
* LIMIT buy is marketable when price >= ask (sell: price <= bid): it fills at once as TAKER along
  the same slices, but only at levels no worse than its price; the remainder rests (IOC: canceled;
  FOK: nothing fills and the order is canceled unless the whole quantity can fill). ``post_only``
  and marketable -> rejected. A resting limit fills completely at its own price, as MAKER, once
  ask <= price (sell: bid >= price).
* STOP_MARKET buy triggers when ask >= trigger (sell: bid <= trigger), then executes as a market
  order (TAKER, slices). A stop already in the market at submission is rejected or triggered at
  once (``reject_stop_orders_in_market``).
* Bars, ``bar_execution="next_open"`` (no look-ahead): orders that would execute now against a bar
  already seen (market orders, marketable limits, stops triggered at submission) are *queued* and
  execute at the next bar's open, before anything else on that bar. A queued limit that is no
  longer marketable at the open rests (IOC/FOK: canceled). ``"close"``: they execute at once at the
  latest close. Then resting orders meet the new bar's range, open first: a limit buy fills if
  low <= price, at min(price, open) (a gap through the limit fills at the better open), as MAKER; a
  stop buy triggers if high >= trigger and fills at max(trigger, open), as TAKER. Sell symmetric.
  Feed the venue one bar type per instrument: every bar it is given is a step of the market.
  (A queued order that meets a quote or trade instead executes at that touch.)
* Time priority: within one data point, orders are examined in the order they started working.
"""

from __future__ import annotations

from enum import IntEnum

from node.model.enums import OrderType, TimeInForce

MAX_LEVELS = 100
"""Most price levels a thin-book execution walks; the last level takes whatever remains."""


class MarketDriver(IntEnum):
    """Which market data prices executions for an instrument (the first one seen in this order)."""

    NONE = 0
    QUOTE = 1
    TRADE = 2
    BAR = 3


class Action(IntEnum):
    """What a data point does to a working order."""

    FILL_LIMIT = 1  # a resting limit fills at its price (quotes/trades) or at the bar's fill price
    TRIGGER = 2  # a stop triggers and executes as a market order
    EXECUTE_QUEUED = 3  # an order queued for the next market data executes now


class OrderStatusAtVenue(IntEnum):
    """The venue's own view of an order it accepted (the node's order FSM is separate)."""

    WORKING = 1
    FILLED = 2
    CANCELED = 3


class WorkingOrder:
    """The venue's record of an accepted order.

    The venue keeps its own copy of what matters for matching (raw prices, leaves quantity) rather
    than reading the node's ``Order``: the node's object changes only when the engine applies our
    events, and the venue must not depend on that having happened.
    """

    __slots__ = (
        "order",
        "client_order_id",
        "venue_order_id",
        "strategy_id",
        "instrument_id",
        "is_buy",
        "order_type",
        "is_limit",
        "price_raw",
        "trigger_raw",
        "quantity_raw",
        "leaves_raw",
        "time_in_force",
        "queued",
        "triggered",
        "status",
    )

    def __init__(self, order, venue_order_id) -> None:
        self.order = order
        self.client_order_id = order.client_order_id
        self.venue_order_id = venue_order_id
        self.strategy_id = order.strategy_id
        self.instrument_id = order.instrument_id
        self.is_buy = order.is_buy
        self.order_type = order.order_type
        self.is_limit = order.order_type is OrderType.LIMIT
        price = order.price
        trigger = order.trigger_price
        self.price_raw = None if price is None else price.raw
        self.trigger_raw = None if trigger is None else trigger.raw
        self.quantity_raw = order.quantity.raw
        self.leaves_raw = order.leaves_qty.raw
        self.time_in_force = order.time_in_force
        self.queued = False  # waiting for the next market data (bar next_open)
        self.triggered = False
        self.status = OrderStatusAtVenue.WORKING

    @property
    def is_immediate_or_cancel(self) -> bool:
        """IOC and FOK never rest."""
        return self.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)

    def __repr__(self) -> str:
        side = "BUY" if self.is_buy else "SELL"
        return (
            f"WorkingOrder({self.client_order_id} {self.venue_order_id} {side} {self.order_type.name} "
            f"leaves_raw={self.leaves_raw} {self.status.name})"
        )


class InstrumentBook:
    """One instrument at the venue: its latest market data and the orders working on it.

    ``orders`` is a plain list in time priority; the exchange's per-tick path tests it for
    emptiness (``if book.orders``) and does nothing else when no order works.
    """

    __slots__ = ("instrument", "quote", "trade", "bar", "orders", "_index")

    def __init__(self, instrument) -> None:
        self.instrument = instrument
        self.quote = None
        self.trade = None
        self.bar = None
        self.orders: list[WorkingOrder] = []
        self._index: dict = {}

    def reset(self) -> None:
        """Forget market data and orders (the instrument stays)."""
        self.quote = None
        self.trade = None
        self.bar = None
        self.orders = []
        self._index = {}

    # -- market data -----------------------------------------------------------------------------

    def driver(self) -> MarketDriver:
        if self.quote is not None:
            return MarketDriver.QUOTE
        if self.trade is not None:
            return MarketDriver.TRADE
        if self.bar is not None:
            return MarketDriver.BAR
        return MarketDriver.NONE

    def bid_ask_raw(self) -> tuple[int, int] | None:
        """The prices an order is judged against now (trade: both the trade price; bar: the close)."""
        if self.quote is not None:
            return self.quote.bid_price.raw, self.quote.ask_price.raw
        if self.trade is not None:
            px = self.trade.price.raw
            return px, px
        if self.bar is not None:
            px = self.bar.close.raw
            return px, px
        return None

    def top_size_raw(self, is_buy: bool) -> int:
        """Size at the touch a buy (ask) or sell (bid) would take, at the instrument's size precision.

        0 means unknown depth (no quote, or a quote with zero size).
        """
        if self.quote is None:
            return 0
        size = self.quote.ask_size if is_buy else self.quote.bid_size
        return rescale_raw(size.raw, size.precision, self.instrument.size_precision)

    # -- orders ----------------------------------------------------------------------------------

    def add(self, wo: WorkingOrder) -> None:
        self.orders.append(wo)
        self._index[wo.client_order_id] = wo

    def remove(self, wo: WorkingOrder) -> bool:
        """Take ``wo`` off the book; False if it was not on it."""
        if self._index.get(wo.client_order_id) is not wo:
            return False
        del self._index[wo.client_order_id]
        self.orders.remove(wo)
        return True

    def get(self, client_order_id) -> WorkingOrder | None:
        return self._index.get(client_order_id)

    def contains(self, wo: WorkingOrder) -> bool:
        return self._index.get(wo.client_order_id) is wo


def rescale_raw(raw: int, precision: int, to_precision: int) -> int:
    """Express ``raw`` (at ``precision``) at ``to_precision``, truncating extra decimals."""
    if precision == to_precision:
        return raw
    if precision < to_precision:
        return raw * 10 ** (to_precision - precision)
    return raw // 10 ** (precision - to_precision)


def is_marketable(is_buy: bool, price_raw: int, bid_raw: int, ask_raw: int) -> bool:
    """A limit price that crosses the touch: buy at or above the ask, sell at or below the bid."""
    return price_raw >= ask_raw if is_buy else price_raw <= bid_raw


def is_stop_hit(is_buy: bool, trigger_raw: int, bid_raw: int, ask_raw: int) -> bool:
    """A stop buy is hit when the ask reaches the trigger; a stop sell when the bid does."""
    return ask_raw >= trigger_raw if is_buy else bid_raw <= trigger_raw


def thin_book_slices(
    qty_raw: int,
    top_raw: int,
    touch_raw: int,
    step_raw: int,
    is_buy: bool,
    limit_raw: int | None = None,
    max_levels: int = MAX_LEVELS,
) -> list[tuple[int, int]]:
    """Split ``qty_raw`` into ``(qty_raw, price_raw)`` slices along a thin book.

    Level k (k = 0, 1, ...) holds ``top_raw`` at ``touch +/- k * step`` (worse for the taker). With
    ``limit_raw`` no level beyond the limit is taken, so the slices may cover less than ``qty_raw``.
    ``top_raw <= 0`` (depth unknown) gives one slice at the touch.
    """
    sign = 1 if is_buy else -1
    slices: list[tuple[int, int]] = []
    remaining = qty_raw
    level = 0
    while remaining > 0:
        price = touch_raw + sign * level * step_raw
        if limit_raw is not None and (price > limit_raw if is_buy else price < limit_raw):
            break
        last_level = top_raw <= 0 or level == max_levels - 1
        take = remaining if last_level else min(remaining, top_raw)
        slices.append((take, price))
        remaining -= take
        level += 1
    return slices


def match_prices(orders: list[WorkingOrder], bid_raw: int, ask_raw: int) -> list[tuple[WorkingOrder, Action]]:
    """Working orders that a quote (or a trade, with bid = ask) executes, in time priority."""
    hits: list[tuple[WorkingOrder, Action]] = []
    for wo in orders:  # runs on every tick while orders work: plain attribute reads and int compares
        if wo.queued:
            hits.append((wo, Action.EXECUTE_QUEUED))
        elif wo.is_limit:
            if (ask_raw <= wo.price_raw) if wo.is_buy else (bid_raw >= wo.price_raw):
                hits.append((wo, Action.FILL_LIMIT))
        elif (ask_raw >= wo.trigger_raw) if wo.is_buy else (bid_raw <= wo.trigger_raw):
            hits.append((wo, Action.TRIGGER))
    return hits


def bar_limit_fill_raw(
    is_buy: bool, price_raw: int, open_raw: int, high_raw: int, low_raw: int
) -> int | None:
    """Fill price of a resting limit on a bar, or None: buy fills if low <= price, at min(price, open)."""
    if is_buy:
        return min(price_raw, open_raw) if low_raw <= price_raw else None
    return max(price_raw, open_raw) if high_raw >= price_raw else None


def bar_stop_fill_raw(
    is_buy: bool, trigger_raw: int, open_raw: int, high_raw: int, low_raw: int
) -> int | None:
    """Fill price of a stop on a bar, or None: buy triggers if high >= trigger, fills at max(trigger, open)."""
    if is_buy:
        return max(trigger_raw, open_raw) if high_raw >= trigger_raw else None
    return min(trigger_raw, open_raw) if low_raw <= trigger_raw else None


def match_bar_range(
    orders: list[WorkingOrder], open_raw: int, high_raw: int, low_raw: int
) -> list[tuple[WorkingOrder, Action, int]]:
    """Resting (not queued) orders that a bar's range executes, with their fill prices."""
    hits: list[tuple[WorkingOrder, Action, int]] = []
    for wo in orders:
        if wo.queued:
            continue
        if wo.is_limit:
            px = bar_limit_fill_raw(wo.is_buy, wo.price_raw, open_raw, high_raw, low_raw)
            if px is not None:
                hits.append((wo, Action.FILL_LIMIT, px))
        else:
            px = bar_stop_fill_raw(wo.is_buy, wo.trigger_raw, open_raw, high_raw, low_raw)
            if px is not None:
                hits.append((wo, Action.TRIGGER, px))
    return hits
