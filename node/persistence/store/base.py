"""The state-store interface: what the node persists, independent of the backend.

Why an interface: SQLite (one file per node, no server) is the embedded default, but a fleet may
prefer Redis; the node talks only to ``StateStore`` / ``StateTransaction`` and gets a
``LoadedState`` back at start-up, so swapping the backend touches nothing else.

Why everything goes through a transaction: each state change is written in the same transaction as
the outbox entry of the event that produced it (the outbox pattern), so after a crash at any instant
the state and the events to stream can never disagree: either both are there or neither is.

The store deals in bytes (payloads) and plain strings (ids), not model objects: encoding is the
codec's business (``node.persistence.store.codec``), which keeps backends trivial and lets a payload
be relayed to the orchestrator as is, without re-encoding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import MappingProxyType

from node.persistence.store.errors import InvalidStateValueError, OutboxSequenceError

SEQ_COUNTER = "__seq__"
"""Counter holding the last event sequence number issued (reserved: moved only by ``next_seq``)."""

ACKED_COUNTER = "__acked_seq__"
"""Counter holding the highest sequence number the orchestrator acknowledged (reserved)."""

RESERVED_COUNTERS = frozenset({SEQ_COUNTER, ACKED_COUNTER})

INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored order event: its type name and encoded payload."""

    event_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """All stored events of one order, in the order they were appended (replay them in this order)."""

    client_order_id: str
    strategy_id: str
    events: tuple[StoredEvent, ...]


@dataclass(frozen=True, slots=True)
class StoredFill:
    """A fill as it affected a position, in the node-wide order fills were applied."""

    position_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An event waiting to be streamed (and acknowledged) under its sequence number."""

    seq: int
    topic: str
    event_type: str
    payload: bytes


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class LoadedState:
    """Everything a node needs at start-up; empty on a first start.

    ``orders`` and ``position_fills`` keep append order; ``counters`` excludes the reserved ones,
    which are ``last_seq`` and ``acked_seq``.
    """

    orders: Mapping[str, StoredOrder] = field(default_factory=dict)
    position_fills: tuple[StoredFill, ...] = ()
    accounts: Mapping[str, bytes] = field(default_factory=dict)
    strategy_states: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    blobs: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    last_seq: int = 0
    acked_seq: int = 0

    def __post_init__(self) -> None:
        # Read-only views: a LoadedState is a snapshot, and callers must not mistake it for the store.
        object.__setattr__(self, "orders", _frozen(self.orders))
        object.__setattr__(self, "accounts", _frozen(self.accounts))
        object.__setattr__(
            self, "strategy_states", _frozen({k: _frozen(v) for k, v in self.strategy_states.items()})
        )
        object.__setattr__(self, "blobs", _frozen({k: _frozen(v) for k, v in self.blobs.items()}))
        object.__setattr__(self, "counters", _frozen(self.counters))

    @property
    def is_empty(self) -> bool:
        """True on a first start: nothing was ever written."""
        return not (
            self.orders
            or self.position_fills
            or self.accounts
            or self.strategy_states
            or self.blobs
            or self.counters
            or self.last_seq
        )


class StateTransaction(ABC):
    """The write side: valid only inside ``with store.transaction() as tx:``.

    Nothing is visible to anyone (nor durable) until the block ends without an exception; an
    exception rolls everything back, the outbox included.
    """

    @abstractmethod
    def append_order_event(
        self, client_order_id: str, strategy_id: str, event_type: str, payload: bytes
    ) -> None:
        """Append one event to an order's history (the order is rebuilt by replaying these)."""

    @abstractmethod
    def append_position_fill(self, position_id: str, payload: bytes) -> None:
        """Record a fill against a position (positions are rebuilt by replaying fills in order)."""

    @abstractmethod
    def forget_order(self, client_order_id: str) -> None:
        """Drop a closed order's events: it is no longer state (its history is in the journal)."""

    @abstractmethod
    def forget_position(self, position_id: str) -> None:
        """Drop a closed position's fills (keep what it realized elsewhere, e.g. a counter)."""

    @abstractmethod
    def put_account_state(self, account_id: str, payload: bytes) -> None:
        """Replace the last known state of an account."""

    @abstractmethod
    def put_strategy_state(self, strategy_id: str, state: Mapping[str, bytes]) -> None:
        """Replace a strategy's saved state (``on_save``) as a whole."""

    @abstractmethod
    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        """Store an opaque value (e.g. the sandbox venue's own open orders and balances)."""

    @abstractmethod
    def delete_blob(self, namespace: str, key: str) -> None:
        """Remove an opaque value (no error if absent)."""

    @abstractmethod
    def set_counter(self, name: str, value: int) -> None:
        """Set a named counter (e.g. a strategy's client order id count)."""

    @abstractmethod
    def next_seq(self) -> int:
        """Allocate the node's next event sequence number (persisted with this transaction)."""

    @abstractmethod
    def add_outbox(self, seq: int, topic: str, event_type: str, payload: bytes) -> None:
        """Queue an event for streaming under a seq allocated by ``next_seq`` in this transaction."""

    @abstractmethod
    def ack_outbox(self, seq: int) -> None:
        """``StateStore.ack_outbox`` in this transaction: applied at commit, after its outbox run.

        For a writer that commits often (the node's recorder): the peer's acks ride on the next
        commit instead of costing a transaction (and an fsync) of their own.
        """

    def append_outbox(self, entries) -> None:
        """Queue ``(seq, topic, event_type, payload)`` entries whose seqs continue the sequence.

        The first must be the next seq ``next_seq`` would give, and they must be consecutive
        (``OutboxSequenceError`` otherwise). For a writer that numbered its events itself (the
        node's stream); backends may write them in one statement.
        """
        for seq, topic, event_type, payload in entries:
            allocated = self.next_seq()
            if allocated != seq:
                raise OutboxSequenceError(
                    f"outbox seq {seq} does not continue the sequence (next: {allocated})"
                )
            self.add_outbox(seq, topic, event_type, payload)

    def append_outbox_run(self, first_seq: int, topics, event_types, payloads) -> None:
        """``append_outbox`` for a run given as columns: event ``i`` is ``first_seq + i``.

        ``topics[i]``, ``event_types[i]`` and ``payloads[i]`` are its topic, type and payload; the
        three sequences have the same length, and ``first_seq`` must be the next seq ``next_seq``
        would give (``OutboxSequenceError`` otherwise). For a writer that keeps its events as
        columns (the node's recorder): a backend may store them without building an entry each.
        """
        n = len(topics)
        if len(event_types) != n or len(payloads) != n:
            raise InvalidStateValueError(
                f"outbox run columns of different lengths: {n}, {len(event_types)}, {len(payloads)}"
            )
        self.append_outbox(
            list(zip(range(first_seq, first_seq + n), topics, event_types, payloads, strict=True))
        )

    def emit(self, topic: str, event_type: str, payload: bytes) -> int:
        """Allocate a seq and queue the event under it in one call; returns the seq."""
        seq = self.next_seq()
        self.add_outbox(seq, topic, event_type, payload)
        return seq


class StateStore(ABC):
    """A node's durable state: transactions to write, ``load`` to start, the outbox to relay."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[StateTransaction]:
        """Open a write transaction: commit on normal exit, roll back on an exception."""

    @abstractmethod
    def load(self) -> LoadedState:
        """Read the whole state (start-up = recovery)."""

    @abstractmethod
    def outbox_after(self, seq: int) -> Iterator[OutboxEntry]:
        """Outbox entries with a sequence number above ``seq``, ascending."""

    @abstractmethod
    def ack_outbox(self, seq: int) -> None:
        """Drop every outbox entry up to and including ``seq`` (cumulative; repeating is harmless)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store (idempotent)."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
