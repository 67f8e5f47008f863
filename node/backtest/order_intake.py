"""OrderIntake: how the venue takes a new order, by order type, up to its acceptance.

A submitted order is refused outright (unknown instrument, account cannot trade it, quantity or
price off the instrument's increments), rejected for its market situation (no market yet, post-only
that would take, stop already in the market) or for the ledger, or accepted: it rests on the book,
is queued for the next bar open, or executes at once (``order_execution.py`` takes it from there).
Kept apart from ``exchange.py`` so the per-type admission rules read in one place; it is a mixin of
``SimulatedExchange`` and works on the state that class's ``__init__`` sets.
"""

from __future__ import annotations

from types import MappingProxyType

from node.backtest.account import Leg, Requirement
from node.backtest.matching import InstrumentBook, MarketDriver, WorkingOrder, is_marketable, is_stop_hit
from node.backtest.order_execution import resting_fee
from node.model.enums import OrderType
from node.model.identifiers import VenueOrderId
from node.model.objects import format_raw


class OrderIntake:
    """``SimulatedExchange`` submission steps: refusal checks, per-type submission, acceptance."""

    # -- submission, by order type ---------------------------------------------------------------

    def _refuse_reason(self, order, book) -> str | None:
        """Why the venue refuses the order outright (before any market consideration), or None."""
        if book is None:
            return f"instrument {order.instrument_id} is not traded on venue {self.venue}"
        inst = book.instrument
        refused = self.account.refuse_reason(inst)
        if refused is not None:
            return refused
        qty = order.quantity
        if qty.precision != inst.size_precision or qty.raw % inst.size_increment.raw:
            return f"quantity {qty} does not fit {inst.id}'s size increment {inst.size_increment}"
        for name in ("price", "trigger_price"):
            px = getattr(order, name)
            if px is not None and (px.precision != inst.price_precision or px.raw % inst.price_increment.raw):
                return f"{name} {px} does not fit {inst.id}'s price increment {inst.price_increment}"
        return None

    def _submit_market(self, book: InstrumentBook, wo: WorkingOrder) -> None:
        driver = book.driver()
        if driver is MarketDriver.NONE:
            self._reject(wo.order, f"no market for {wo.instrument_id} yet: no quote, trade or bar seen")
        elif driver is MarketDriver.BAR and not self._fill_at_close:
            self._queue(book, wo, book.bar.close.raw)
        else:
            self._submit_now(book, wo, self._plan(book, wo))

    def _submit_limit(self, book: InstrumentBook, wo: WorkingOrder) -> None:
        prices = book.bid_ask_raw()
        if prices is not None and is_marketable(wo.is_buy, wo.price_raw, *prices):
            if wo.order.post_only:
                bid, ask = prices
                touch = _fmt_px(book, ask if wo.is_buy else bid)
                self._reject(
                    wo.order,
                    f"post-only {_side(wo)} limit at {_fmt_px(book, wo.price_raw)} would take liquidity "
                    f"({'ask' if wo.is_buy else 'bid'} {touch})",
                )
            elif book.driver() is MarketDriver.BAR and not self._fill_at_close:
                self._queue(book, wo, wo.price_raw)
            else:
                self._submit_now(book, wo, self._plan(book, wo, wo.price_raw))
        elif wo.is_immediate_or_cancel:
            self._accept(book, wo, None, rest=False)
            self._cancel_now(book, wo)
        else:
            inst = book.instrument
            self._rest(book, wo, [(wo.leaves_raw, wo.price_raw, resting_fee(inst))])

    def _submit_stop(self, book: InstrumentBook, wo: WorkingOrder) -> None:
        prices = book.bid_ask_raw()
        if prices is None or not is_stop_hit(wo.is_buy, wo.trigger_raw, *prices):
            self._rest(book, wo, [(wo.leaves_raw, wo.trigger_raw, book.instrument.taker_fee)])
            return
        if self.reject_stop_orders_in_market:
            bid, ask = prices
            touch = f"ask {_fmt_px(book, ask)}" if wo.is_buy else f"bid {_fmt_px(book, bid)}"
            self._reject(
                wo.order,
                f"stop {_side(wo)} trigger {_fmt_px(book, wo.trigger_raw)} is already in the market ({touch})",
            )
            return
        wo.triggered = True
        if book.driver() is MarketDriver.BAR and not self._fill_at_close:
            self._queue(book, wo, book.bar.close.raw, triggered=True)
        else:
            self._submit_now(book, wo, self._plan(book, wo), triggered=True)

    _SUBMIT = MappingProxyType(
        {
            OrderType.MARKET: _submit_market,
            OrderType.LIMIT: _submit_limit,
            OrderType.STOP_MARKET: _submit_stop,
        }
    )

    def _rest(self, book: InstrumentBook, wo: WorkingOrder, legs: list[Leg]) -> None:
        """Check, lock and put a passive order on the book."""
        req = self.account.requirement(book.instrument, wo.is_buy, legs)
        reason = self.account.check(req)
        if reason is not None:
            self._reject(wo.order, reason)
            return
        self._accept(book, wo, req, rest=True)

    def _queue(
        self, book: InstrumentBook, wo: WorkingOrder, estimate_raw: int, triggered: bool = False
    ) -> None:
        """Accept an order that executes at the next market data (bar next_open); locks an estimate."""
        inst = book.instrument
        req = self.account.requirement(inst, wo.is_buy, [(wo.leaves_raw, estimate_raw, inst.taker_fee)])
        reason = self.account.check(req)
        if reason is not None:
            self._reject(wo.order, reason)
            return
        wo.queued = True
        self._accept(book, wo, req, rest=True)
        if triggered:
            self._emit(self._triggered(wo))

    def _submit_now(self, book: InstrumentBook, wo: WorkingOrder, legs, triggered: bool = False) -> None:
        """Check, accept and execute at once (market, marketable limit, stop triggered on arrival)."""
        taker, tail = self._take_legs(book, wo, legs)
        req = self.account.requirement(book.instrument, wo.is_buy, taker + tail)
        reason = self.account.check(req)
        if reason is not None:
            self._reject(wo.order, reason)
            return
        self._accept(book, wo, req, rest=False)
        if triggered:
            self._emit(self._triggered(wo))
        self._run(book, wo, taker, tail)

    def _accept(self, book: InstrumentBook, wo: WorkingOrder, req: Requirement | None, rest: bool) -> None:
        self._order_count += 1
        wo.venue_order_id = VenueOrderId(f"{self.venue}-{self._order_count}")
        self._seen[wo.client_order_id] = wo
        if req is not None:
            self.account.lock(wo.client_order_id, req)
        if rest:  # a lock that outlives this call is reported; a running execution's shows in its fills
            book.add(wo)
            self._report()
        self._emit(self._accepted(wo))


def _side(wo: WorkingOrder) -> str:
    return "buy" if wo.is_buy else "sell"


def _fmt_px(book: InstrumentBook, raw: int) -> str:
    return format_raw(raw, book.instrument.price_precision)
