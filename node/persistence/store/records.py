"""Glue between model events and the store: write an event with its outbox entry, rebuild on load.

Why here and not in the engines: the rule "a state change and its event go in one transaction" is
easiest to keep when one function does both; the engines (wired in later) call these instead of
composing the store calls themselves. The payload is encoded once and used for the state row and the
outbox row alike, so what is streamed is byte for byte what was stored.
"""

from __future__ import annotations

from collections.abc import Mapping

from node.model.events import AccountState, OrderEvent, OrderFilled
from node.model.identifiers import AccountId, ClientOrderId
from node.model.orders import Order
from node.persistence.store.base import LoadedState, StateTransaction
from node.persistence.store.codec import decode_event, encode_event
from node.persistence.store.errors import CodecError


def record_order_event(tx: StateTransaction, event: OrderEvent, topic: str) -> int:
    """Append an order event to its order, to its position if it is a fill, and to the outbox.

    Returns the event's sequence number.
    """
    payload = encode_event(event)
    event_type = type(event).__name__
    tx.append_order_event(event.client_order_id, event.strategy_id, event_type, payload)
    if type(event) is OrderFilled and event.position_id is not None:
        tx.append_position_fill(event.position_id, payload)
    return tx.emit(topic, event_type, payload)


def record_account_state(tx: StateTransaction, state: AccountState, topic: str) -> int:
    """Replace the account's stored state and queue the event; returns its sequence number."""
    payload = encode_event(state)
    tx.put_account_state(state.account_id, payload)
    return tx.emit(topic, type(state).__name__, payload)


def rebuild_orders(state: LoadedState) -> dict[ClientOrderId, Order]:
    """Every stored order, rebuilt by replaying its events (``Order.rebuild``), in creation order."""
    orders: dict[ClientOrderId, Order] = {}
    for coid, stored in state.orders.items():
        events = []
        for i, ev in enumerate(stored.events):
            event = decode_event(ev.payload)
            if type(event).__name__ != ev.event_type or getattr(event, "client_order_id", None) != coid:
                raise CodecError(
                    f"order {coid} event #{i} is stored as {ev.event_type} but decodes to "
                    f"{type(event).__name__} for {getattr(event, 'client_order_id', None)}"
                )
            events.append(event)
        order = Order.rebuild(events)
        orders[order.client_order_id] = order
    return orders


def decode_fills(state: LoadedState) -> list[OrderFilled]:
    """The stored position fills, decoded, in the order they were applied (replay into positions)."""
    fills = []
    for stored in state.position_fills:
        event = decode_event(stored.payload)
        if type(event) is not OrderFilled:
            raise CodecError(f"position {stored.position_id}: stored fill decodes to {type(event).__name__}")
        fills.append(event)
    return fills


def decode_accounts(state: LoadedState) -> dict[AccountId, AccountState]:
    """The last stored AccountState of each account."""
    out: dict[AccountId, AccountState] = {}
    accounts: Mapping[str, bytes] = state.accounts
    for account_id, payload in accounts.items():
        event = decode_event(payload)
        if type(event) is not AccountState or event.account_id != account_id:
            raise CodecError(f"account {account_id}: stored state decodes to {type(event).__name__}")
        out[event.account_id] = event
    return out
