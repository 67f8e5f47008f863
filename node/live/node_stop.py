"""How a TradingNode stops: the requests that lead to a stop, and the stop sequence itself.

Part of :class:`node.live.node.TradingNode`, as a mixin: these methods share its attributes (the
stop events and cancel scopes that ``node.live.node_run`` sets up, the queues, the stream port,
the stop steps in ``node.live.sequences``) and are kept apart because a stop has many origins
and one path, and both are easiest to check side by side.

* **Requests**: ``stop()`` from any thread (from another thread it becomes a ``StopNode`` host
  command), a signal, the duration, a failed start-up step, a fatal error from a worker, a timer
  or a client's stream (``_fatal``). All end in ``_request_stop``: the first reason is kept, a
  start-up in progress is cancelled, and a request made before the loop runs is remembered.
* **The stop** (``_shutdown``, run shielded at the end of ``run_async``): STOPPING -> the stop
  steps (each bounded; overruns land in ``shutdown_problems``) -> queues closed -> STOPPED -> the
  stream's residual messages flushed (``post_stop``) and the stream detached.
"""

from __future__ import annotations

import threading

from node.live.commands import StopNode
from node.live.errors import NodeFatalError, NodeStateError
from node.live.states import _ACTIVE, NodeState, NodeTrigger


class NodeStopping:
    """The TradingNode's stop requests and stop sequence (module docstring)."""

    @property
    def shutdown_problems(self) -> list[str]:
        """What overran or failed during the stop (empty after a clean stop)."""
        return self.sequences.problems

    def stop(self, reason: str = "stop()") -> None:
        """Ask the node to stop (from any thread or task). Idempotent once stopping has begun."""
        state = self.state
        if state in (NodeState.STOPPING, NodeState.STOPPED, NodeState.DISPOSED):
            return
        if state not in _ACTIVE:
            raise NodeStateError(
                f"node '{self.node_id}' is {state.value}: there is nothing to stop; call dispose() to release it"
            )
        if threading.get_ident() == self._loop_thread:
            self._request_stop(reason)
        else:
            self.inject(StopNode(f"{reason} from another thread"))

    async def stop_async(self) -> None:
        """Stop and wait until the node is STOPPED (call from a task on the node's loop)."""
        self.stop()
        if self._stopped_async is not None:
            await self._stopped_async.wait()

    def _request_stop(self, reason: str) -> None:
        if self._stop_requested is None:
            self._stop_pending = True
            self.stop_reason = reason
            return
        if self._stop_requested.is_set():
            return
        self.stop_reason = reason
        self._log.info(f"stop requested: {reason}")
        self._stop_requested.set()
        if self._startup_scope is not None:
            self._startup_scope.cancel()

    def _fatal(self, exc: BaseException) -> None:
        self._log.error(f"fatal: {exc}")
        if self.failure is None:
            self.failure = exc
        self._request_stop(f"fatal error: {type(exc).__name__}")

    def _timer_failed(self, exc: BaseException) -> None:
        self._log.exception("a timer callback failed", exc)
        if isinstance(exc, NodeFatalError):
            self._fatal(exc)

    def _listener_failed(self, exc: BaseException) -> None:
        self._log.exception("a liveness listener failed", exc)

    async def _shutdown(self) -> None:
        # The stop must reach STOPPED whatever went wrong before it (a start-up that failed
        # half-way, a stream buffer left full): the stream takes the stop's messages beyond its
        # capacity, and a transition whose publish raises (a subscriber's bug) is a problem
        # recorded, not an end to the stop. The error that caused the stop stays ``failure``.
        self.stream.lift_capacity_for_stop()
        self.stream.release_commits()  # a start that failed or was cancelled: flush what it published
        if self.state in _ACTIVE:
            self._move_while_stopping(NodeTrigger.STOP, self.stop_reason or "event loop ended")
        for scope in (self._startup_scope, self._streams_scope):
            if scope is not None:
                scope.cancel()
        try:
            await self.sequences.stop()
        except Exception as exc:  # the steps record their own problems; this is a bug's last resort
            self.sequences.problem(f"the stop steps failed: {type(exc).__name__}: {exc}")
        self.queues.close()  # the sentinel: each drain task ends after its queue's last item
        self._move_while_stopping(NodeTrigger.STOP_COMPLETED, self.stop_reason)
        if self.stream.enabled:
            if not self.sequences.workers_gone:
                await self.sequences.bounded(
                    "stream residual messages", self.config.timeouts.post_stop, self.stream.flush
                )
            self.stream.close()
            self.stream.detach(self.kernel.msgbus)

    def _move_while_stopping(self, trigger: NodeTrigger, reason: str) -> None:
        """A stop transition: the state changes even if publishing it raises (then a problem)."""
        try:
            self._move(trigger, reason)
        except Exception as exc:
            self.sequences.problem(
                f"publishing the node's {trigger.name} transition failed: {type(exc).__name__}: {exc}"
            )
