"""The market-data port: adapters implement ``DataClient`` to feed one source into a node.

It mirrors ``node.execution.client.ExecutionClient``: the node *binds* the client to where its
output goes (``bind``), and the client only ever calls ``handle_data`` / ``handle_response``. In a
live node those callables put into the kernel's queues; a test can bind plain lists. The client
never touches the DataEngine, the cache or the bus: that keeps an adapter unaware of the kernel's
threading rules (everything it hands over is applied later, on the kernel loop).

Subscriptions flow the other way: the DataEngine calls ``subscribe``/``unsubscribe`` on the first
subscriber / after the last one leaves, so a client streams only what someone uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.data.messages import DataKind
from node.model.identifiers import Venue


@dataclass(frozen=True, slots=True)
class DataRequest:
    """What an actor asks for with ``msgbus.request("DataEngine.request", DataRequest(...), cb)``.

    ``client_id`` picks a client by id; otherwise the first client serving ``key``'s venue answers.
    ``limit`` bounds how many items come back (None: the client's default).
    """

    kind: DataKind
    key: object  # InstrumentId, or BarType for bars
    client_id: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class DataResponse:
    """A client's answer to one request; ``error`` is set (and ``data`` empty) when it could not serve."""

    correlation_id: str
    client_id: str
    data: tuple = ()
    error: str | None = None


class DataClientNotBound(RuntimeError):
    """A client handed over data before a node bound it (register it with a node first)."""


class DataClient:
    """Base class of market-data adapters. Subclasses override the ``on_*`` hooks they need."""

    def __init__(self, client_id: str, venue: Venue | None = None) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ValueError(f"client_id must be a non-empty str, got {client_id!r}")
        self.id = client_id
        self.venue = venue
        self.is_connected = False
        self.subscriptions: set[tuple[DataKind, Any]] = set()
        self._on_data: Callable[[object], None] | None = None
        self._on_response: Callable[[DataResponse], None] | None = None

    # -- wiring (called by the node) -------------------------------------------------------------

    def bind(
        self,
        on_data: Callable[[object], None],
        on_response: Callable[[DataResponse], None] | None = None,
    ) -> None:
        """Where data items (QuoteTick, TradeTick, Bar) and request responses are to be delivered."""
        self._on_data = on_data
        self._on_response = on_response

    def handle_data(self, data: object) -> None:
        if self._on_data is None:
            raise DataClientNotBound(
                f"data client {self.id} is not bound to a node; it cannot hand over data"
            )
        self._on_data(data)

    def handle_response(self, response: DataResponse) -> None:
        if self._on_response is None:
            raise DataClientNotBound(f"data client {self.id} is not bound to a node; it cannot answer")
        self._on_response(response)

    # -- lifecycle -------------------------------------------------------------------------------

    def connect(self) -> None:
        self.is_connected = True

    def disconnect(self) -> None:
        self.is_connected = False

    # -- subscriptions (called by the DataEngine) ------------------------------------------------

    def subscribe(self, kind: DataKind, key: object) -> None:
        self.subscriptions.add((kind, key))
        self.on_subscribe(kind, key)

    def unsubscribe(self, kind: DataKind, key: object) -> None:
        self.subscriptions.discard((kind, key))
        self.on_unsubscribe(kind, key)

    def is_subscribed(self, kind: DataKind, key: object) -> bool:
        return (kind, key) in self.subscriptions

    # -- requests --------------------------------------------------------------------------------

    def serves(self, request: DataRequest) -> bool:
        """Whether this client should answer ``request`` (by default: same venue, or no venue)."""
        if request.client_id is not None:
            return request.client_id == self.id
        venue = getattr(request.key, "venue", None) or getattr(
            getattr(request.key, "instrument_id", None), "venue", None
        )
        return self.venue is None or venue == self.venue

    def request(self, correlation_id: str, request: DataRequest) -> None:
        """Answer ``request`` through ``handle_response`` (now or later). Default: not supported."""
        self.handle_response(
            DataResponse(
                correlation_id,
                self.id,
                error=f"data client {self.id} does not serve {request.kind.name} requests",
            )
        )

    # -- hooks -----------------------------------------------------------------------------------

    def on_subscribe(self, kind: DataKind, key: object) -> None:
        """Override to start streaming ``key``."""

    def on_unsubscribe(self, kind: DataKind, key: object) -> None:
        """Override to stop streaming ``key``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, connected={self.is_connected})"


__all__ = ["DataClient", "DataClientNotBound", "DataRequest", "DataResponse"]
