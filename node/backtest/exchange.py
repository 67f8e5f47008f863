"""SimulatedExchange: one simulated venue (instruments, order handling, market data, events).

The venue sits behind a ``BacktestExecutionClient`` and answers every command synchronously with
events through ``exec_client.emit`` (the ExecutionEngine applies each at once). The matching rules
are in ``matching.py``, the ledger in ``account.py``; this module sequences them and speaks events.

Event order, and why:

* Every order the venue takes is acknowledged with ``OrderAccepted`` before anything else happens
  to it (trigger, fill, cancel), including market orders that fill at once.
* Balance changes are reported *before* the order event that caused them: ``AccountState`` (only
  when the reported balances actually changed) then ``OrderAccepted``/``OrderFilled``/
  ``OrderCanceled``. A strategy reacting to a fill therefore already sees the balances that include
  it, and an order it submits from that callback is checked against them.
* Re-entrancy: a handler may submit or cancel orders while an event is being delivered. The venue
  finishes every state change (book, ledger, counters) before it emits, and an order that is
  executing is off the book, so a nested command never sees a half-done state; cash a running
  execution still needs stays locked until its fill. Nested events come out nested, but each
  order's own events stay in order.
* A matched order is re-checked just before it executes (an earlier event's handler may have
  canceled it); a stop or queued order is re-checked against the ledger at execution, and canceled
  by the venue (``OrderCanceled``) if the account can no longer pay for it at the actual price.

Ids are deterministic counters: venue order ids ``{venue}-{n}`` (given on acceptance), trade ids
``{venue}-T-{n}``; ``reset()`` restarts them. A client order id the venue has seen before (accepted
or rejected) is rejected: a node that restarts and retries a command cannot trade twice.

Reduce-only: the RiskEngine refuses a reduce-only order that would not reduce when it is
submitted; the venue checks again when a queued, triggered or resting one executes (on a MARGIN
account, against its net position) and cancels it with a reason if it would now open or increase
a position — e.g. two closes queued for the same next bar open.

Durable state (``venue_state/``): ``snapshot()``/``restore()`` put the whole venue state in one
blob; ``state_blobs()``/``restore_blobs()`` give the same state as keyed blobs whose per-call cost
does not grow with the number of client order ids seen. Take either between venue calls (never
from a handler of an event the venue is emitting), restore into a freshly built venue.

Not simulated: FX conversion, order expiry (GTD/DAY behave as GTC: orders carry no expire time),
latency, liquidation.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from node.backtest import venue_state
from node.backtest.account import Leg, Requirement, SimulatedAccount, commission_raw
from node.backtest.execution_client import BacktestExecutionClient
from node.backtest.matching import (
    Action,
    InstrumentBook,
    MarketDriver,
    OrderStatusAtVenue,
    WorkingOrder,
    is_marketable,
    is_stop_hit,
    match_bar_range,
    match_prices,
    thin_book_slices,
)
from node.model.enums import AccountType, LiquiditySide, OmsType, OrderType, TimeInForce
from node.model.errors import InvalidDataError
from node.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
)
from node.model.identifiers import AccountId, ClientOrderId, TradeId, Venue, VenueOrderId
from node.model.objects import Currency, Money, Price, Quantity, format_raw

_FILL_AT_CLOSE = MappingProxyType({"next_open": False, "close": True})
"""``bar_execution`` values: does an order on a bar-driven instrument execute at the latest close?"""


class ExchangeConfigError(ValueError):
    """A SimulatedExchange built or configured with invalid settings."""


class UnknownInstrumentError(KeyError):
    """Market data for an instrument that was never added to this venue."""

    def __str__(self) -> str:
        return str(self.args[0])


class SimulatedExchange:
    """One simulated venue; see the module docstring for the event contract."""

    def __init__(
        self,
        venue: Venue,
        oms_type: OmsType,
        account_type: AccountType,
        starting_balances: list[Money],
        clock,
        base_currency: Currency | None = None,
        bar_execution: str = "next_open",
        reject_stop_orders_in_market: bool = True,
    ) -> None:
        if bar_execution not in _FILL_AT_CLOSE:
            raise ExchangeConfigError(
                f"bar_execution must be one of {list(_FILL_AT_CLOSE)}, got {bar_execution!r}"
            )
        self.venue = venue if isinstance(venue, Venue) else Venue(venue)
        self.oms_type = OmsType(oms_type)
        self.account_id = AccountId(f"{self.venue}-001")
        self.account = SimulatedAccount(self.account_id, account_type, starting_balances, base_currency)
        self.bar_execution = bar_execution
        self.reject_stop_orders_in_market = bool(reject_stop_orders_in_market)
        self._fill_at_close = _FILL_AT_CLOSE[bar_execution]
        self._clock = clock
        self._books: dict = {}
        # client order id -> WorkingOrder, or None when rejected; after restore_blobs() a done order
        # maps to a venue_state.StoredOrders until _seen_order() first decodes it (and the restored
        # keys are plain str but the first)
        self._seen: dict = {}
        self._order_count = 0
        self._trade_count = 0
        self._last_reported = None
        self._state_log = None  # venue_state.StateLog, made by the first state_blobs()
        self.exec_client = BacktestExecutionClient(self)

    # -- setup -----------------------------------------------------------------------------------

    def add_instrument(self, instrument) -> None:
        """Trade ``instrument`` here (adding it again replaces its definition, keeping its book)."""
        if instrument.id.venue != self.venue:
            raise ExchangeConfigError(
                f"instrument {instrument.id} belongs to venue {instrument.id.venue}, not {self.venue}"
            )
        book = self._books.get(instrument.id)
        if book is None:
            self._books[instrument.id] = InstrumentBook(instrument)
        else:
            book.instrument = instrument

    def instrument(self, instrument_id):
        book = self._books.get(instrument_id)
        return None if book is None else book.instrument

    @property
    def instruments(self) -> list:
        return [book.instrument for book in self._books.values()]

    def initialize_account(self) -> None:
        """Report the starting balances (the node's first AccountState for this venue)."""
        state = self.account.state(self._clock.timestamp_ns())
        self._last_reported = state.balances
        self.exec_client.emit(state)

    @property
    def account_reported(self) -> bool:
        """Whether the venue has reported its account yet (``initialize_account`` or since)."""
        return self._last_reported is not None

    def reset(self) -> None:
        """Back to the starting state: no data, no orders, starting balances, counters from 1."""
        for book in self._books.values():
            book.reset()
        self.account.reset()
        self._seen = {}
        self._order_count = 0
        self._trade_count = 0
        self._last_reported = None
        self._state_log = None

    # -- durable state (venue_state/) ----------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole venue state as bytes (cost grows with the client order ids seen)."""
        return venue_state.snapshot(self)

    def restore(self, data: bytes, orders: Mapping) -> None:
        """Restore a ``snapshot()`` into this freshly built venue; ``orders``: client order id -> Order.

        Raises ``VenueStateError`` for bytes that do not restore into this venue.
        """
        venue_state.restore(self, data, orders)
        self._state_log = None

    def state_blobs(self, full: bool = False) -> dict[str, bytes]:
        """The venue state as ``{key: bytes}``: the core plus the seen-id chunks changed since the
        last call (all of them if ``full``). Upsert every key returned; keep the others."""
        if self._state_log is None:
            self._state_log = venue_state.StateLog(self)
        return self._state_log.blobs(full)

    def restore_blobs(self, blobs: Mapping[str, bytes], orders: Mapping) -> None:
        """Restore every key ``state_blobs()`` ever returned into this freshly built venue."""
        self._state_log = venue_state.restore_blobs(self, blobs, orders)

    # -- queries ---------------------------------------------------------------------------------

    def open_orders(self, instrument_id=None) -> list[WorkingOrder]:
        """Orders working at the venue (resting or queued), per instrument in time priority."""
        if instrument_id is None:
            return [wo for book in self._books.values() for wo in book.orders]
        book = self._books.get(instrument_id)
        return [] if book is None else list(book.orders)

    def seen_client_order_ids(self) -> list:
        """Every client order id submitted here since the last reset, in arrival order."""
        return [c if type(c) is ClientOrderId else ClientOrderId(c) for c in self._seen]

    def has_seen(self, client_order_id) -> bool:
        return client_order_id in self._seen

    # -- market data (the per-tick path) ---------------------------------------------------------

    def process_quote_tick(self, tick) -> None:
        """Store the quote; match only if orders work on this instrument."""
        try:
            book = self._books[tick.instrument_id]
        except KeyError:
            raise self._unknown(tick.instrument_id) from None
        book.quote = tick
        if book.orders:
            self._match_prices(book, tick.bid_price, tick.ask_price)

    def process_trade_tick(self, tick) -> None:
        """Store the trade; resting orders match against it as a quote with bid = ask = price."""
        try:
            book = self._books[tick.instrument_id]
        except KeyError:
            raise self._unknown(tick.instrument_id) from None
        book.trade = tick
        if book.orders:
            self._match_prices(book, tick.price, tick.price)

    def process_bar(self, bar) -> None:
        """Store the bar; on a bar-driven instrument execute queued orders at the open, then the range."""
        try:
            book = self._books[bar.bar_type.instrument_id]
        except KeyError:
            raise self._unknown(bar.bar_type.instrument_id) from None
        book.bar = bar
        if book.orders and book.quote is None and book.trade is None:
            self._match_bar(book, bar)

    def _unknown(self, instrument_id) -> UnknownInstrumentError:
        known = ", ".join(str(i) for i in self._books) or "none"
        return UnknownInstrumentError(
            f"market data for {instrument_id}, which is not traded on venue {self.venue} (instruments: {known}); "
            "add_instrument() it first"
        )

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

    # -- commands --------------------------------------------------------------------------------

    def submit_order(self, command) -> None:
        order = command.order
        client_order_id = order.client_order_id
        if client_order_id in self._seen:
            self._reject(
                order, f"duplicate client order id {client_order_id}: venue {self.venue} has already seen it"
            )
            return
        self._seen[client_order_id] = None
        book = self._books.get(order.instrument_id)
        reason = self._refuse_reason(order, book)
        if reason is not None:
            self._reject(order, reason)
            return
        self._SUBMIT[order.order_type](self, book, WorkingOrder(order, None))

    def cancel_order(self, command) -> None:
        book = self._books.get(command.instrument_id)
        wo = None if book is None else book.get(command.client_order_id)
        if wo is None or wo.strategy_id != command.strategy_id:
            self._cancel_reject(command, command.client_order_id)
            return
        self._cancel_now(book, wo)

    def cancel_all_orders(self, command) -> None:
        """Cancel every order of the command's strategy working on its instrument, in time priority."""
        book = self._books.get(command.instrument_id)
        if book is None:
            return
        for wo in [wo for wo in book.orders if wo.strategy_id == command.strategy_id]:
            if book.contains(wo):  # a handler of an earlier cancel may have canceled it already
                self._cancel_now(book, wo)

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
            self._rest(book, wo, [(wo.leaves_raw, wo.price_raw, _resting_fee(inst))])

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
        tail = [(remainder, wo.price_raw, _resting_fee(inst))] if rests else []
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
                inst, wo.is_buy, [(wo.leaves_raw, wo.price_raw, _resting_fee(inst))]
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

    # -- events ----------------------------------------------------------------------------------

    def _emit(self, event) -> None:
        self.exec_client.emit(event)

    def _report(self) -> None:
        """Emit an AccountState if the balances differ from the last ones reported."""
        balances = self.account.balances()
        if balances != self._last_reported:
            self._last_reported = balances
            self._emit(self.account.state(self._clock.timestamp_ns()))

    def _reject(self, order, reason: str) -> None:
        ts = self._clock.timestamp_ns()
        self._emit(
            OrderRejected(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                account_id=self.account_id,
                reason=reason,
                ts_event=ts,
                ts_init=ts,
            )
        )

    def _venue_event(self, event_type, wo: WorkingOrder, **fields):
        """An order event about ``wo`` at the current time, with the ids every such event carries."""
        ts = self._clock.timestamp_ns()
        return event_type(
            trader_id=wo.order.trader_id,
            strategy_id=wo.strategy_id,
            instrument_id=wo.instrument_id,
            client_order_id=wo.client_order_id,
            venue_order_id=wo.venue_order_id,
            account_id=self.account_id,
            ts_event=ts,
            ts_init=ts,
            **fields,
        )

    def _accepted(self, wo: WorkingOrder) -> OrderAccepted:
        return self._venue_event(OrderAccepted, wo)

    def _triggered(self, wo: WorkingOrder) -> OrderTriggered:
        return self._venue_event(OrderTriggered, wo)

    def _seen_order(self, client_order_id) -> WorkingOrder | None:
        """The venue's record of a seen order (None: rejected, or never seen); a done order that
        ``restore_blobs()`` left stored is decoded now, once."""
        known = self._seen.get(client_order_id)
        if type(known) is venue_state.StoredOrders:
            known = self._seen[client_order_id] = known.order(self, client_order_id)
        return known

    def _cancel_reject(self, command, client_order_id) -> None:
        known = self._seen_order(client_order_id)
        ts = self._clock.timestamp_ns()
        self._emit(
            OrderCancelRejected(
                trader_id=command.trader_id,
                strategy_id=command.strategy_id,
                instrument_id=command.instrument_id,
                client_order_id=client_order_id,
                venue_order_id=None if known is None else known.venue_order_id,
                account_id=self.account_id,
                reason=self._why_not_cancelable(command, client_order_id, known),
                ts_event=ts,
                ts_init=ts,
            )
        )

    def _why_not_cancelable(self, command, client_order_id, known: WorkingOrder | None) -> str:
        if client_order_id not in self._seen:
            return f"order {client_order_id} is unknown to venue {self.venue}"
        if known is None:
            return f"order {client_order_id} was rejected by venue {self.venue}"
        if known.instrument_id != command.instrument_id:
            return f"order {client_order_id} is for {known.instrument_id}, not {command.instrument_id}"
        if known.strategy_id != command.strategy_id:
            return (
                f"order {client_order_id} belongs to strategy {known.strategy_id}, not {command.strategy_id}"
            )
        if known.status is not OrderStatusAtVenue.WORKING:
            return f"order {client_order_id} is already {known.status.name.lower()}"
        return (
            f"order {client_order_id} is executing (market, triggered or marketable) and cannot be canceled"
        )


def _resting_fee(instrument):
    """Fee rate a passive order is checked and locked at: the higher one, so the lock covers any fill."""
    return max(instrument.maker_fee, instrument.taker_fee)


def _side(wo: WorkingOrder) -> str:
    return "buy" if wo.is_buy else "sell"


def _fmt_px(book: InstrumentBook, raw: int) -> str:
    return format_raw(raw, book.instrument.price_precision)
