"""Actor: a component that receives market data and events and reacts in ``on_*`` hooks.

Users subclass it (or Strategy) and override the hooks; the kernel registers it, which
wires clock, logger, bus, cache and portfolio. Data handlers check ``is_running`` so an
actor that is stopped or degraded stops reacting without unsubscribing.
"""

from __future__ import annotations

from node.common.component import Component
from node.data.messages import DataKind, Subscribe, Unsubscribe, bars_topic, quotes_topic, trades_topic


class ActorConfig:
    """Plain config; subclasses add fields. ``component_id`` defaults to the class name."""

    def __init__(self, component_id: str | None = None, **kwargs) -> None:
        self.component_id = component_id
        for key, value in kwargs.items():
            setattr(self, key, value)


class Actor(Component):
    def __init__(self, config=None, component_id: str | None = None) -> None:
        self.config = config
        cid = component_id or getattr(config, "component_id", None) or type(self).__name__
        super().__init__(cid)
        self.trader_id = None
        self.cache = None
        self.portfolio = None
        self._bar_indicators: dict = {}
        self._quote_indicators: dict = {}
        self._trade_indicators: dict = {}
        self._indicators: list = []

    # -- wiring ----------------------------------------------------------------------------------
    def register(self, trader_id, msgbus, cache, clock, logger, portfolio=None) -> None:
        """Called by the kernel: attach the actor to one trader's services."""
        # register_base first: it refuses an actor already registered elsewhere, and that refusal
        # must leave the actor wired to its own kernel's cache and portfolio.
        self.register_base(clock, logger, msgbus)
        self.trader_id = trader_id
        self.cache = cache
        self.portfolio = portfolio

    @property
    def clock(self):
        return self._clock

    @property
    def msgbus(self):
        return self._msgbus

    @property
    def log(self):
        return self._log

    # -- indicators ------------------------------------------------------------------------------
    def register_indicator_for_bars(self, bar_type, indicator) -> None:
        self._register(self._bar_indicators, bar_type, indicator)

    def register_indicator_for_quote_ticks(self, instrument_id, indicator) -> None:
        self._register(self._quote_indicators, instrument_id, indicator)

    def register_indicator_for_trade_ticks(self, instrument_id, indicator) -> None:
        self._register(self._trade_indicators, instrument_id, indicator)

    def _register(self, table: dict, key, indicator) -> None:
        """Idempotent: registering again (e.g. in on_start after a reset) must not double-update."""
        registered = table.setdefault(key, [])
        if not any(i is indicator for i in registered):
            registered.append(indicator)
        if not any(i is indicator for i in self._indicators):
            self._indicators.append(indicator)

    @property
    def registered_indicators(self) -> list:
        return list(self._indicators)

    def indicators_initialized(self) -> bool:
        return all(i.initialized for i in self._indicators)

    # -- subscriptions ---------------------------------------------------------------------------
    def _data_command(self, cls, kind: DataKind, key) -> None:
        self._msgbus.send("DataEngine.execute", cls(kind, key, self.id, self._clock.timestamp_ns()))

    def subscribe_quote_ticks(self, instrument_id) -> None:
        self._msgbus.subscribe(quotes_topic(instrument_id), self.handle_quote_tick)
        self._data_command(Subscribe, DataKind.QUOTES, instrument_id)

    def unsubscribe_quote_ticks(self, instrument_id) -> None:
        self._msgbus.unsubscribe(quotes_topic(instrument_id), self.handle_quote_tick)
        self._data_command(Unsubscribe, DataKind.QUOTES, instrument_id)

    def subscribe_trade_ticks(self, instrument_id) -> None:
        self._msgbus.subscribe(trades_topic(instrument_id), self.handle_trade_tick)
        self._data_command(Subscribe, DataKind.TRADES, instrument_id)

    def unsubscribe_trade_ticks(self, instrument_id) -> None:
        self._msgbus.unsubscribe(trades_topic(instrument_id), self.handle_trade_tick)
        self._data_command(Unsubscribe, DataKind.TRADES, instrument_id)

    def subscribe_bars(self, bar_type) -> None:
        self._msgbus.subscribe(bars_topic(bar_type), self.handle_bar)
        self._data_command(Subscribe, DataKind.BARS, bar_type)

    def unsubscribe_bars(self, bar_type) -> None:
        self._msgbus.unsubscribe(bars_topic(bar_type), self.handle_bar)
        self._data_command(Unsubscribe, DataKind.BARS, bar_type)

    # -- handlers (called by the bus) ------------------------------------------------------------
    def handle_quote_tick(self, tick) -> None:
        if self._quote_indicators:
            for indicator in self._quote_indicators.get(tick.instrument_id, ()):
                indicator.handle_quote_tick(tick)
        if self.is_running:
            self.on_quote_tick(tick)

    def handle_trade_tick(self, tick) -> None:
        if self._trade_indicators:
            for indicator in self._trade_indicators.get(tick.instrument_id, ()):
                indicator.handle_trade_tick(tick)
        if self.is_running:
            self.on_trade_tick(tick)

    def handle_bar(self, bar) -> None:
        for indicator in self._bar_indicators.get(bar.bar_type, ()):
            indicator.handle_bar(bar)
        if self.is_running:
            self.on_bar(bar)

    def handle_event(self, event) -> None:
        if self.is_running:
            self.on_event(event)

    # -- state -----------------------------------------------------------------------------------
    def save(self) -> dict[str, bytes]:
        """User state to persist (crash-only restarts restore it through ``load``)."""
        return self.on_save() or {}

    def load(self, state: dict[str, bytes]) -> None:
        self.on_load(state)

    def reset(self) -> None:
        for indicator in self._indicators:
            indicator.reset()
        super().reset()

    # -- user hooks (override) -------------------------------------------------------------------
    def on_quote_tick(self, tick) -> None:
        pass

    def on_trade_tick(self, tick) -> None:
        pass

    def on_bar(self, bar) -> None:
        pass

    def on_event(self, event) -> None:
        pass

    def on_save(self) -> dict[str, bytes]:
        return {}

    def on_load(self, state: dict[str, bytes]) -> None:
        pass
