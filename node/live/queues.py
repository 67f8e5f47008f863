"""Bounded queues between the outside world and the single-threaded kernel.

Why not anyio memory object streams (the obvious choice): a memory stream hands an item straight
to a receiver that is already waiting, so the item is never in the buffer. The data task needs to
*see* what is queued on the execution side (see ``bridge.KernelBridge.settle``: execution before
market data), and the market-data queue needs to drop its *oldest* item when full; neither is
possible through a memory stream. So this is a small deque plus anyio events: one consumer awaits
:meth:`KernelQueue.get`; producers on the kernel loop call :meth:`put_nowait`, producers in their
own tasks ``await put``. Nothing here is thread-safe: other threads go through the command inbox.

Overflow policies (one per queue, fixed when the node is built):

=============  ======================================  ===========================================
policy         async producer (``await put``)           synchronous producer (``put_nowait``)
=============  ======================================  ===========================================
BLOCK          waits for room (backpressure)           raises :class:`QueueFull` (never drops)
DROP_OLDEST    never waits; evicts the oldest item      same; ``dropped`` counts evictions
DROP_NEWEST    never waits; discards the new item       same; ``dropped`` counts discards
=============  ======================================  ===========================================

Commands and execution events use BLOCK: losing one would desynchronise orders from the venue.
Market data uses DROP_OLDEST by default: under overload the freshest quote is the useful one.

End of a queue: :meth:`close` is the sentinel. The consumer still gets every item queued before
it, then :meth:`get` raises :class:`EndOfQueue`. Cancellation ends a consumer at once.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable

import anyio
from anyio.lowlevel import checkpoint

from node.live.errors import QueueClosed, QueueFull


class OverflowPolicy(enum.Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


class EndOfQueue(Exception):
    """Raised by :meth:`KernelQueue.get` once the queue is closed and empty (the sentinel)."""


class KernelQueue:
    """One bounded FIFO with an overflow policy and counters (see module docstring)."""

    def __init__(self, name: str, capacity: int, policy: OverflowPolicy = OverflowPolicy.BLOCK) -> None:
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"queue '{name}': capacity must be an int >= 1, got {capacity!r}")
        self.name = name
        self.capacity = capacity
        self.policy = OverflowPolicy(policy)
        self._items: deque = deque()
        self._closed = False
        # Events are created lazily, inside the loop: anyio needs a running backend to make one.
        self._readable: anyio.Event | None = None
        self._writable: anyio.Event | None = None
        self.put_count = 0
        self.processed = 0
        self.dropped = 0
        self.errors = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    def snapshot(self) -> tuple:
        """The queued items, oldest first, without taking them (what a state commit records)."""
        return tuple(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- producing ------------------------------------------------------------------------------

    def put_nowait(self, item: object) -> None:
        """Queue ``item`` now, applying the overflow policy; never waits."""
        if self._closed:
            raise QueueClosed(
                f"queue '{self.name}' is closed (the node has stopped); {type(item).__name__} was not queued"
            )
        items = self._items
        if len(items) >= self.capacity:
            policy = self.policy
            if policy is OverflowPolicy.BLOCK:
                raise QueueFull(
                    f"queue '{self.name}' is full ({self.capacity} items) and never drops; "
                    f"{type(item).__name__} could not be queued. Raise the queue capacity in the node "
                    "config, or have the producer use 'await put()' so it waits for room"
                )
            self.dropped += 1
            if policy is OverflowPolicy.DROP_NEWEST:
                return
            items.popleft()
        items.append(item)
        self.put_count += 1
        if len(items) > self.high_water:
            self.high_water = len(items)
        readable = self._readable
        if readable is not None:
            self._readable = None
            readable.set()

    async def put(self, item: object) -> None:
        """Queue ``item``; under BLOCK wait for room (backpressure), otherwise as :meth:`put_nowait`."""
        if self.policy is OverflowPolicy.BLOCK:
            while len(self._items) >= self.capacity and not self._closed:
                if self._writable is None:
                    self._writable = anyio.Event()
                await self._writable.wait()
        self.put_nowait(item)
        await checkpoint()

    # -- consuming ------------------------------------------------------------------------------

    def get_nowait(self) -> object:
        """The oldest item; raises IndexError when empty."""
        item = self._items.popleft()
        writable = self._writable
        if writable is not None:
            self._writable = None
            writable.set()
        return item

    async def get(self) -> object:
        """Wait for and return the oldest item; :class:`EndOfQueue` once closed and drained."""
        while not self._items:
            if self._closed:
                raise EndOfQueue(self.name)
            if self._readable is None:
                self._readable = anyio.Event()
            await self._readable.wait()
        return self.get_nowait()

    def close(self) -> None:
        """The sentinel: no more puts; the consumer drains what is left, then gets EndOfQueue."""
        self._closed = True
        for event in (self._readable, self._writable):
            if event is not None:
                event.set()
        self._readable = self._writable = None

    def stats(self) -> dict:
        return {
            "size": len(self._items),
            "capacity": self.capacity,
            "policy": self.policy.value,
            "put": self.put_count,
            "processed": self.processed,
            "dropped": self.dropped,
            "errors": self.errors,
            "high_water": self.high_water,
        }


KERNEL_QUEUE_NAMES = (
    "data_commands",
    "data_requests",
    "data_responses",
    "data",
    "risk_commands",
    "risk_events",
    "exec_commands",
    "exec_events",
)
"""The eight engine queues, one drain task each (DESIGN.md section 2)."""


class KernelQueues:
    """The eight engine queues plus "has the kernel gone idle?" bookkeeping.

    *Idle* means every queue is empty. Handlers run synchronously, so at any await point an idle
    kernel has no work in progress; a replay client playing "as fast as possible" waits for idle
    before each item, which makes a sandbox run as deterministic as a backtest.
    """

    def __init__(
        self,
        capacity: int,
        data_capacity: int,
        data_policy: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
    ) -> None:
        self.data_commands = KernelQueue("data_commands", capacity)
        self.data_requests = KernelQueue("data_requests", capacity)
        self.data_responses = KernelQueue("data_responses", capacity)
        self.data = KernelQueue("data", data_capacity, data_policy)
        self.risk_commands = KernelQueue("risk_commands", capacity)
        self.risk_events = KernelQueue("risk_events", capacity)
        self.exec_commands = KernelQueue("exec_commands", capacity)
        self.exec_events = KernelQueue("exec_events", capacity)
        self._progress: anyio.Event | None = None

    def __iter__(self):
        return (getattr(self, name) for name in KERNEL_QUEUE_NAMES)

    def is_idle(self) -> bool:
        return not any(self)

    def pending(self) -> int:
        return sum(len(q) for q in self)

    def notify_progress(self) -> None:
        """Called after every handled item: wakes whoever waits for idle or for a condition."""
        progress = self._progress
        if progress is not None:
            self._progress = None
            progress.set()

    async def wait_progress(self) -> None:
        """Return after the next handled item."""
        if self._progress is None:
            self._progress = anyio.Event()
        await self._progress.wait()

    async def wait_idle(self) -> None:
        """Return once every queue is empty (at once if they already are)."""
        while not self.is_idle():
            await self.wait_progress()
        await checkpoint()

    def close(self, queues: Iterable[KernelQueue] | None = None) -> None:
        for queue in queues if queues is not None else self:
            queue.close()
        self.notify_progress()

    def stats(self) -> dict:
        return {q.name: q.stats() for q in self}


__all__ = ["KERNEL_QUEUE_NAMES", "EndOfQueue", "KernelQueue", "KernelQueues", "OverflowPolicy"]
