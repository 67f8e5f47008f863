"""The sandbox environment: real-time data, the backtest's SimulatedExchange as the venue.

:class:`SandboxExecutionClient` puts one ``SimulatedExchange`` (the very class a backtest uses)
behind the live execution port. Commands reach it from the node's execution-command queue; its
events leave through the execution-event queue like a real venue's would. Two things keep it
faithful to the backtest:

* the venue sees each market data item *before* the DataEngine does (``market_data_hook``), so a
  resting order matches on a quote before any strategy sees that quote;
* reconciliation reports the starting balances (``initialize_account``) before strategies start,
  as ``BacktestEngine.run`` does.

Crash-only (``persists_state``): the venue dies with the node's process, so the node stores the
venue's own state with each commit of its state store (``state_blobs()``: upsert every key it
returns, keep the others; see ``node.backtest.venue_state``) and hands all stored keys back at
start-up (``restore_state``), before reconciliation. A restored venue does not report its starting
balances again: its account is already in the node's restored cache.

:func:`register_sandbox_factories` puts the three sandbox factories on one node: ``"sandbox"``
(exec, config: a ``VenueConfig``), ``"random_walk"`` and ``"replay"`` (data).
"""

from __future__ import annotations

from collections.abc import Mapping

from node.backtest.exchange import SimulatedExchange
from node.live.clients import ClientContext, LiveExecutionClient
from node.live.random_walk import RandomWalkConfig, RandomWalkDataClient
from node.live.replay import ReplayConfig, ReplayDataClient
from node.model.data import Bar, QuoteTick, TradeTick
from node.model.identifiers import InstrumentId, Venue


class SandboxExecutionClient(LiveExecutionClient):
    """A SimulatedExchange driven in real time (see module docstring)."""

    persists_state = True
    """The node stores ``state_blobs()`` with each commit and calls ``restore_state`` at start-up."""

    def __init__(self, exchange: SimulatedExchange) -> None:
        inner = exchange.exec_client
        super().__init__(f"SANDBOX-{exchange.venue}", exchange.venue, inner.account_id)
        self.exchange = exchange
        self.oms_type = exchange.oms_type
        self._inner = inner
        self.restored = False
        # The venue answers through its own client; route that to wherever the node bound us.
        inner.bind(self.emit)
        venue = exchange.venue
        quote, trade, bar = exchange.process_quote_tick, exchange.process_trade_tick, exchange.process_bar

        def process(item) -> None:
            t = type(item)
            if t is QuoteTick:
                if item.instrument_id.venue == venue:
                    quote(item)
            elif t is Bar:
                if item.bar_type.instrument_id.venue == venue:
                    bar(item)
            elif t is TradeTick and item.instrument_id.venue == venue:
                trade(item)

        self._process = process

    def market_data_hook(self):
        return self._process

    def state_blobs(self, full: bool = False) -> dict[str, bytes]:
        """The venue's state as ``{key: bytes}`` for this commit: the ``"exchange"`` core (always)
        plus the seen-id chunks (``"seen.NNNNNN"``) changed since the previous call (every chunk if
        ``full``, e.g. after a commit that failed). Store them all in one namespace, upserting."""
        return self.exchange.state_blobs(full)

    def restore_state(self, blobs: Mapping[str, bytes], orders: Mapping) -> None:
        """Restore the venue from every key stored in its namespace; ``orders`` maps client order
        id -> the node's restored ``Order``. No blobs (a first start): nothing to restore.

        Raises ``node.backtest.venue_state.VenueStateError`` when the blobs do not restore into
        this venue (corrupt, another version, config or instruments changed, an order missing).
        """
        if not blobs:
            return
        self.exchange.restore_blobs(blobs, orders)
        self.restored = True

    async def reconcile_async(self) -> None:
        # A fresh simulated venue has no orders; its account is reported as in a backtest. A restored
        # one reports nothing: the node's restored cache already holds what it last reported (unless
        # it was stored before it ever reported, e.g. a kill during the first start-up).
        if not self.restored or not self.exchange.account_reported:
            self.exchange.initialize_account()

    def submit_order(self, command) -> None:
        self._inner.submit_order(command)

    def cancel_order(self, command) -> None:
        self._inner.cancel_order(command)

    def cancel_all_orders(self, command) -> None:
        self._inner.cancel_all_orders(command)


def sandbox_exec_factory(name: str, venue_config, context: ClientContext) -> SandboxExecutionClient:
    """``venue_config`` is a ``node.backtest.config.VenueConfig`` (the backtest's [[venues]] table)."""
    venue = Venue(venue_config.name)
    exchange = SimulatedExchange(
        venue,
        venue_config.oms_type,
        venue_config.account_type,
        list(venue_config.starting_balances),
        context.clock,
        base_currency=venue_config.base_currency,
        bar_execution=venue_config.bar_execution,
    )
    for instrument in context.instruments.values():
        if instrument.id.venue == venue:
            exchange.add_instrument(instrument)
    return SandboxExecutionClient(exchange)


def random_walk_factory(name: str, config: RandomWalkConfig, context: ClientContext) -> RandomWalkDataClient:
    if config.instruments:
        missing = [i for i in config.instruments if InstrumentId.from_str(i) not in context.instruments]
        if missing:
            raise ValueError(
                f"random-walk client {name}: unknown instrument(s) {missing}; add them to [[instruments]]"
            )
        instruments = [context.instruments[InstrumentId.from_str(i)] for i in config.instruments]
    else:
        instruments = list(context.instruments.values())
    return RandomWalkDataClient(name, config, context.clock, instruments)


def replay_factory(name: str, config: ReplayConfig, context: ClientContext) -> ReplayDataClient:
    instrument = context.instruments.get(InstrumentId.from_str(config.instrument_id))
    if instrument is None:
        raise ValueError(
            f"replay client {name}: unknown instrument {config.instrument_id}; add it to [[instruments]]"
        )
    return ReplayDataClient(
        name,
        config,
        context.clock,
        instrument,
        wait_idle=context.wait_idle,
        request_stop=context.request_stop,
    )


def register_sandbox_factories(node) -> None:
    node.register_exec_client_factory("sandbox", sandbox_exec_factory)
    node.register_data_client_factory("random_walk", random_walk_factory)
    node.register_data_client_factory("replay", replay_factory)


__all__ = [
    "SandboxExecutionClient",
    "random_walk_factory",
    "register_sandbox_factories",
    "replay_factory",
    "sandbox_exec_factory",
]
