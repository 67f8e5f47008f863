"""The execution port: adapters implement ``ExecutionClient`` for one venue.

The ExecutionEngine routes each command to the client registered for the order's venue;
the client reports venue events back through the ``on_event`` callable it was given
(synchronously in a backtest; from the kernel loop's queues in a live node).
"""

from __future__ import annotations

from collections.abc import Callable

from node.model.identifiers import AccountId, Venue


class ExecutionClient:
    """Base class for execution adapters. Subclasses override ``submit_order``/``cancel_order``."""

    def __init__(self, client_id: str, venue: Venue, account_id: AccountId) -> None:
        self.id = client_id
        self.venue = venue
        self.account_id = account_id
        self.is_connected = False
        self._on_event: Callable[[object], None] | None = None

    def bind(self, on_event: Callable[[object], None]) -> None:
        """Called by the ExecutionEngine: where venue events are to be delivered."""
        self._on_event = on_event

    def emit(self, event: object) -> None:
        if self._on_event is None:
            raise RuntimeError(f"execution client {self.id} is not registered with an ExecutionEngine")
        self._on_event(event)

    def connect(self) -> None:
        self.is_connected = True

    def disconnect(self) -> None:
        self.is_connected = False

    def submit_order(self, command) -> None:
        raise NotImplementedError

    def cancel_order(self, command) -> None:
        raise NotImplementedError

    def cancel_all_orders(self, command) -> None:
        raise NotImplementedError
