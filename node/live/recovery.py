"""Start-up = recovery: put what the state store holds back into a freshly built node.

There is no separate "recover" path (DESIGN.md section 2, crash-only): every start of a node with
a ``[state]`` store runs :func:`restore_node_state`; on a first start the store is empty and it
does nothing. It runs in ``TradingNode.build()``, after the clients and strategies exist and before
the event loop, and restores, in this order:

1. open orders, rebuilt by replaying each one's stored events (``Order.rebuild``);
2. open positions, rebuilt by replaying their stored fills in the order the node applied them,
   the position id counter, and what closed positions realized (``Portfolio.restore_realized``);
   closed orders and positions are history, not state (``node.live.recorder``);
3. accounts, from their last stored state;
4. strategies: their client order id counters (so a new order never reuses an id the venue has
   seen) and their saved state (``on_load``);
5. in-process venues (``persists_state``, the sandbox's simulated exchange) from their blobs, with
   the node's restored orders to link to;
6. execution events the node had received but not yet applied: queued again, so the engines
   apply them during start-up, before any strategy starts (the reconciliation step).

An order a strategy created that had not yet reached the execution engine when the node died
is not in the store (nothing was published for it, and the venue never saw it): after the restart
it never existed. It is not resent, since the decision was made on market data that is now stale;
the strategy decides again on fresh data. Its id may be given again to a new order: an in-process
venue is restored from the same commit, so it never saw the first one either; an external venue
that did would refuse the second as a duplicate, which is what the deterministic ids are for.

The stream then continues the stored sequence (``StreamingPort.resume_from``).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from node.live.recorder import (
    NODE_NAMESPACE,
    ORDER_COUNTER,
    PENDING_EXEC_EVENTS,
    POSITION_COUNTER,
    REALIZED_NAMESPACE,
    VENUE_NAMESPACE,
)
from node.model.account import Account
from node.model.identifiers import InstrumentId
from node.model.objects import Currency, Money
from node.model.position import Position
from node.persistence.store import LoadedState, decode_accounts, decode_event, decode_fills, rebuild_orders
from node.persistence.store.errors import CodecError


class StateRestoreError(Exception):
    """The stored state cannot be put back (it contradicts itself or the node's config)."""


@dataclass
class RestoreReport:
    """What a start-up restored (all zero on a first start)."""

    orders: int = 0
    open_orders: int = 0
    positions: int = 0
    open_positions: int = 0
    accounts: int = 0
    strategies: int = 0
    venues: int = 0
    requeued_events: int = 0
    last_seq: int = 0

    def summary(self) -> str:
        if not (self.orders or self.accounts or self.last_seq):
            return "state store empty: first start"
        return (
            f"restored {self.orders} orders ({self.open_orders} open), {self.positions} positions "
            f"({self.open_positions} open), {self.accounts} accounts, {self.strategies} strategy states, "
            f"{self.venues} venues; {self.requeued_events} execution events requeued; "
            f"the stream continues after seq {self.last_seq}"
        )


def restore_node_state(node, loaded: LoadedState) -> RestoreReport:
    """Restore ``loaded`` into ``node`` (built, not yet running); see the module docstring."""
    report = RestoreReport(last_seq=loaded.last_seq)
    if loaded.is_empty:
        return report
    kernel = node.kernel
    cache = kernel.cache
    try:
        orders = rebuild_orders(loaded)
        fills = decode_fills(loaded)
        accounts = decode_accounts(loaded)
    except (CodecError, ValueError, KeyError, TypeError) as exc:
        raise StateRestoreError(f"the stored orders, fills or accounts cannot be rebuilt: {exc}") from exc
    for order in orders.values():
        cache.add_order(order)
    report.orders = len(orders)
    report.open_orders = sum(1 for o in orders.values() if o.is_open)
    _restore_positions(cache, fills, report)
    kernel.exec_engine.set_position_count(loaded.counters.get(POSITION_COUNTER, report.positions))
    _restore_realized(kernel, loaded)
    for state in accounts.values():
        account = Account(state.account_id, state.account_type, state.base_currency)
        account.apply(state)
        cache.add_account(account)
    report.accounts = len(accounts)
    for strategy in kernel.strategies:
        sid = str(strategy.strategy_id)
        count = loaded.counters.get(ORDER_COUNTER + sid)
        if count is not None and strategy.order_factory is not None:
            strategy.order_factory.set_count(count)
        saved = loaded.strategy_states.get(sid)
        if saved:
            strategy.load(dict(saved))
            report.strategies += 1
    for client in node.exec_clients:
        if getattr(client, "persists_state", False):
            blobs = loaded.blobs.get(VENUE_NAMESPACE + str(client.id))
            if blobs:
                client.restore_state(blobs, orders)
                report.venues += 1
    _requeue_pending(node, loaded, report)
    node.recorder.restored(orders.keys(), loaded.counters, loaded.strategy_states, loaded.blobs)
    return report


def _restore_positions(cache, fills, report: RestoreReport) -> None:
    for fill in fills:
        position = cache.position(fill.position_id)
        if position is None:
            instrument = cache.instrument(fill.instrument_id)
            if instrument is None:
                raise StateRestoreError(
                    f"a stored fill of position {fill.position_id} is for {fill.instrument_id}, which is "
                    "not in this node's [[instruments]]: the config changed under the stored state"
                )
            cache.add_position(Position(instrument, fill))
            report.positions += 1
        else:
            position.apply(fill)
            cache.update_position(position)
        cache.add_position_id(fill.client_order_id, fill.position_id)
    report.open_positions = len(cache.positions_open())


def _restore_realized(kernel, loaded: LoadedState) -> None:
    for instrument_id, packed in loaded.blobs.get(REALIZED_NAMESPACE, {}).items():
        try:
            realized = msgpack.unpackb(packed)
            iid = InstrumentId.from_str(instrument_id)
            for code, raw in realized.items():
                kernel.portfolio.restore_realized(iid, Money.from_raw(raw, Currency.from_str(code)))
        except (ValueError, TypeError, AttributeError, msgpack.UnpackException) as exc:
            raise StateRestoreError(
                f"the stored realized PnL of {instrument_id} cannot be read: {exc}"
            ) from exc


def _requeue_pending(node, loaded: LoadedState, report: RestoreReport) -> None:
    packed = loaded.blobs.get(NODE_NAMESPACE, {}).get(PENDING_EXEC_EVENTS)
    if not packed:
        return
    try:
        events = [decode_event(p) for p in msgpack.unpackb(packed)]
    except (CodecError, ValueError, TypeError, msgpack.UnpackException) as exc:
        raise StateRestoreError(f"the stored pending execution events cannot be decoded: {exc}") from exc
    for event in events:
        node.queues.exec_events.put_nowait(event)
    report.requeued_events = len(events)


__all__ = ["RestoreReport", "StateRestoreError", "restore_node_state"]
