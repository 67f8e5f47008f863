"""SimulatedExchange: one simulated venue (instruments, order handling, market data, events).

The venue sits behind a ``BacktestExecutionClient`` and answers every command synchronously with
events through ``exec_client.emit`` (the ExecutionEngine applies each at once). The matching rules
are in ``matching.py``, the ledger in ``account.py``. The venue is one class, ``SimulatedExchange``,
written in four modules: this one (construction, setup, queries, durable state, market data and
commands in), ``order_intake.py`` (taking a new order, by type), ``order_execution.py`` (matching,
fills, triggers, cancels) and ``venue_events.py`` (what it emits, and when it reports its account).

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
from node.backtest.account import SimulatedAccount
from node.backtest.execution_client import BacktestExecutionClient
from node.backtest.matching import InstrumentBook, WorkingOrder
from node.backtest.order_execution import OrderExecution
from node.backtest.order_intake import OrderIntake
from node.backtest.venue_events import VenueEvents
from node.model.enums import AccountType, OmsType
from node.model.identifiers import AccountId, ClientOrderId, Venue
from node.model.objects import Currency, Money

_FILL_AT_CLOSE = MappingProxyType({"next_open": False, "close": True})
"""``bar_execution`` values: does an order on a bar-driven instrument execute at the latest close?"""


class ExchangeConfigError(ValueError):
    """A SimulatedExchange built or configured with invalid settings."""


class UnknownInstrumentError(KeyError):
    """Market data for an instrument that was never added to this venue."""

    def __str__(self) -> str:
        return str(self.args[0])


class SimulatedExchange(OrderIntake, OrderExecution, VenueEvents):
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
