"""The DataEngine: takes market data in, updates the cache, publishes it on the bus.

Data arrives from data clients (live) or the backtest loop through ``process``; actors
subscribe through ``DataEngine.execute`` commands. Internally aggregated bars are built by
a ``TimeBarAggregator`` that listens on the bus like any other subscriber, so bars are made
the same way in backtest and live.

``process_quote_tick`` is the per-tick path of every backtest: one dict store in the cache,
one topic lookup, one publish. Anything else belongs in a subscriber.
"""

from __future__ import annotations

from node.common.component import Component
from node.data.aggregation import TimeBarAggregator
from node.data.messages import DataKind, Subscribe, Unsubscribe, bars_topic, quotes_topic, trades_topic
from node.model.data import Bar, QuoteTick, TradeTick

_MARKET_DATA = (DataKind.QUOTES, DataKind.TRADES, DataKind.BARS)  # keyed by (a bar type's) instrument


class DataEngineError(Exception):
    """A data command the engine cannot carry out (e.g. bars for an unknown instrument)."""


class DataEngine(Component):
    def __init__(self, msgbus, cache, clock, logger=None) -> None:
        super().__init__("DataEngine", clock=clock, logger=logger, msgbus=msgbus)
        self._cache = cache
        self._bus = msgbus
        self._quote_topics: dict = {}
        self._trade_topics: dict = {}
        self._aggregators: dict = {}
        self._subscribers: dict[tuple, set[str]] = {}
        self._clients: list = []
        self.command_count = 0
        self._dispatch = {
            QuoteTick: self.process_quote_tick,
            TradeTick: self.process_trade_tick,
            Bar: self.process_bar,
        }
        msgbus.register("DataEngine.execute", self.execute)
        msgbus.register("DataEngine.process", self.process)

    # -- clients -------------------------------------------------------------------------------
    def register_client(self, client) -> None:
        """A live data client: told about subscriptions so it can stream what is needed."""
        self._clients.append(client)

    @property
    def clients(self) -> list:
        return list(self._clients)

    # -- data ----------------------------------------------------------------------------------
    def process(self, data) -> None:
        """Route any data object by type (the generic entry; hot callers use the typed methods)."""
        handler = self._dispatch.get(type(data))
        if handler is None:
            raise DataEngineError(f"DataEngine cannot process {type(data).__name__}")
        handler(data)

    def process_quote_tick(self, tick) -> None:
        iid = tick.instrument_id
        self._cache._quotes[iid] = tick
        topic = self._quote_topics.get(iid)
        if topic is None:
            topic = self._quote_topics[iid] = quotes_topic(iid)
        self._bus.publish(topic, tick)

    def process_trade_tick(self, tick) -> None:
        iid = tick.instrument_id
        self._cache._trades[iid] = tick
        topic = self._trade_topics.get(iid)
        if topic is None:
            topic = self._trade_topics[iid] = trades_topic(iid)
        self._bus.publish(topic, tick)

    def process_bar(self, bar) -> None:
        self._cache.add_bar(bar)
        self._bus.publish(bars_topic(bar.bar_type), bar)

    # -- commands ------------------------------------------------------------------------------
    def execute(self, command) -> None:
        self.command_count += 1
        if isinstance(command, Subscribe):
            self._subscribe(command)
        elif isinstance(command, Unsubscribe):
            self._unsubscribe(command)
        else:
            raise DataEngineError(f"unknown data command {type(command).__name__}")

    def _subscribe(self, cmd: Subscribe) -> None:
        key = (cmd.kind, cmd.key)
        subscribers = self._subscribers.get(key)
        if subscribers:
            subscribers.add(cmd.subscriber)
            return
        # First subscriber: check the instrument (and set up the aggregator) before recording
        # the subscription, so one that fails leaves no trace and can be retried.
        if cmd.kind in _MARKET_DATA:
            self._need_instrument(cmd.kind, cmd.key)
        if cmd.kind == DataKind.BARS and cmd.key.is_internally_aggregated:
            self._start_aggregator(cmd.key)
        self._subscribers[key] = {cmd.subscriber}
        for client in self._clients:
            client.subscribe(cmd.kind, cmd.key)

    def _need_instrument(self, kind: DataKind, key) -> None:
        """Refuse market data of an instrument the node does not have (no data would ever come).

        A strategy subscribed to a mistyped or unconfigured instrument would otherwise wait
        forever, silently; refused here, the node's start-up fails at its 'strategies' step
        naming the instrument, the same way for quotes, trades and bars.
        """
        iid = key.instrument_id if kind == DataKind.BARS else key
        if self._cache.instrument(iid) is None:
            what = f"{key} bars" if kind == DataKind.BARS else f"{kind.name.lower()} of {iid}"
            raise DataEngineError(
                f"cannot subscribe to {what}: instrument {iid} is not in the cache (not configured, "
                "or no venue lists it); add it first"
            )

    def _unsubscribe(self, cmd: Unsubscribe) -> None:
        key = (cmd.kind, cmd.key)
        subscribers = self._subscribers.get(key)
        if not subscribers or cmd.subscriber not in subscribers:
            return
        subscribers.discard(cmd.subscriber)
        if subscribers:
            return
        del self._subscribers[key]
        if cmd.kind == DataKind.BARS:
            self._stop_aggregator(cmd.key)
        for client in self._clients:
            client.unsubscribe(cmd.kind, cmd.key)

    def subscribed(self, kind: DataKind) -> list:
        return [key for (k, key) in self._subscribers if k == kind]

    def _start_aggregator(self, bar_type) -> None:
        if bar_type in self._aggregators:
            return
        instrument = self._cache.instrument(bar_type.instrument_id)
        if instrument is None:
            raise DataEngineError(
                f"cannot aggregate {bar_type}: instrument {bar_type.instrument_id} is not in the cache; add it first"
            )
        aggregator = TimeBarAggregator(instrument, bar_type, self.process_bar, self._clock)
        self._aggregators[bar_type] = aggregator
        from node.model.enums import PriceType

        iid = bar_type.instrument_id
        if bar_type.spec.price_type == PriceType.LAST:
            self._bus.subscribe(trades_topic(iid), aggregator.handle_trade_tick, priority=10)
        else:
            self._bus.subscribe(quotes_topic(iid), aggregator.handle_quote_tick, priority=10)
        if self.is_running:
            aggregator.start()

    def _stop_aggregator(self, bar_type) -> None:
        aggregator = self._aggregators.pop(bar_type, None)
        if aggregator is None:
            return
        aggregator.stop()
        iid = bar_type.instrument_id
        self._bus.unsubscribe(trades_topic(iid), aggregator.handle_trade_tick)
        self._bus.unsubscribe(quotes_topic(iid), aggregator.handle_quote_tick)

    # -- lifecycle -----------------------------------------------------------------------------
    def on_start(self) -> None:
        for aggregator in self._aggregators.values():
            aggregator.start()

    def on_stop(self) -> None:
        for aggregator in self._aggregators.values():
            aggregator.stop()

    def on_resume(self) -> None:
        for aggregator in self._aggregators.values():
            aggregator.start()

    def on_reset(self) -> None:
        for bar_type in list(self._aggregators):
            self._stop_aggregator(bar_type)
        self._subscribers.clear()
        self.command_count = 0
