"""OrderExecution: how an accepted order executes, fills and ends at the venue.

Market data meets the working orders here (limit fills, stop triggers, queued orders at the next
bar open), and so does an order that executes on arrival: the taker plan against the book, the
re-checks just before execution (reduce-only, the ledger at the actual prices), each fill with its
commission, the remainder resting or canceled. The per-tick matching loops live here, unchanged.
Kept apart from ``exchange.py`` so the execution path reads in one place; it is a mixin of
``SimulatedExchange`` and works on the state that class's ``__init__`` sets.
"""

from __future__ import annotations

from node.backtest.account import Leg, commission_raw
from node.backtest.matching import (
    Action,
    InstrumentBook,
    MarketDriver,
    OrderStatusAtVenue,
    WorkingOrder,
    is_marketable,
    match_bar_range,
    match_prices,
    thin_book_slices,
)
from node.model.enums import AccountType, LiquiditySide, OrderType, TimeInForce
from node.model.errors import InvalidDataError
from node.model.events import OrderCanceled, OrderFilled
from node.model.identifiers import TradeId
from node.model.objects import Money, Price, Quantity, format_raw


class OrderExecution:
    """``SimulatedExchange`` execution steps: matching on market data, fills, triggers, cancels."""

    def _check_precision(self, book, prices: tuple[Price, ...]) -> None:
        expected = book.instrument.price_precision
        for price in prices:
            if price.precision != expected:
                raise InvalidDataError(
                    f"{book.instrument.id}: market data price {price} has precision {price.precision}, "
                    f"the instrument {expected}; matching compares raw values, so they must agree"
                )

    def _match_prices(self, book: InstrumentBook, bid: Price, ask: Price) -> None:
        expected = book.instrument.price_precision
        if bid.precision != expected or ask.precision != expected:
            self._check_precision(book, (bid, ask))
        for wo, action in match_prices(book.orders, bid.raw, ask.raw):
            if not book.contains(wo):  # canceled or executed by a handler of an earlier event
                continue
            if action is Action.FILL_LIMIT:
                self._fill_resting_limit(book, wo, wo.price_raw)
            elif action is Action.TRIGGER:
                self._trigger(book, wo)
            else:
                self._execute_queued(book, wo, self._plan(book, wo, wo.price_raw))

    def _match_bar(self, book: InstrumentBook, bar) -> None:
        self._check_precision(book, (bar.open, bar.high, bar.low, bar.close))
        open_raw = bar.open.raw
        present = list(book.orders)  # orders submitted from handlers below wait for the next bar
        for wo in present:
            if wo.queued and book.contains(wo):
                limit = wo.price_raw
                fillable = limit is None or is_marketable(wo.is_buy, limit, open_raw, open_raw)
                self._execute_queued(book, wo, [(wo.leaves_raw, open_raw)] if fillable else [])
        resting = [wo for wo in present if book.contains(wo) and not wo.queued]
        for wo, action, px in match_bar_range(resting, open_raw, bar.high.raw, bar.low.raw):
            if not book.contains(wo):
                continue
            if action is Action.FILL_LIMIT:
                self._fill_resting_limit(book, wo, px)
            else:
                self._trigger(book, wo, [(wo.leaves_raw, px)])

    # -- execution -------------------------------------------------------------------------------

    def _plan(
        self, book: InstrumentBook, wo: WorkingOrder, limit_raw: int | None = None
    ) -> list[tuple[int, int]]:
        """How the order's leaves would execute as a taker now: [(qty_raw, price_raw)], maybe partial."""
        if book.driver() is MarketDriver.QUOTE:
            quote = book.quote
            touch = quote.ask_price.raw if wo.is_buy else quote.bid_price.raw
            top = book.top_size_raw(wo.is_buy)
            step = book.instrument.price_increment.raw
            return thin_book_slices(wo.leaves_raw, top, touch, step, wo.is_buy, limit_raw)
        bid, ask = book.bid_ask_raw()
        px = ask if wo.is_buy else bid
        if limit_raw is not None and not is_marketable(wo.is_buy, limit_raw, px, px):
            return []
        return [(wo.leaves_raw, px)]

    def _take_legs(self, book: InstrumentBook, wo: WorkingOrder, legs) -> tuple[list[Leg], list[Leg]]:
        """(taker legs to execute now, the leg that rests afterwards if any); FOK: all or nothing."""
        inst = book.instrument
        remainder = wo.leaves_raw - sum(qty for qty, _ in legs)
        if remainder and wo.time_in_force is TimeInForce.FOK:
            legs, remainder = [], wo.leaves_raw
        taker = [(qty, px, inst.taker_fee) for qty, px in legs]
        rests = remainder > 0 and wo.order_type is OrderType.LIMIT and not wo.is_immediate_or_cancel
        tail = [(remainder, wo.price_raw, resting_fee(inst))] if rests else []
        return taker, tail

    def _run(self, book: InstrumentBook, wo: WorkingOrder, taker: list[Leg], tail: list[Leg]) -> None:
        """Fill ``taker`` legs in order; then the remainder rests (``tail``) or is canceled."""
        for i, (qty, px, _) in enumerate(taker):
            self._fill(book, wo, qty, px, LiquiditySide.TAKER, taker[i + 1 :] + tail)
        if wo.leaves_raw == 0:
            return
        if tail:
            self.account.lock(wo.client_order_id, self.account.requirement(book.instrument, wo.is_buy, tail))
            book.add(wo)
            self._report()
        else:
            self._cancel_now(book, wo)

    def _fill_resting_limit(self, book: InstrumentBook, wo: WorkingOrder, px: int) -> None:
        breach = self._reduce_only_breach(book, wo)
        if breach is not None:
            self._cancel_now(book, wo, breach)
            return
        book.remove(wo)
        self._fill(book, wo, wo.leaves_raw, px, LiquiditySide.MAKER, [])

    def _trigger(self, book: InstrumentBook, wo: WorkingOrder, legs=None) -> None:
        """A resting stop was hit: it executes now as a market order (``legs``, default: the touch)."""
        book.remove(wo)
        wo.triggered = True
        self._take_now(book, wo, self._plan(book, wo) if legs is None else legs, triggered=True)

    def _execute_queued(self, book: InstrumentBook, wo: WorkingOrder, legs) -> None:
        """A queued order meets market data: execute; a limit that is not marketable now rests instead."""
        if not legs and wo.order_type is OrderType.LIMIT and not wo.is_immediate_or_cancel:
            wo.queued = False  # keeps its place in time priority
            inst = book.instrument
            req = self.account.requirement(
                inst, wo.is_buy, [(wo.leaves_raw, wo.price_raw, resting_fee(inst))]
            )
            self.account.lock(wo.client_order_id, req)
            self._report()
            return
        book.remove(wo)
        wo.queued = False
        self._take_now(book, wo, legs, triggered=False)

    def _reduce_only_breach(self, book: InstrumentBook, wo: WorkingOrder) -> str | None:
        """Why a reduce-only order must not execute now (it would open/increase a position), or None."""
        if not wo.order.reduce_only or self.account.account_type is not AccountType.MARGIN:
            return None
        net = self.account.net_position(book.instrument.id)
        net_raw = 0 if net is None else net[0]
        closable = -net_raw if wo.is_buy else net_raw
        if closable >= wo.leaves_raw:
            return None
        return (
            f"reduce-only order would open or increase a position: net position "
            f"{format_raw(net_raw, book.instrument.size_precision)}, order leaves "
            f"{format_raw(wo.leaves_raw, book.instrument.size_precision)}"
        )

    def _take_now(self, book: InstrumentBook, wo: WorkingOrder, legs, triggered: bool) -> None:
        """Execute an already accepted order; canceled if the account cannot pay at these prices."""
        breach = self._reduce_only_breach(book, wo)
        if breach is not None:
            self._cancel_now(book, wo, breach)
            return
        taker, tail = self._take_legs(book, wo, legs)
        req = self.account.requirement(book.instrument, wo.is_buy, taker + tail)
        reason = self.account.check(req, own=wo.client_order_id)
        if reason is None:
            self.account.lock(wo.client_order_id, req)
        if triggered:
            self._emit(self._triggered(wo))
        if reason is None:
            self._run(book, wo, taker, tail)
        else:
            self._cancel_now(book, wo, reason)

    def _fill(
        self, book: InstrumentBook, wo: WorkingOrder, qty: int, px: int, liquidity, then_lock: list[Leg]
    ) -> None:
        """Book one fill, lock what the order still needs (``then_lock``), report, emit OrderFilled."""
        inst = book.instrument
        fee = inst.maker_fee if liquidity is LiquiditySide.MAKER else inst.taker_fee
        commission = commission_raw(inst, qty, px, fee)
        self.account.apply_fill(inst, wo.is_buy, qty, px, commission)
        if then_lock:
            self.account.lock(wo.client_order_id, self.account.requirement(inst, wo.is_buy, then_lock))
        else:
            self.account.release(wo.client_order_id)
        wo.leaves_raw -= qty
        if wo.leaves_raw == 0:
            wo.status = OrderStatusAtVenue.FILLED
        self._trade_count += 1
        ts = self._clock.timestamp_ns()
        order = wo.order
        fill = OrderFilled(
            trader_id=order.trader_id,
            strategy_id=wo.strategy_id,
            instrument_id=wo.instrument_id,
            client_order_id=wo.client_order_id,
            venue_order_id=wo.venue_order_id,
            account_id=self.account_id,
            trade_id=TradeId(f"{self.venue}-T-{self._trade_count}"),
            order_side=order.side,
            order_type=wo.order_type,
            last_qty=Quantity.from_raw(qty, inst.size_precision),
            last_px=Price.from_raw(px, inst.price_precision),
            currency=inst.quote_currency,
            commission=Money.from_raw(commission, inst.quote_currency),
            liquidity_side=liquidity,
            ts_event=ts,
            ts_init=ts,
        )
        self._report()
        self._emit(fill)

    def _cancel_now(self, book: InstrumentBook, wo: WorkingOrder, reason: str | None = None) -> None:
        book.remove(wo)
        wo.status = OrderStatusAtVenue.CANCELED
        self.account.release(wo.client_order_id)
        self._report()
        self._emit(self._venue_event(OrderCanceled, wo, reason=reason))


def resting_fee(instrument):
    """Fee rate a passive order is checked and locked at: the higher one, so the lock covers any fill."""
    return max(instrument.maker_fee, instrument.taker_fee)
