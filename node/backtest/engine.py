"""BacktestEngine: replays historical data through a kernel and simulated venues.

The run loop is the hot path of every backtest and is kept to the minimum per data point:
one comparison to see whether a timer is due (bar closes, equity samples), one store of the
simulated time, the venue's update, and the DataEngine's publish. Validation happens when
data is added (types, each stream's timestamps never going backwards), not in the loop.

Order of work for each data point at time t: timers due at or before t fire first (a bar
closing at t is complete before the tick at t is seen), then the venue sees the data (so
resting orders match on it), then strategies see it. Orders a strategy submits are matched
against the latest market the venue knows; with bars, market orders fill at the next
bar's open by default (no look-ahead).
"""

from __future__ import annotations

import gc
import heapq
import time
from dataclasses import dataclass, field
from operator import attrgetter

from node.backtest.exchange import SimulatedExchange
from node.backtest.results import BacktestResult, compute_stats
from node.common.clock import TestClock
from node.model.data import Bar, QuoteTick, TradeTick
from node.model.enums import AccountType, OmsType
from node.model.errors import OutOfOrderDataError
from node.model.events import OrderFilled
from node.model.identifiers import Venue
from node.model.objects import Currency, Money
from node.model.timestamps import NANOS_PER_SECOND, format_iso8601
from node.risk.engine import RiskConfig
from node.system.kernel import Environment, Kernel, KernelConfig


class BacktestError(Exception):
    """A backtest that cannot run as set up (no data, unknown venue, used after dispose...)."""


@dataclass
class BacktestEngineConfig:
    run_id: str = "backtest"
    trader_id: str = "BACKTESTER-001"
    log_level: str = "WARNING"
    risk: RiskConfig = field(default_factory=RiskConfig)
    bar_capacity: int = 10_000
    equity_sample_interval_s: float = 3600.0
    collect_events: bool = True
    # Move everything alive at the start of the run (the loaded data, millions of objects)
    # out of the cyclic GC's reach for the run: otherwise every full collection walks all of
    # it, which costs about 30% of a quote-driven run. Objects made during the run are
    # collected as usual; the data is handed back to the GC when the run ends.
    freeze_gc: bool = True

    def __post_init__(self) -> None:
        if self.equity_sample_interval_s <= 0:
            raise ValueError(
                f"equity_sample_interval_s must be positive, got {self.equity_sample_interval_s}"
            )


def _stream_key(item):
    t = type(item)
    if t is Bar:
        return (Bar, item.bar_type)
    if t is QuoteTick or t is TradeTick:
        return (t, item.instrument_id)
    raise BacktestError(f"cannot replay {t.__name__}: only QuoteTick, TradeTick and Bar are supported")


class BacktestEngine:
    def __init__(self, config: BacktestEngineConfig | None = None, log_sink=None) -> None:
        self.config = config or BacktestEngineConfig()
        self.clock = TestClock()
        self.kernel = Kernel(
            Environment.BACKTEST,
            self.clock,
            KernelConfig(
                trader_id=self.config.trader_id,
                log_level=self.config.log_level,
                risk=self.config.risk,
                bar_capacity=self.config.bar_capacity,
            ),
            log_sink=log_sink,
        )
        self._venues: dict[Venue, SimulatedExchange] = {}
        self._reporting_currency: Currency | None = None
        self._data: list = []
        self._stream_last: dict = {}
        self._events: list = []
        self._equity_curve: list[tuple[int, float]] = []
        self._has_run = False
        self._disposed = False
        if self.config.collect_events:
            self.kernel.msgbus.subscribe("events.order.*", self._events.append)
            self.kernel.msgbus.subscribe("events.position.*", self._events.append)

    # -- set-up ----------------------------------------------------------------------------------
    @property
    def cache(self):
        return self.kernel.cache

    @property
    def portfolio(self):
        return self.kernel.portfolio

    def exchange(self, venue) -> SimulatedExchange:
        return self._venues[Venue(venue)]

    def add_venue(
        self,
        venue: Venue | str,
        starting_balances: list[Money],
        oms_type: OmsType = OmsType.NETTING,
        account_type: AccountType = AccountType.MARGIN,
        base_currency: Currency | None = None,
        bar_execution: str = "next_open",
    ) -> SimulatedExchange:
        self._check_usable()
        venue = Venue(venue)
        if venue in self._venues:
            raise BacktestError(f"venue {venue} was already added")
        if not starting_balances:
            raise BacktestError(f"venue {venue} needs at least one starting balance")
        exchange = SimulatedExchange(
            venue,
            OmsType(oms_type),
            AccountType(account_type),
            list(starting_balances),
            self.clock,
            base_currency=base_currency,
            bar_execution=bar_execution,
        )
        self.kernel.exec_engine.register_client(exchange.exec_client, oms_type=OmsType(oms_type))
        self._venues[venue] = exchange
        if self._reporting_currency is None:
            self._reporting_currency = base_currency or starting_balances[0].currency
        return exchange

    def add_instrument(self, instrument) -> None:
        self._check_usable()
        exchange = self._venues.get(instrument.id.venue)
        if exchange is None:
            raise BacktestError(f"add venue {instrument.id.venue} before instrument {instrument.id}")
        self.kernel.cache.add_instrument(instrument)
        exchange.add_instrument(instrument)

    def add_data(self, data: list) -> None:
        """Add one or more streams; each stream's ``ts_init`` must never go backwards."""
        self._check_usable()
        if not data:
            return
        last = self._stream_last
        cache = self.kernel.cache
        for index, item in enumerate(data):
            key = _stream_key(item)
            prev = last.get(key)
            if prev is None:
                iid = item.bar_type.instrument_id if key[0] is Bar else item.instrument_id
                if cache.instrument(iid) is None:
                    raise BacktestError(f"data for {iid} at index {index}: add the instrument first")
            elif item.ts_init < prev:
                raise OutOfOrderDataError(
                    f"data item {index} ({key[0].__name__} {key[1]}) at {format_iso8601(item.ts_init)} is earlier "
                    f"than the previous one of its stream at {format_iso8601(prev)}: sort the stream by time; "
                    "data is never reordered silently"
                )
            last[key] = item.ts_init
        if not self._data:
            self._data = list(data)
        else:
            self._data = list(heapq.merge(self._data, data, key=attrgetter("ts_init")))

    def add_strategy(self, strategy) -> None:
        self._check_usable()
        self.kernel.add_strategy(strategy)

    def add_actor(self, actor) -> None:
        self._check_usable()
        self.kernel.add_actor(actor)

    def _check_usable(self) -> None:
        if self._disposed:
            raise BacktestError("this BacktestEngine was disposed; create a new one")

    # -- run -------------------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        self._check_usable()
        if self._has_run:
            raise BacktestError("this engine has already run; call reset() before running again")
        if not self._data:
            raise BacktestError("no data: add_data() before run()")
        self._has_run = True
        clock = self.clock
        data = self._data
        if data[0].ts_init > clock.timestamp_ns():
            clock.set_time(data[0].ts_init)
        kernel = self.kernel
        kernel.start_engines()
        for exchange in self._venues.values():
            exchange.initialize_account()
        starting_equity = self.equity()
        interval_ns = int(self.config.equity_sample_interval_s * NANOS_PER_SECOND)
        clock.set_timer("backtest-equity-sampler", interval_ns, self._sample_equity)
        kernel.start_components()

        if self.config.freeze_gc:
            gc.collect()
            gc.freeze()
        started = time.perf_counter()
        try:
            self._loop(data)
        finally:
            elapsed = time.perf_counter() - started
            if self.config.freeze_gc:
                gc.unfreeze()

        kernel.stop()
        clock.cancel_timer("backtest-equity-sampler")
        self._equity_curve.append((clock.timestamp_ns(), self.equity()))
        return self._result(starting_equity, interval_ns, len(data), elapsed)

    def _loop(self, data: list) -> None:
        clock = self.clock
        by_instrument = {}
        for exchange in self._venues.values():
            for instrument in exchange.instruments:
                by_instrument[instrument.id] = exchange
        venue_quote = {iid: ex.process_quote_tick for iid, ex in by_instrument.items()}
        venue_trade = {iid: ex.process_trade_tick for iid, ex in by_instrument.items()}
        venue_bar = {iid: ex.process_bar for iid, ex in by_instrument.items()}
        data_engine = self.kernel.data_engine
        engine_quote = data_engine.process_quote_tick
        engine_trade = data_engine.process_trade_tick
        engine_bar = data_engine.process_bar
        advance = clock.advance_time
        for item in data:
            ts = item.ts_init
            if ts >= clock.next_event_ns:
                advance(ts)
            else:
                # The loop drives the TestClock: order was validated in add_data, so the
                # checked set_time() would only repeat that work on every data point.
                clock._time_ns = ts
            kind = type(item)
            if kind is QuoteTick:
                venue_quote[item.instrument_id](item)
                engine_quote(item)
            elif kind is Bar:
                venue_bar[item.bar_type.instrument_id](item)
                engine_bar(item)
            else:
                venue_trade[item.instrument_id](item)
                engine_trade(item)

    # -- equity and results ----------------------------------------------------------------------
    def equity(self) -> float:
        """Account value in the reporting currency, open positions marked to market."""
        currency = self._reporting_currency
        total = 0.0
        cache = self.kernel.cache
        portfolio = self.kernel.portfolio
        for venue in self._venues:
            account = cache.account_for_venue(venue)
            if account is None:
                continue
            for cur, money in account.balances_total().items():
                if cur == currency:
                    total += money.as_double()
                else:
                    total += money.as_double() * self._conversion_rate(cur, currency)
            if account.account_type == AccountType.MARGIN:
                unrealized = portfolio.unrealized_pnls(venue).get(currency)
                if unrealized is not None:
                    total += unrealized.as_double()
        return total

    def _conversion_rate(self, from_currency: Currency, to_currency: Currency) -> float:
        """Mid price of an instrument quoting ``from_currency`` in ``to_currency`` (0 if none)."""
        cache = self.kernel.cache
        for instrument in cache.instruments():
            if (
                getattr(instrument, "base_currency", None) == from_currency
                and instrument.quote_currency == to_currency
            ):
                price = cache.price(instrument.id)
                if price is not None:
                    return price.as_double()
        return 0.0

    def _sample_equity(self, event) -> None:
        self._equity_curve.append((event.ts_event, self.equity()))

    def _result(self, starting_equity: float, interval_ns: int, count: int, elapsed: float) -> BacktestResult:
        cache = self.kernel.cache
        closed = [p.realized_pnl.as_double() for p in cache.positions_closed()]
        stats = compute_stats(self._equity_curve, starting_equity, closed, interval_ns)
        events = self._events
        return BacktestResult(
            run_id=self.config.run_id,
            currency=str(self._reporting_currency),
            starting_equity=starting_equity,
            stats=stats,
            orders=[o.to_dict() for o in cache.orders()],
            fills=[e.to_dict() for e in events if type(e) is OrderFilled],
            positions=[p.to_dict() for p in cache.positions()],
            events=[e.to_dict() for e in events],
            equity_curve=list(self._equity_curve),
            data_count=count,
            elapsed_s=elapsed,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state before run(): same venues, instruments, data and strategies."""
        self._check_usable()
        self.kernel.stop()
        self.kernel.reset()
        for exchange in self._venues.values():
            exchange.reset()
            for instrument in exchange.instruments:
                self.kernel.cache.add_instrument(instrument)
        self.clock.reset()
        self._events.clear()
        self._equity_curve.clear()
        self._has_run = False

    def dispose(self) -> None:
        if self._disposed:
            return
        self.kernel.dispose()
        self._venues.clear()
        self._data = []
        self._stream_last.clear()
        self._events.clear()
        self._equity_curve.clear()
        self._disposed = True
