"""Live adapters: the async side of the data and execution ports, and what a factory receives.

A live client does I/O, so connecting, disconnecting and reconciling are coroutines the node can
put a timeout on. Whatever a client produces goes to the kernel through the callables the node
binds (queues): ``handle_data``/``emit`` from code running on the kernel loop without awaiting,
``await handle_data_async``/``await emit_async`` from the client's own tasks (these wait for room
in a full never-drop queue instead of failing: backpressure reaches the venue socket).

Factories: a node does not know adapter classes. A config names a factory (``"random_walk"``,
``"sandbox"``, an adapter's own name) registered on that node instance; at ``build()`` the node
calls ``factory(name, config, context)`` and gets a client back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from node.data.client import DataClient
from node.execution.client import ExecutionClient

AsyncPut = Callable[[object], Awaitable[None]]


class LiveDataClient(DataClient):
    """A market-data adapter with async lifecycle and an optional streaming task.

    ``stream_async`` is started by the node once it is RUNNING (so no strategy misses the first
    items) and cancelled when the node stops. The default streams nothing.
    """

    def __init__(self, client_id: str, venue=None) -> None:
        super().__init__(client_id, venue)
        self._put_async: AsyncPut | None = None

    def bind_async(self, put: AsyncPut) -> None:
        self._put_async = put

    async def handle_data_async(self, data: object) -> None:
        if self._put_async is None:
            self.handle_data(data)
            return
        await self._put_async(data)

    async def connect_async(self) -> None:
        self.connect()

    async def disconnect_async(self) -> None:
        self.disconnect()

    async def stream_async(self) -> None:
        """Produce data until cancelled (override); returning early is fine."""

    def dispose(self) -> None:
        """Release anything held (files, sockets) for good."""


class LiveExecutionClient(ExecutionClient):
    """An execution adapter with async lifecycle and reconciliation."""

    def __init__(self, client_id: str, venue, account_id) -> None:
        super().__init__(client_id, venue, account_id)
        self._put_async: AsyncPut | None = None

    def bind_async(self, put: AsyncPut) -> None:
        self._put_async = put

    async def emit_async(self, event: object) -> None:
        """Hand ``event`` over from the client's own task, waiting for room if the queue is full."""
        if self._put_async is None:
            self.emit(event)
            return
        await self._put_async(event)

    async def connect_async(self) -> None:
        self.connect()

    async def disconnect_async(self) -> None:
        self.disconnect()

    async def reconcile_async(self) -> None:
        """Bring the node's view of orders, positions and the account in line with the venue.

        The venue reports through ``emit``/``emit_async`` (account states, order status events);
        the node waits for those to be applied before strategies start.
        """

    async def stream_async(self) -> None:
        """Receive venue events until cancelled (override); started when the node is RUNNING."""

    def market_data_hook(self) -> Callable[[object], None] | None:
        """A callable that must see each market data item before the DataEngine does, or None.

        A simulated venue returns its ``process_*`` dispatcher here so resting orders match on a
        quote before any strategy sees that quote, exactly as in a backtest.
        """
        return None

    def dispose(self) -> None:
        """Release anything held for good."""


@dataclass
class ClientContext:
    """What a client factory may use to build a client for one node."""

    trader_id: str
    environment: Any  # node.system.kernel.Environment
    clock: Any
    cache: Any
    logger: Any
    instruments: dict = field(default_factory=dict)  # InstrumentId -> Instrument
    request_stop: Callable[[str], None] | None = None  # request_stop(reason), from any thread
    wait_idle: Callable[[], Awaitable[None]] | None = None


ClientFactory = Callable[[str, Any, ClientContext], Any]
"""``factory(name, config, context) -> client`` (a LiveDataClient or LiveExecutionClient)."""


__all__ = ["AsyncPut", "ClientContext", "ClientFactory", "LiveDataClient", "LiveExecutionClient"]
