"""Everything a TradingNode does before it runs: registration, then ``build()``.

Part of :class:`node.live.node.TradingNode`, as a mixin: these methods share its attributes (the
kernel, the queues, the client lists, the stream port) and are kept apart because building is
the one phase that talks to the host's code (client factories, strategy specs) and to the disk
(the state store), and none of it runs once the loop has started.

* **Registration** (while CREATED): client factories, extra strategies and actors, the stream
  sink (any time before ``run``).
* **Components** (``build_components``, or the first half of ``build``): each configured client
  from its factory, checked and bound to the engine queues; each configured strategy.
* **Recovery** (the second half of ``build``, with ``config.state``): open the state store, put
  its state back (``node.live.recovery``), make the stream continue its sequence and carry the
  store's commits (``node.live.recorder``).

A failure at any point disposes the node before the error reaches the caller.
"""

from __future__ import annotations

from node.live.clients import ClientContext, LiveDataClient, LiveExecutionClient
from node.live.errors import ClientFactoryError, NodeStateError, UnknownClientFactory
from node.live.recorder import StateRecorder
from node.live.recovery import restore_node_state
from node.live.states import _LIVE, NodeState, NodeTrigger


def _discard(record) -> None:
    """The stream sink of a node with a state store but no host listening."""


class NodeBuilding:
    """The TradingNode's registration and build (module docstring)."""

    # -- registration (before build/run) --------------------------------------------------------

    def register_data_client_factory(self, name: str, factory) -> None:
        self._register_factory(self._data_factories, name, factory)

    def register_exec_client_factory(self, name: str, factory) -> None:
        self._register_factory(self._exec_factories, name, factory)

    def _register_factory(self, table: dict, name: str, factory) -> None:
        if self.state is not NodeState.CREATED:
            raise NodeStateError(f"register client factories before build(); the node is {self.state.value}")
        if not callable(factory):
            raise TypeError(f"client factory '{name}' must be callable, got {factory!r}")
        table[name] = factory

    def add_strategy(self, strategy) -> None:
        if self.state not in (NodeState.CREATED, NodeState.BUILT):
            raise NodeStateError(f"add strategies before run(); the node is {self.state.value}")
        self.kernel.add_strategy(strategy)

    def add_actor(self, actor) -> None:
        if self.state not in (NodeState.CREATED, NodeState.BUILT):
            raise NodeStateError(f"add actors before run(); the node is {self.state.value}")
        self.kernel.add_actor(actor)

    def set_stream_sink(self, sink) -> None:
        """The host's callable (or coroutine function) for streamed messages; set before run."""
        if self.state in _LIVE:
            raise NodeStateError("set the stream sink before run(); the node is already running")
        self.stream.sink = sink

    # -- build ----------------------------------------------------------------------------------

    def build_components(self) -> None:
        """Create the clients and the strategies now, ahead of :meth:`build`: no I/O, no state.

        For a host that knows the configs of the nodes it may be asked to run before it knows
        which one (a warm spare): ``build()`` then only opens the state store, if any, and
        finishes. Once, while CREATED; a failure disposes the node, as in ``build()``.
        """
        if not self._fsm.can(NodeTrigger.BUILD):
            self._fsm.trigger(NodeTrigger.BUILD)  # raises the specific refusal
        if self._components_built:
            raise NodeStateError(f"node '{self.node_id}': its components are built already; call build()")
        try:
            self._build()
        except BaseException:
            self._dispose_now("build failed")
            raise
        self._components_built = True

    def build(self) -> None:
        """Create the clients from the registered factories and the strategies from the config.

        (Unless :meth:`build_components` did already.) With a state store: open it and restore.
        """
        if not self._fsm.can(NodeTrigger.BUILD):
            self._fsm.trigger(NodeTrigger.BUILD)  # raises the specific refusal
        try:
            if not self._components_built:
                self._build()
            if self.config.state is not None:
                self._open_state(self.config.state)
        except BaseException:
            self._dispose_now("build failed")
            raise
        self._move(NodeTrigger.BUILD)

    def _open_state(self, state_config) -> None:
        """Start = recovery: open the store, put its state back, continue its event sequence."""
        from node.persistence.store import SqliteStateStore  # only nodes with a store pay for sqlite3

        store = SqliteStateStore(state_config.path, synchronous=state_config.synchronous.upper())
        self.state_store = store
        loaded = store.load()
        self.recorder = StateRecorder(store, self.kernel, self.queues.exec_events, self.exec_clients)
        self.restore_report = restore_node_state(self, loaded)
        self._log.info(f"{self.restore_report.summary()} ({state_config.path})")
        stream = self.stream
        stream.resume_from(loaded.last_seq)
        stream.recorder = self.recorder
        stream.make_durable = self.recorder.commit_async
        if stream.sink is None:  # commits ride on the stream task: run it even with nobody listening
            stream.sink = _discard

    def _build(self) -> None:
        cache = self.kernel.cache
        for instrument in self.config.instruments:
            cache.add_instrument(instrument)
        context = ClientContext(
            trader_id=self.config.trader_id,
            environment=self.config.environment,
            clock=self.clock,
            cache=cache,
            logger=self.kernel.logger,
            instruments={i.id: i for i in cache.instruments()},
            request_stop=self.stop,
            wait_idle=self.wait_idle,
        )
        for spec in self.config.data_clients:
            self._add_data_client(self._make(self._data_factories, "data", spec, context))
        for spec in self.config.exec_clients:
            self._add_exec_client(self._make(self._exec_factories, "execution", spec, context))
        for i, spec in enumerate(self.config.strategies):
            self.kernel.add_strategy(spec.build(f"strategies[{i}]"))

    def _make(self, factories: dict, what: str, spec, context):
        factory = factories.get(spec.factory)
        if factory is None:
            known = ", ".join(sorted(factories)) or "none"
            raise UnknownClientFactory(
                f"no {what} client factory named '{spec.factory}' is registered on this node (registered: "
                f"{known}); call register_{'exec' if what == 'execution' else 'data'}_client_factory() before build()"
            )
        try:
            return factory(spec.name, spec.config, context)
        except Exception as exc:
            raise ClientFactoryError(
                f"{what} client factory '{spec.factory}' failed for '{spec.name}': {exc}"
            ) from exc

    def _add_data_client(self, client) -> None:
        if not isinstance(client, LiveDataClient):
            raise ClientFactoryError(f"a data client factory returned {client!r}, not a LiveDataClient")
        self.kernel.data_engine.register_client(client)
        client.bind(self.queues.data.put_nowait, self.queues.data_responses.put_nowait)
        client.bind_async(self.queues.data.put)
        self.data_clients.append(client)

    def _add_exec_client(self, client) -> None:
        if not isinstance(client, LiveExecutionClient):
            raise ClientFactoryError(
                f"an execution client factory returned {client!r}, not a LiveExecutionClient"
            )
        self.kernel.exec_engine.register_client(client, oms_type=getattr(client, "oms_type", None))
        # The engine bound the client to its own process(); events go through the queue instead.
        client.bind(self.queues.exec_events.put_nowait)
        client.bind_async(self.queues.exec_events.put)
        hook = client.market_data_hook()
        if hook is not None:
            self.bridge.market_data_hooks.append(hook)
        self.exec_clients.append(client)
