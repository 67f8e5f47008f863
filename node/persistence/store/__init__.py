"""Node state store: durable orders, positions, accounts, strategy state, counters and the outbox.

Crash-only (DESIGN.md section 2): start-up loads this store, there is no separate recovery path.
``StateStore`` is the interface (SQLite now, Redis later); ``SqliteStateStore`` the embedded default;
``codec`` turns model events into bytes and back; ``records`` writes an event with its outbox entry
and rebuilds orders, fills and accounts from a ``LoadedState``.
"""

from node.persistence.store.base import (
    LoadedState,
    OutboxEntry,
    StateStore,
    StateTransaction,
    StoredEvent,
    StoredFill,
    StoredOrder,
)
from node.persistence.store.codec import decode_event, encode_event
from node.persistence.store.errors import (
    CodecError,
    InvalidStateValueError,
    NestedTransactionError,
    OutboxAckError,
    OutboxSequenceError,
    ReservedCounterError,
    StateStoreClosedError,
    StateStoreCorruptError,
    StateStoreError,
    StateStoreLockedError,
    StateStoreOpenError,
    StateStoreSchemaError,
    StateStoreWriteError,
    TransactionClosedError,
    TransactionError,
)
from node.persistence.store.records import (
    decode_accounts,
    decode_fills,
    rebuild_orders,
    record_account_state,
    record_order_event,
)
from node.persistence.store.sqlite import SqliteStateStore

__all__ = [
    "CodecError",
    "InvalidStateValueError",
    "LoadedState",
    "NestedTransactionError",
    "OutboxAckError",
    "OutboxEntry",
    "OutboxSequenceError",
    "ReservedCounterError",
    "SqliteStateStore",
    "StateStore",
    "StateStoreClosedError",
    "StateStoreCorruptError",
    "StateStoreError",
    "StateStoreLockedError",
    "StateStoreOpenError",
    "StateStoreWriteError",
    "StateStoreSchemaError",
    "StateTransaction",
    "StoredEvent",
    "StoredFill",
    "StoredOrder",
    "TransactionClosedError",
    "TransactionError",
    "decode_accounts",
    "decode_event",
    "decode_fills",
    "encode_event",
    "rebuild_orders",
    "record_account_state",
    "record_order_event",
]
