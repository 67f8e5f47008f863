"""The external streaming port: selected bus messages, in order, to a sink the host provides.

This is the node's side of what the orchestrator will plug ZeroMQ into (DESIGN.md section 1): the
node knows nothing of sockets; it hands plain dicts to a callable.

How messages are selected: :class:`StreamingBus` is the kernel's MessageBus with one addition, a
*tap* that sees every ``publish`` whose topic matches the configured patterns, *before* the
subscribers run. Tapping the publish (rather than subscribing a handler per pattern) gives the
exact topic of each message, delivers a message once even when two patterns match its topic, and
keeps causal order: if a subscriber publishes something in reaction, that comes after the message
that caused it. Whether a topic matches is decided once per topic and cached.

What the sink receives, one call per message, in publish order::

    {"seq": 17, "topic": "events.order.EMACross-000", "type": "OrderFilled", "data": {...}}

``seq`` counts from 1 per node run; ``data`` is ``to_dict()`` (or the model's ``to_plain`` for
other dataclasses), so msgpack can encode it as is. The sink may be a plain function or a
coroutine function; the port awaits it before handing the next message, so a slow sink applies
backpressure: the node's drain tasks pause while the buffer is above half full (see
:meth:`StreamingPort.wait_room`), and only if one kernel step alone overfills it does the node
stop with :class:`StreamOverflow` (never a silent drop). A node's start publishes a burst in one
step too (``MIN_STREAM_CAPACITY``), and its stop is never refused for want of room
(:meth:`StreamingPort.lift_capacity_for_stop`).

**The record fast path.** A host that turns every message into its own record anyway (the
orchestrator's child packs it into a wire event) would pay for two objects per message.
Such a sink may provide ``stream_record(seq, topic, type_name, data)`` (see :class:`RecordSink`):
the port then buffers what that returns, built at publish time, and hands *that* to the sink,
instead of the dict. Same order, same backpressure, same counters; only the item's shape differs.
A record sink may also take records in runs: with ``take_records(records)`` and
``record_room()`` the port hands a list of consecutive records per call (at most ``TAKE_MAX``, and
at most ``record_room()``, at least one) instead of calling the sink once per record.

**Per wake-up, not per message.** The streaming task hands over everything buffered each time it
wakes, without awaiting between messages (unless the sink returns an awaitable), and updates the
delivery counters once per run of messages: the per-message cost of the loop is what limits how
fast a node can stream (issue #4). For the same reason the buffer is a plain deque of the port's
own rather than a ``KernelQueue``: a put is an append (and a wake-up only if the task waits), and
the high-water mark is read when the task wakes, which is when the buffer is at its longest.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from node.live.errors import StreamOverflow
from node.model.events import to_plain
from node.msgbus.bus import MessageBus, deliver_rest, topic_matches

DEFAULT_STREAM_PATTERNS = ("events.order.*", "events.position.*", "events.account.*", "events.system.*")
"""Order, position, account and system/component events (what the orchestrator journals)."""

Sink = Callable[[dict], Any]

MIN_STREAM_CAPACITY = 256
"""The smallest ``node.queues.stream_capacity`` the config loader accepts.

A node's start publishes in bursts the stream task cannot drain in between (one kernel step
each): starting the engines, then every strategy's STARTING and RUNNING in one loop. Measured
on the sandbox example with a sink that yields on every message (2026-12-08), the smallest
capacity a start gets through with is 8 for one strategy and 26 for ten (2 more per strategy);
with a state store, whose commits are held until the node is RUNNING, 12 and 30. 256 holds the
start of more than 100 strategies with a store, and costs nothing until used. The Python API
(``QueueConfig``, ``StreamingPort``) still takes any capacity >= 1, for tests and for hosts
that know their bursts.
"""

TAKE_MAX = 256
"""Records per ``take_records`` call at most (one list of them is built per call)."""


class RecordSink(Protocol):
    """A sink that chooses what the port buffers per message (the fast path; module docstring).

    ``stream_record`` is called on the kernel loop, inside ``publish``, with what would otherwise go
    into the dict; it must be quick and must not raise. The sink is then called with its result.

    Optionally, both of (the port checks for them when the sink is set):

    - ``take_records(records: list) -> Awaitable | None``: take a run of records, oldest first,
      instead of one ``__call__`` each; the awaitable (if any) is awaited before the next run.
    - ``record_room() -> int``: how many records the sink takes before it will have to wait; the
      port never hands a longer run (but always at least one record).
    """

    def stream_record(self, seq: int, topic: str, type_name: str, data: Any) -> Any: ...

    def __call__(self, record: Any) -> Awaitable[None] | None: ...


def _dict_record(seq: int, topic: str, type_name: str, data: Any) -> dict:
    """The record of an ordinary sink: the dict of the module docstring."""
    return {"seq": seq, "topic": topic, "type": type_name, "data": data}


class StreamingBus(MessageBus):
    """A MessageBus that also shows matching publishes to a tap (see module docstring)."""

    _MAX_TAP_TOPICS = 65_536

    def __init__(self, trader_id: str, clock: Any, name: str = "MessageBus") -> None:
        super().__init__(trader_id, clock, name)
        self._tap: Callable[[str, Any], None] | None = None
        self._tap_patterns: tuple[str, ...] = ()
        self._tap_topics: dict[str, bool] = {}

    def set_tap(self, tap: Callable[[str, Any], None] | None, patterns: tuple[str, ...] = ()) -> None:
        self._tap = tap
        self._tap_patterns = tuple(patterns)
        self._tap_topics = {}

    def publish(self, topic: str, msg: Any) -> None:
        tap = self._tap
        if tap is not None:
            hit = self._tap_topics.get(topic)
            if hit is None:
                hit = self._tap_topic(topic)
            if hit:
                tap(topic, msg)
        # MessageBus.publish, inlined (one Python call less per message: this runs for every
        # message of the node; keep the two in step).
        self.pub_count += 1
        handlers = self._cache.get(topic)
        if handlers is None:
            handlers = self._cache_topic(topic)
        remaining = iter(handlers)
        try:
            for handler in remaining:
                handler(msg)
        except Exception as first:
            deliver_rest(remaining, topic, msg, first)
            raise

    def _tap_topic(self, topic: str) -> bool:
        """First sight of a topic: does the tap see it? (decided once per topic and cached)."""
        if len(self._tap_topics) >= self._MAX_TAP_TOPICS:
            self._tap_topics.clear()
        hit = self._tap_topics[topic] = isinstance(topic, str) and any(
            topic_matches(topic, p) for p in self._tap_patterns
        )
        return hit


def _message_data(msg: Any) -> Any:
    """What a message carries as ``data``: ``to_dict()``, else ``to_plain``, else its repr."""
    to_dict = getattr(msg, "to_dict", None)
    try:
        return to_dict() if to_dict is not None else to_plain(msg)
    except TypeError:
        return {"repr": repr(msg)}


def to_stream_dict(seq: int, topic: str, msg: Any) -> dict:
    """One message as the plain dict handed to the sink."""
    return _dict_record(seq, topic, type(msg).__name__, _message_data(msg))


class StreamingPort:
    """Buffers tapped messages and hands them to the sink from its own task, in order.

    The buffer is a plain deque owned by the port (not a ``KernelQueue``): one producer (the tap,
    on the kernel loop), one consumer (:meth:`run`), never-drop (full is :class:`StreamOverflow`),
    and the bookkeeping is done once per wake-up of the consumer instead of once per message.
    """

    def __init__(self, patterns: tuple[str, ...], capacity: int, logger: Any = None) -> None:
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"stream topic patterns must be non-empty strings, got {pattern!r}")
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"queue 'stream': capacity must be an int >= 1, got {capacity!r}")
        self.patterns = tuple(patterns)
        self._sink: Sink | RecordSink | None = None
        self._record: Callable[[int, str, str, Any], Any] = _dict_record
        self._take: Callable[[list], Any] | None = None  # the sink's take_records, if it has one
        self._room: Callable[[], int] | None = None  # ... and its record_room
        self._items: deque = deque()  # records not yet handed to the sink, oldest first
        self._capacity = capacity
        self._closed = False
        self._readable: anyio.Event | None = None  # set by a put while run() waits for one
        self._high_water = max(1, capacity // 2)  # congested at or above this (backpressure)
        self._max_buffered = 0  # the most records ever buffered at once (stats' high_water)
        self._in_hand = False  # run() awaits the sink on a record it took (not delivered yet)
        self._log = logger
        self.seq = 0
        self.delivered = 0
        self.sink_errors = 0
        self._delivered_event: anyio.Event | None = None
        self._room_event: anyio.Event | None = None
        # Durability (``node.live.recorder``): ``recorder(seq, topic, type_name, msg, data)`` sees
        # every message at publish; ``await make_durable()`` must have returned before a message
        # is handed to the sink. ``_durable_seq`` is the last seq made durable, ``_handed_seq`` the
        # last one handed over: one int compare per wake-up decides whether to commit.
        self.recorder: Callable[[int, str, str, Any, Any], None] | None = None
        self.make_durable: Callable[[], Awaitable[None]] | None = None
        self._durable_seq = 0
        self._handed_seq = 0
        self._holding = False  # see hold_commits
        self._stopping = False  # see lift_capacity_for_stop

    @property
    def sink(self) -> Sink | RecordSink | None:
        """The host's sink; set before the node runs (a :class:`RecordSink` picks the fast path)."""
        return self._sink

    @sink.setter
    def sink(self, sink: Sink | RecordSink | None) -> None:
        record = getattr(sink, "stream_record", None)
        take = getattr(sink, "take_records", None) if callable(record) else None
        room = getattr(sink, "record_room", None)
        self._sink = sink
        self._record = record if callable(record) else _dict_record
        batched = callable(take) and callable(room)
        self._take = take if batched else None
        self._room = room if batched else None

    @property
    def enabled(self) -> bool:
        return self._sink is not None

    def attach(self, bus: StreamingBus) -> None:
        bus.set_tap(self._on_publish, self.patterns)

    def detach(self, bus: StreamingBus) -> None:
        bus.set_tap(None)

    # -- kernel side (synchronous, on the loop) ---------------------------------------------------

    def _on_publish(self, topic: str, msg: Any) -> None:
        if self._closed:
            return  # the node has stopped streaming (after its final flush)
        self.seq = seq = self.seq + 1
        # _message_data() inlined: this runs once per streamed message.
        to_dict = getattr(msg, "to_dict", None)
        try:
            data = to_dict() if to_dict is not None else to_plain(msg)
        except TypeError:
            data = {"repr": repr(msg)}
        type_name = type(msg).__name__
        recorder = self.recorder
        if recorder is not None:
            recorder(seq, topic, type_name, msg, data)
        items = self._items
        items.append(self._record(seq, topic, type_name, data))
        readable = self._readable
        if readable is not None and (not self._holding or len(items) >= self._high_water):
            self._readable = None
            readable.set()
        if len(items) > self._capacity and not self._stopping:
            self._overflow(seq, topic)

    def _overflow(self, seq: int, topic: str) -> None:
        """Stop the node: one kernel step published more than the buffer holds.

        Never a drop: the message that did not fit is still buffered (its seq is taken, and the
        recorder has it), so the stream stays gapless and the stop's messages follow it in order.
        """
        raise StreamOverflow(
            f"the external stream buffer is full ({self._capacity} messages): the host's sink "
            f"does not keep up (message {seq} on {topic} is over the capacity). Make the sink "
            "faster or raise queues.stream_capacity"
        )

    def lift_capacity_for_stop(self) -> None:
        """From the node's stop on, buffer beyond the capacity instead of raising StreamOverflow.

        The stop publishes a bounded number of messages (each component's STOPPING/STOPPED, what
        strategies cancel), often in one kernel step, and must run to STOPPED whatever the buffer
        holds: a start-up that failed on an overflow left the buffer full, and raising again from
        the stop's first publish left the node STOPPING for good (and run_async raising that
        instead of the start-up's error). Raising would stop nothing then (the node is stopping),
        and dropping would lose the record of how it stopped; the final flush (``post_stop``)
        hands them over.
        """
        self._stopping = True

    @property
    def congested(self) -> bool:
        return len(self._items) >= self._high_water

    async def wait_room(self) -> None:
        """Backpressure for the drain tasks: return once the buffer is below half full."""
        while self.congested and not self._closed:
            if self._room_event is None:
                self._room_event = anyio.Event()
            await self._room_event.wait()

    def hold_commits(self) -> None:
        """Commit (and so hand over) nothing until :meth:`release_commits`, unless congested.

        For a node's start: it publishes a handful of messages at several points (its state,
        the account's state, what strategies do as they start), and committing each group as
        it came meant a worker-thread write per group, each waking a thread that preempted the
        start on a 2-core machine (~2 ms of a ~13 ms recovery in ``bench/restart_latency.py``).
        Held, the first commit after the start carries them all. A buffer reaching its high-water
        mark is committed anyway, so backpressure never waits on the hold.
        """
        self._holding = True

    def release_commits(self) -> None:
        """End :meth:`hold_commits`: what is buffered is committed and handed over at once."""
        if not self._holding:
            return
        self._holding = False
        readable = self._readable
        if readable is not None:
            self._readable = None
            readable.set()

    def resume_from(self, seq: int) -> None:
        """Number the next message ``seq + 1`` (a restarted node continues its stored sequence)."""
        if type(seq) is not int or seq < 0:
            raise ValueError(f"the stream seq to resume from must be an int >= 0, got {seq!r}")
        self.seq = self._durable_seq = self._handed_seq = seq

    async def _ensure_durable(self) -> None:
        """Commit everything published so far (before handing a message that is not durable yet).

        The kernel goes on meanwhile (the commit's disk write runs in a thread); what it
        publishes during the commit goes into the next one.
        """
        upto = self.seq
        await self.make_durable()
        self._durable_seq = upto

    # -- the streaming task ---------------------------------------------------------------------

    async def run(self) -> None:
        """Hand every buffered message to the sink until the port is closed and the buffer empty.

        One wake-up hands over everything buffered (messages published meanwhile too), taking
        each from the buffer only when its turn comes, so ``congested`` stays exact. Counters and
        wake-ups are settled once per run of synchronous sink calls, and before awaiting a sink's
        awaitable: whoever waits (``flush``, ``wait_room``) sees the same state as if they were
        settled per message, since nothing else runs between two synchronous calls.

        Durability: ``_handed_seq`` counts the messages handed over (from the resumed seq), as the
        seq of the last one; a wake-up hands at most up to ``_durable_seq`` and first commits
        (``make_durable``) if nothing buffered is durable yet, so no message reaches the sink
        before the commit that holds it returned.
        """
        sink = self._sink
        take = self._take
        items = self._items
        popleft = items.popleft
        isawaitable = inspect.isawaitable
        while True:
            buffered = len(items)
            if not buffered:
                if self._closed:
                    return
                self._readable = readable = anyio.Event()
                await readable.wait()
                continue
            # Only a put adds to the buffer and only this task takes from it, so the buffer is
            # at its longest whenever this task resumes: the high-water mark needs no per-put work.
            if buffered > self._max_buffered:
                self._max_buffered = buffered
            count = buffered
            if self.make_durable is not None:
                count = self._durable_seq - self._handed_seq
                if count <= 0:
                    if self._holding and buffered < self._high_water:  # see hold_commits
                        self._readable = readable = anyio.Event()
                        await readable.wait()
                        continue
                    await self._ensure_durable()  # a failure propagates: the node stops
                    continue
                if count > buffered:
                    count = buffered
            if take is not None:
                await self._hand_records(take, count)
                continue
            handed = 0
            for _ in range(count):
                item = popleft()
                try:
                    result = sink(item)
                    # ``is not None`` first: the common sync sink returns None, and
                    # inspect.isawaitable costs as much as the rest of this loop.
                    if result is not None and isawaitable(result):
                        if handed:
                            self._settle(handed)
                            handed = 0
                        await self._await_sink(result)
                except Exception as exc:  # a host bug must not stop the node; it is counted and logged
                    self._sink_failed(item, exc)
                handed += 1
            self._settle(handed)

    async def _hand_records(self, take: Callable[[list], Any], count: int) -> None:
        """Hand the next ``count`` buffered records through ``take_records``, in runs.

        A run is at most ``TAKE_MAX`` records and at most what the sink says it takes before it
        must wait (``record_room``, at least one): a sink bounded at N records then holds exactly
        N at most, as if it had been handed one record per call.
        """
        items = self._items
        popleft = items.popleft
        room = self._room
        while count:
            n = min(count, TAKE_MAX, room())
            if n < 1:
                n = 1
            if n == len(items):
                records = list(items)
                items.clear()
            else:
                records = [popleft() for _ in range(n)]
            count -= n
            try:
                result = take(records)
                if result is not None and inspect.isawaitable(result):
                    await self._await_sink(result)
            except Exception as exc:  # a host bug must not stop the node; it is counted and logged
                self._sink_failed(records, exc)
            self._settle(n)

    async def _await_sink(self, result: Awaitable) -> None:
        """Await the sink's backpressure; what it was handed counts as delivered only afterwards."""
        self._in_hand = True
        try:
            await result
        finally:
            self._in_hand = False
            if len(self._items) > self._max_buffered:
                self._max_buffered = len(self._items)

    def _settle(self, handed: int) -> None:
        """Count ``handed`` more messages as delivered and wake whoever waits on that."""
        self.delivered += handed
        self._handed_seq += handed
        delivered, self._delivered_event = self._delivered_event, None
        if delivered is not None:
            delivered.set()
        if self._room_event is not None and not self.congested:
            room, self._room_event = self._room_event, None
            room.set()

    def _sink_failed(self, item: Any, exc: Exception) -> None:
        self.sink_errors += 1
        if self._log is not None:
            if type(item) is list:  # a run of records given to take_records
                what = f"{len(item)} stream records, the first {item[0]!r:.200}"
            elif type(item) is dict:
                what = f"message {item.get('seq')} ({item.get('topic')})"
            else:
                what = f"stream record {item!r:.200}"
            self._log.exception(f"stream sink failed on {what}", exc)

    async def flush(self) -> None:
        """Return once every message published so far has been handed to the sink."""
        self.release_commits()
        while self._items or self._in_hand:
            if self._delivered_event is None:
                self._delivered_event = anyio.Event()
            await self._delivered_event.wait()

    def close(self) -> None:
        self._closed = True
        self._holding = False
        for name in ("_readable", "_room_event"):
            event = getattr(self, name)
            if event is not None:
                setattr(self, name, None)
                event.set()

    def stats(self) -> dict:
        return {
            "enabled": self.enabled,
            "patterns": list(self.patterns),
            "published": self.seq,
            "delivered": self.delivered,
            "buffered": len(self._items),
            "high_water": max(self._max_buffered, len(self._items)),
            "sink_errors": self.sink_errors,
        }


__all__ = [
    "DEFAULT_STREAM_PATTERNS",
    "MIN_STREAM_CAPACITY",
    "RecordSink",
    "StreamingBus",
    "StreamingPort",
    "to_stream_dict",
]
