"""How a TradingNode is released for good: ``dispose()``, the last step of its life.

Part of :class:`node.live.node.TradingNode`, as a mixin: disposal shares the node's clients,
kernel, inbox and state store, and is kept apart because it is the one step that may be called
from any state and any thread (a failed build disposes too) and must not block the node's own
loop. A node still live is stopped first and waited for (``timeouts.shutdown``; past it,
:class:`DisposeTimeout` and nothing is released); then the clients, the kernel and the state
store are closed, the node becomes DISPOSED, and its last log line says where its event loop
stands (``loop_report``).
"""

from __future__ import annotations

import threading

import anyio

from node.live.errors import DisposeTimeout, NodeStateError
from node.live.states import _LIVE, NodeState, NodeTrigger


class NodeDisposal:
    """The TradingNode's release (module docstring)."""

    def dispose(self) -> None:
        """Release everything for good. A running node is stopped first (waiting ``shutdown``)."""
        state = self.state
        if state is NodeState.DISPOSED:
            return
        if state in _LIVE:
            if threading.get_ident() == self._loop_thread:
                raise NodeStateError(
                    "dispose() would block the node's own event loop; use 'await node.dispose_async()' there"
                )
            self.stop()
            timeout = self.config.timeouts.shutdown
            if not self._stopped_thread.wait(timeout):
                raise DisposeTimeout(
                    f"node '{self.node_id}' did not stop within {timeout:g} s; it was not disposed"
                )
        self._dispose_now()

    async def dispose_async(self) -> None:
        """``dispose()`` for a caller on the node's loop: stops, waits, then releases."""
        if self.state in _LIVE:
            self.stop()
            timeout = self.config.timeouts.shutdown
            with anyio.move_on_after(timeout):
                await self._stopped_async.wait()
            if self.state is not NodeState.STOPPED:
                raise DisposeTimeout(
                    f"node '{self.node_id}' did not stop within {timeout:g} s; it was not disposed"
                )
        self._dispose_now()

    def _dispose_now(self, reason: str = "") -> None:
        if self.state is NodeState.DISPOSED:
            return
        if self._stream_scope is not None:
            self._stream_scope.cancel()
        self.inbox.close()
        for client in [*self.data_clients, *self.exec_clients]:
            try:
                client.dispose()
            except Exception as exc:
                self._log.exception(f"disposing client {client.id} failed", exc)
        self.kernel.dispose()
        if self.recorder is not None:
            self.recorder.close()
        elif self.state_store is not None:  # opened, but the restore failed
            self.state_store.close()
        self._move(NodeTrigger.DISPOSE, reason)
        self._log.info(self.loop_report())

    def loop_report(self) -> str:
        """Where the event loop stands, for the last log line of a node."""
        if self.backend is None:
            return "event loop: never started"
        if self._owns_loop:
            closed = "finished and closed" if self._loop_finished else "still running"
            return (
                f"event loop ({self.backend}, owned by the node): {closed}; its worker threads went with it"
            )
        return f"event loop ({self.backend}, owned by the host): left running for the host"
