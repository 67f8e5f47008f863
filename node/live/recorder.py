"""StateRecorder: writes the node's state and its event outbox to the state store, together.

Crash-only (DESIGN.md section 2): a node killed at any instant restarts from what this wrote,
through the ordinary start-up (``node.live.recovery``). Two rules make that safe:

* **One transaction per commit holds everything**: the events streamed since the last commit
  (one outbox row: the run of their sequence numbers, handed to the store as columns), the order events and fills they carry (the orders
  and positions are rebuilt from those), the last account states, every strategy's client order
  id counter and saved state (``on_save``), the position id counter, the execution events
  received but not yet applied, and the state of in-process venues (the sandbox's simulated
  exchange, ``persists_state``), and the orchestrator's acks received so far (which delete the
  outbox rows it has journaled). So after a crash, state, outbox and venue can never disagree:
  an order is either in the node *and* at the venue, or in neither.
* **Nothing leaves the process before it is durable**: the streaming port awaits
  :meth:`StateRecorder.commit_async` before it hands any not yet committed message to its sink
  (``StreamingPort.make_durable``). Commits therefore group every message published between two
  wake-ups of the stream task: under load one transaction carries many events.
* **The kernel never waits on the disk**: a commit is gathered on the kernel loop (reading the
  cache, strategies and venue at one instant, so it is consistent) and written, fsync included,
  on the store's own thread (``node.live.store_writer``) while the kernel goes on; what it
  publishes meanwhile goes in the next commit. Only the stream waits for the write.

**State, not history**: once an order is closed it is forgotten (its events are deleted from the
store in the commit that closes it), and so is a closed position's fill list, keeping only what
it realized, added up per instrument (``REALIZED_NAMESPACE``). The events themselves are kept by
the orchestrator's journal. So a restart loads only what is live (open orders, open positions,
balances, counters), and its cost does not grow with how long the node has traded.

What is not recorded: market data, indicator values and other state a strategy does not return
from ``on_save``; a strategy re-warms from fresh data after a restart. (The simulated venue does
keep its last quote per instrument in its own state, so an order sent right after a restart
fills as it would have.)

A commit that fails (disk full, I/O error) is not retried: the error ends the stream task and
with it the node, which restarts from the last commit that succeeded.
"""

from __future__ import annotations

from typing import Any

import msgpack

from node.live.store_writer import StoreWriter
from node.model.events import AccountState, OrderEvent, OrderFilled
from node.persistence.store import OutboxSequenceError, StateStore, encode_event

NODE_NAMESPACE = "node"
PENDING_EXEC_EVENTS = "pending_exec_events"
VENUE_NAMESPACE = "venue."  # + the execution client's id
ORDER_COUNTER = "orders."  # + the strategy id: its order factory's count
POSITION_COUNTER = "positions"
REALIZED_NAMESPACE = "realized"  # key: instrument id; value: {currency code: raw} of closed positions

_STATE_EVENTS = (OrderEvent, AccountState)  # the messages that change recorded state


def pack_data(data: Any) -> bytes:
    """The outbox payload of a streamed message: its ``data``, msgpack'ed (what is resent)."""
    try:
        return msgpack.packb(data, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        return msgpack.packb({"unencodable": f"{data!r:.200}", "error": str(exc)}, use_bin_type=True)


def unpack_data(payload: bytes) -> Any:
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


class StateRecorder:
    """Collects what the kernel publishes and commits it with the node's state (module docstring)."""

    def __init__(self, store: StateStore, kernel, exec_events, exec_clients: list) -> None:
        self.store = store
        self._kernel = kernel
        self._exec_events = exec_events  # the node's execution-event queue (KernelQueue)
        self._exec_clients = exec_clients
        self._pending: list[tuple[int, str, str, Any, Any]] = []
        self._packer = msgpack.Packer(use_bin_type=True)  # reused: one per event is measurable
        self._known_orders: set[str] = set()  # orders whose OrderInitialized is stored
        self._counters: dict[str, int] = {}
        self._strategy_states: dict[str, dict] = {}
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._realized: dict[str, dict[str, int]] = {}
        self._acked = 0  # the highest seq the orchestrator acked, and the highest applied
        self._acked_applied = 0
        self.commits = 0
        self.events_committed = 0
        self._writer = StoreWriter()  # commit_async's thread (node.live.store_writer)

    def restored(self, known_orders, counters, strategy_states, blobs) -> None:
        """What the store already holds (after a restart), so unchanged values are not rewritten."""
        self._known_orders = set(known_orders)
        self._counters = dict(counters)
        self._strategy_states = {k: dict(v) for k, v in strategy_states.items()}
        self._blobs = {(ns, key): value for ns, values in blobs.items() for key, value in values.items()}
        self._realized = {
            key: msgpack.unpackb(value) for key, value in blobs.get(REALIZED_NAMESPACE, {}).items()
        }

    # -- publish side (the streaming port's recorder hook) ----------------------------------------

    def __call__(self, seq: int, topic: str, type_name: str, msg: Any, data: Any) -> None:
        self._pending.append((seq, topic, type_name, msg, data))

    # -- commit ---------------------------------------------------------------------------------

    async def commit_async(self) -> None:
        """Gather the commit on the kernel loop, write it on the store's thread (the loop goes on)."""
        writes, outbox = self._gather()
        await self._writer.run(self._write, writes, outbox)

    def commit(self) -> None:
        """The same as :meth:`commit_async`, written on the calling thread."""
        self._write(*self._gather())

    def _pack_all(self, datas: tuple) -> list[bytes]:
        """Each message's outbox payload (``pack_data``), packed by one C loop while nothing fails."""
        try:
            return list(map(self._packer.pack, datas))
        except (TypeError, ValueError, OverflowError):
            self._packer = msgpack.Packer(use_bin_type=True)  # a failed pack may leave it mid-write
            return list(map(pack_data, datas))

    def _gather(self) -> tuple[list[tuple], tuple | None]:
        """Everything to write since the last commit: (store method, args) pairs, and the outbox run.

        The run is columns (first seq, topics, types, payloads) taken apart by ``zip`` and packed
        by ``map``: no Python-level work per event unless the commit carries state changes (order
        events, account states), which only those events need.
        """
        pending, self._pending = self._pending, []
        kernel = self._kernel
        tx = _Writes()
        outbox = None
        if pending:
            seqs, topics, type_names, msgs, datas = zip(*pending, strict=True)
            first = seqs[0]
            if seqs != tuple(range(first, first + len(seqs))):  # the port numbers them +1 each
                raise OutboxSequenceError(f"streamed seqs {first}..{seqs[-1]} are not one run")
            if any(issubclass(kind, _STATE_EVENTS) for kind in set(map(type, msgs))):
                self._record_state_events(tx, msgs, type_names)
            outbox = (first, topics, type_names, self._pack_all(datas))
        for strategy in kernel.strategies:
            factory = strategy.order_factory
            if factory is not None:
                self._counter(tx, ORDER_COUNTER + strategy.strategy_id, factory.count)
            saved = strategy.save()
            sid = str(strategy.strategy_id)
            if saved != self._strategy_states.get(sid, {}):
                tx.put_strategy_state(sid, saved)
                self._strategy_states[sid] = dict(saved)
        self._counter(tx, POSITION_COUNTER, kernel.exec_engine.position_count)
        pending_events = [encode_event(e) for e in self._exec_events.snapshot()]
        self._blob(tx, NODE_NAMESPACE, PENDING_EXEC_EVENTS, msgpack.packb(pending_events))
        for client in self._exec_clients:
            if getattr(client, "persists_state", False):
                namespace = VENUE_NAMESPACE + str(client.id)
                for key, value in client.state_blobs().items():
                    self._blob(tx, namespace, key, value)
        return tx.writes, outbox

    def _record_state_events(self, tx, msgs: tuple, type_names: tuple) -> None:
        """The order events (with their fills) and account states among a commit's messages."""
        orders: set = set()  # orders and positions this commit changed
        positions: set = set()
        for msg, type_name in zip(msgs, type_names, strict=True):
            if isinstance(msg, OrderEvent):
                self._record_order_event(tx, msg, type_name)
                orders.add(msg.client_order_id)
                if type(msg) is OrderFilled and msg.position_id is not None:
                    positions.add(msg.position_id)
            elif type(msg) is AccountState:
                tx.put_account_state(msg.account_id, encode_event(msg))
        if orders or positions:
            self._forget_closed(tx, orders, positions)

    def _write(self, writes: list[tuple], outbox: tuple | None) -> None:
        """Apply gathered writes in one transaction, with the acks received until now.

        The acks ride on the commit (``StateTransaction.ack_outbox``): a transaction of their own
        cost a second fsync per commit. Acks that arrive after this one wait for the next commit
        or the store's close; until then a restart resends those events (module docstring).
        """
        acked = self._acked
        with self.store.transaction() as tx:
            for name, args in writes:
                getattr(tx, name)(*args)
            if outbox is not None:
                tx.append_outbox_run(*outbox)  # refuses a run that does not continue the store's sequence
            if acked > self._acked_applied:
                tx.ack_outbox(acked)
        if acked > self._acked_applied:
            self._acked_applied = acked
        self.commits += 1
        if outbox is not None:
            self.events_committed += len(outbox[1])

    def _record_order_event(self, tx, event: OrderEvent, type_name: str) -> None:
        coid = event.client_order_id
        if coid not in self._known_orders:
            order = self._kernel.cache.order(coid)
            if order is None:
                # Not an order of this node's cache (the engines never publish one): its events
                # could not be replayed into an order, and a store that cannot be replayed would
                # keep the node from ever starting again. The event is still in the outbox.
                return
            if type(event).__name__ != "OrderInitialized":
                init = order.init_event
                tx.append_order_event(coid, event.strategy_id, type(init).__name__, encode_event(init))
            self._known_orders.add(coid)
        payload = encode_event(event)
        tx.append_order_event(coid, event.strategy_id, type_name, payload)
        if type(event) is OrderFilled and event.position_id is not None:
            tx.append_position_fill(event.position_id, payload)

    def _forget_closed(self, tx, orders: set, positions: set) -> None:
        """Drop what this commit closed (module docstring: state, not history)."""
        cache = self._kernel.cache
        for coid in orders:
            order = cache.order(coid)
            if order is None or order.is_closed:
                tx.forget_order(coid)
                self._known_orders.discard(coid)
        for position_id in positions:
            position = cache.position(position_id)
            if position is None or not position.is_closed:
                continue
            tx.forget_position(position_id)
            key = str(position.instrument_id)
            realized = dict(self._realized.get(key, {}))
            money = position.realized_pnl
            code = money.currency.code
            realized[code] = realized.get(code, 0) + money.raw
            self._realized[key] = realized
            tx.put_blob(REALIZED_NAMESPACE, key, msgpack.packb(realized))

    def _counter(self, tx, name: str, value: int) -> None:
        if self._counters.get(name) != value:
            tx.set_counter(name, value)
            self._counters[name] = value

    def _blob(self, tx, namespace: str, key: str, value: bytes) -> None:
        if self._blobs.get((namespace, key)) != value:
            tx.put_blob(namespace, key, value)
            self._blobs[(namespace, key)] = value

    # -- the relay's side -------------------------------------------------------------------------

    def ack(self, seq: int) -> None:
        """The orchestrator journaled every event up to ``seq``: they need no resend.

        Only noted here (the loop must not wait on the store's lock while a commit writes); the
        rows are deleted by the next commit, or when the store closes. Until then a restart
        resends them and the orchestrator drops them as duplicates.
        """
        if seq > self._acked:
            self._acked = seq

    def _apply_acks(self) -> None:
        acked = self._acked
        if acked > self._acked_applied:
            self.store.ack_outbox(acked)
            self._acked_applied = acked

    def close(self) -> None:
        """Apply the last acks and close the store (the node is disposed)."""
        self._writer.close()
        if not self.store.closed:
            try:
                self._apply_acks()
            finally:
                self.store.close()

    def stats(self) -> dict[str, int]:
        return {"commits": self.commits, "events_committed": self.events_committed}


class _Writes:
    """A commit's writes, gathered on the kernel loop: the store's transaction methods, recorded."""

    __slots__ = ("writes",)

    def __init__(self) -> None:
        self.writes: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.writes.append((name, args))


__all__ = ["StateRecorder", "pack_data", "unpack_data"]
