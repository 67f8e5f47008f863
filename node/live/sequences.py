"""The node's start-up and stop sequences: what each step does, in which order, within what time.

Kept apart from ``node.py`` (which owns the lifecycle and the tasks) because this is the part an
operator reasons about when a node will not start or stop: the steps read top to bottom.

Start-up, each step bounded by its own ``node.timeouts`` entry; the first that fails or overruns
raises :class:`StartupFailed`/:class:`StartupTimeout` naming the step and what it still waited for:

====================  ============================================================================
step                  done when
====================  ============================================================================
connection            every data and execution client's ``connect_async`` returned
(engines)             the Data, Risk and Execution engines and the portfolio are RUNNING
reconciliation        every execution client's ``reconcile_async`` returned
portfolio             every execution client's account state is in the cache
strategies            every actor/strategy started and their subscriptions were applied
====================  ============================================================================

Stop, each step bounded too, but an overrun is only recorded (``problems``) and the stop goes on:
commands already queued reach the venue and their events are applied (``bridge.settle``) ->
strategies stop -> their last commands and resulting events are applied (``post_stop``) -> clients
disconnect (``disconnection``) -> engines stop -> residual events applied (``post_stop``).
"""

from __future__ import annotations

import anyio

from node.common.component import ComponentState
from node.live.errors import StartupError, StartupFailed, StartupTimeout
from node.live.loop_backend import open_task_group


class NodeSequences:
    def __init__(self, kernel, queues, bridge, data_clients: list, exec_clients: list, timeouts, log) -> None:
        self._kernel = kernel
        self._queues = queues
        self._bridge = bridge
        self._data_clients = data_clients
        self._exec_clients = exec_clients
        self._timeouts = timeouts
        self._log = log
        self._pending: list[str] = []  # what the current step still waits for (for its error)
        self.problems: list[str] = []  # what went wrong while stopping
        self.workers_gone = False  # the drain tasks were cancelled: apply queued work inline

    @property
    def _clients(self) -> list:
        return [*self._data_clients, *self._exec_clients]

    # -- start-up -------------------------------------------------------------------------------

    async def startup(self) -> None:
        t = self._timeouts
        await self._step("connection", t.connection, self._each, self._clients, "connect_async", "connected")
        try:
            self._kernel.start_engines()
        except Exception as exc:
            raise StartupFailed("engines", f"an engine failed to start: {type(exc).__name__}: {exc}") from exc
        await self._step(
            "reconciliation",
            t.reconciliation,
            self._each,
            self._exec_clients,
            "reconcile_async",
            "reconciled",
        )
        await self._step("portfolio", t.portfolio, self._await_accounts)
        await self._step("strategies", t.strategies, self._start_components)

    async def _step(self, step: str, timeout: float, fn, *args) -> None:
        self._log.info(f"start-up: {step}")
        self._pending = []
        try:
            with anyio.fail_after(timeout):
                await fn(*args)
        except TimeoutError:
            waiting = f" (still waiting for: {', '.join(self._pending)})" if self._pending else ""
            raise StartupTimeout(
                step,
                f"start-up step '{step}' did not finish within {timeout:g} s{waiting}; check the client or "
                f"venue named, or raise node.timeouts.{step}",
            ) from None
        except StartupError:
            raise
        except Exception as exc:
            raise StartupFailed(step, f"start-up step '{step}' failed: {type(exc).__name__}: {exc}") from exc

    async def _each(self, clients: list, method: str, done_word: str) -> None:
        """Run ``client.<method>()`` for every client concurrently; the first failure is raised."""
        self._pending = [c.id for c in clients]
        errors: list[tuple[str, BaseException]] = []

        async def one(client) -> None:
            try:
                await getattr(client, method)()
            except Exception as exc:
                errors.append((client.id, exc))
            else:
                self._pending.remove(client.id)
                self._log.info(f"{client.id} {done_word}")

        async with open_task_group() as group:
            for client in clients:
                group.start_soon(one, client)
        if errors:
            client_id, exc = errors[0]
            raise RuntimeError(f"client {client_id}: {type(exc).__name__}: {exc}") from exc

    async def _await_accounts(self) -> None:
        """The portfolio is ready once every venue's account state has been applied."""
        cache = self._kernel.cache
        while True:
            self._pending = [
                f"account {c.account_id} of {c.id}"
                for c in self._exec_clients
                if cache.account(c.account_id) is None
            ]
            if not self._pending:
                return
            await self._queues.wait_progress()

    async def _start_components(self) -> None:
        errors_before = self._bridge.error_count
        for component in self._kernel.components:
            if component.state is not ComponentState.READY:
                continue
            try:
                component.start()
            except Exception as exc:
                raise StartupFailed(
                    "strategies",
                    f"{component.id} failed to start ({type(exc).__name__}: {exc}); the component "
                    f"is {component.state.name}, so the node does not start. Fix the component's "
                    "config or the data it needs",
                ) from exc
        self._pending = ["the strategies' subscriptions"]
        await self._queues.wait_idle()
        if self._bridge.error_count > errors_before:  # e.g. a subscription the DataEngine refused
            queue, exc = self._bridge.last_error
            raise StartupFailed(
                "strategies",
                f"a command sent while starting the strategies failed on queue '{queue}': "
                f"{type(exc).__name__}: {exc}",
            )

    # -- stop -----------------------------------------------------------------------------------

    async def stop(self) -> None:
        t = self._timeouts
        # Commands already on their way reach the venue (and their events come back) before any
        # strategy stops: a strategy's on_stop cancels what is open, and an order still queued
        # then would reach the venue after it and outlive the stop.
        self._bridge.settle()
        for component in self._kernel.components:
            if component.is_running or component.is_degraded:
                try:
                    component.stop()
                except Exception as exc:
                    self.problem(f"{component.id} failed to stop: {type(exc).__name__}: {exc}")
        await self._apply_queued("apply the strategies' last commands", t.post_stop)
        await self.bounded(
            "disconnect clients",
            t.disconnection,
            self._each,
            self._clients,
            "disconnect_async",
            "disconnected",
        )
        try:
            self._kernel.stop()
        except Exception as exc:
            self.problem(f"stopping the engines failed: {type(exc).__name__}: {exc}")
        await self._apply_queued("apply residual events", t.post_stop)

    async def _apply_queued(self, what: str, timeout: float) -> None:
        if self.workers_gone:
            self._bridge.drain_all_nowait()
        else:
            await self.bounded(what, timeout, self._queues.wait_idle)

    async def bounded(self, what: str, timeout: float, fn, *args) -> None:
        """Run a stop step within ``timeout``; an overrun or error is recorded, not raised."""
        try:
            with anyio.fail_after(timeout):
                await fn(*args)
        except TimeoutError:
            self.problem(f"could not {what} within {timeout:g} s; going on with the stop")
        except Exception as exc:
            self.problem(f"could not {what}: {type(exc).__name__}: {exc}")

    def problem(self, message: str) -> None:
        self.problems.append(message)
        self._log.warning(message)


__all__ = ["NodeSequences"]
