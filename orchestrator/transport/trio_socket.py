"""Trio access to ONE zmq socket, done the way DESIGN §5 measured to be fast and correct.

Receiving: try a ``NOBLOCK`` receive first, drain until ``zmq.Again``, and only then park in
``trio.lowlevel.wait_readable(sock.FD)``. Sending: the same with ``NOBLOCK`` sends; at
the high-water mark ``send`` raises ``Again`` while ``EVENTS`` may still claim POLLOUT, so after
``Again`` we always park on the FD (a command from the I/O thread wakes it), never re-poll ``EVENTS``
in a loop. A task that never has to wait does not yield by itself, so every ~100 operations it
passes a ``trio.lowlevel.checkpoint()``: one busy socket cannot starve the loop. The checkpoint is
taken *before* an operation, never after one: a cancellation delivered there must not lose a message
already taken off the socket.

The edge-trigger trap, and the choice made here. The zmq FD is not "a message is waiting"; it
signals that the socket's command mailbox changed, and *any* operation on the socket (send, recv,
reading ``EVENTS``) drains that signal. So if task A is parked waiting to read and task B sends on
the same socket, B's send can consume the wake-up meant for A: the message sits in the queue, the FD
stays quiet, and A sleeps forever. Two fixes exist: make one task own the socket in both directions
(every send then goes through a queue and a task switch), or re-check after every operation. This
class re-checks: after each operation, *only if another task is parked*, it reads ``EVENTS`` and, if
the socket is now ready for what the parked tasks want (POLLIN for receivers, POLLOUT for senders),
cancels the parked task's wait so that everyone retries. We chose this because the orchestrator's
node ROUTER has one relay reader and many senders (commands, acks, heartbeats from different tasks):
a kick costs one ``getsockopt(EVENTS)`` while someone waits and nothing otherwise, where an owner task
would cost a queue hop on every send.

Only one task may wait on an fd in trio, so exactly one parked task waits on the FD (the "fd
waiter") and any other parked task waits on a ``trio.Event`` that the fd waiter sets when it leaves
(woken, kicked, cancelled or closed); then all of them retry their operation. On a ROUTER with
``ROUTER_MANDATORY`` POLLOUT means "some peer can take a message", so a sender waiting for one full
peer may retry a few extra times when other tasks use the socket; that is bounded by their activity
and never a spin.

All use of the socket must go through this wrapper; a raw ``send``/``recv``/``EVENTS`` elsewhere
could consume a wake-up without the re-check. Setting options on ``.socket`` is fine.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
import zmq

from .errors import PeerUnreachableError

CHECKPOINT_EVERY = 100
_SNDMORE_NOBLOCK = zmq.SNDMORE | zmq.NOBLOCK


class TrioSocket:
    """One zmq socket used from trio tasks; see the module docstring for the wake-up protocol."""

    def __init__(self, sock: zmq.Socket, *, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        self._sock = sock
        self._fd = sock.getsockopt(zmq.FD)
        self._checkpoint_every = checkpoint_every
        self._unchecked = 0  # operations since this socket last passed a checkpoint
        self._closed = False
        self._want_in = 0  # parked tasks waiting to receive
        self._want_out = 0  # parked tasks waiting to send
        self._fd_scope: trio.CancelScope | None = None  # the fd waiter's scope, cancelled to kick it
        self._fd_released: trio.Event | None = None  # set when the fd waiter stops waiting

    @property
    def socket(self) -> zmq.Socket:
        """The wrapped socket, for options and introspection; do not send or receive on it directly."""
        return self._sock

    @property
    def closed(self) -> bool:
        return self._closed

    async def recv_multipart(self) -> list[bytes]:
        """Receive one message (all its frames)."""
        self._unchecked += 1
        if self._unchecked > self._checkpoint_every:
            self._unchecked = 0
            await trio.lowlevel.checkpoint()
        while True:
            if self._closed:
                raise trio.ClosedResourceError("this zmq socket was closed")
            try:
                frames = self._recv_now()
            except zmq.Again:
                self._kick_if_ready()
                await self._park(zmq.POLLIN)
                continue
            if self._fd_scope is not None:
                self._kick_if_ready()
            return frames

    def has_unread(self) -> bool:
        """Whether a message waits to be received; wakes a parked task the check may concern.

        Reading ``EVENTS`` drains the FD's signal, so it follows the re-check rule of every
        operation here (module docstring). For a task that must know the reader has caught up
        (the orchestrator, before it judges a node hung).
        """
        if self._closed:
            return False
        unread = bool(self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN)
        self._kick_if_ready()
        return unread

    async def recv_batch(self, max_n: int) -> list[list[bytes]]:
        """Every message already queued, up to ``max_n``; waits only if none is queued.

        The relay loop's call: one wake-up and one ``EVENTS`` re-check per batch instead of per message.
        """
        if max_n < 1:
            raise ValueError(f"max_n must be >= 1, got {max_n}")
        if self._unchecked > self._checkpoint_every:
            self._unchecked = 0
            await trio.lowlevel.checkpoint()
        recv = self._recv_now
        while True:
            if self._closed:
                raise trio.ClosedResourceError("this zmq socket was closed")
            batch: list[list[bytes]] = []
            try:
                while len(batch) < max_n:
                    batch.append(recv())
            except zmq.Again:
                pass
            self._kick_if_ready()
            if batch:
                self._unchecked += len(batch)
                return batch
            await self._park(zmq.POLLIN)

    async def send_multipart(self, frames: Sequence[bytes]) -> None:
        """Send one message; waits (parked on the FD, not spinning) while the peer's queue is full.

        On a ROUTER with ``ROUTER_MANDATORY`` a message to an identity that is not connected raises
        ``PeerUnreachableError`` instead of being dropped silently, and a message to a connected but
        full peer waits: put a deadline around it (``trio.move_on_after``) if that peer may be hung.
        A PUB never waits: at the HWM it drops (that is the PUB's contract; see ``sequencing``).
        """
        if not frames:
            raise ValueError("a zmq message needs at least one frame")
        self._unchecked += 1
        if self._unchecked > self._checkpoint_every:
            self._unchecked = 0
            await trio.lowlevel.checkpoint()
        while True:
            if self._closed:
                raise trio.ClosedResourceError("this zmq socket was closed")
            try:
                self._send_now(frames)
            except zmq.Again:
                self._kick_if_ready()
                await self._park(zmq.POLLOUT)
                continue
            except zmq.ZMQError as exc:
                self._kick_if_ready()
                if exc.errno == zmq.EHOSTUNREACH:
                    raise PeerUnreachableError(bytes(frames[0])) from None
                raise
            if self._fd_scope is not None:
                self._kick_if_ready()
            return

    def try_send(self, frames: Sequence[bytes]) -> bool:
        """Send one message if the socket takes it at once; False (nothing sent) if it would wait.

        For a caller that cannot await (a handler running inside the node's kernel loop) and has
        an async fallback. Errors other than "would block" are raised as by :meth:`send_multipart`.
        """
        if not frames:
            raise ValueError("a zmq message needs at least one frame")
        if self._closed:
            raise trio.ClosedResourceError("this zmq socket was closed")
        try:
            self._send_now(frames)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                raise PeerUnreachableError(bytes(frames[0])) from None
            raise
        finally:
            self._kick_if_ready()
        return True

    async def aclose(self) -> None:
        """Close the socket (with its LINGER); tasks parked on it get ``trio.ClosedResourceError``.

        ``notify_closing`` comes first so that trio forgets the fd before the number can be reused.
        """
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self._fd)
            self._sock.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> TrioSocket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- internals -------------------------------------------------------------------------------

    def _recv_now(self) -> list[bytes]:
        """One whole message without blocking; ``zmq.Again`` if none is queued.

        Frames are read with ``copy=False`` only to learn ``more`` from the frame itself: pyzmq's
        ``recv_multipart`` asks ``getsockopt(RCVMORE)`` per frame, which measured ~1.5x slower. Once
        the first frame is in, the rest of the message is guaranteed to be there (zmq delivers
        messages atomically), so only the first read can raise ``Again``.
        """
        recv = self._sock.recv
        frame = recv(zmq.NOBLOCK, copy=False)
        parts = [frame.bytes]
        while frame.more:
            frame = recv(zmq.NOBLOCK, copy=False)
            parts.append(frame.bytes)
        return parts

    def _send_now(self, frames: Sequence[bytes]) -> None:
        """One whole message without blocking; ``zmq.Again`` (or EHOSTUNREACH) only before any frame is queued.

        A plain loop over ``send`` measured twice as fast as pyzmq's ``send_multipart``. It is safe
        because libzmq applies the HWM (and a ROUTER its routing) to the first frame only: once that
        is accepted, the remaining frames of the message are accepted too.
        """
        send = self._sock.send
        last = len(frames) - 1
        for index in range(last):
            send(frames[index], _SNDMORE_NOBLOCK)
        send(frames[last], zmq.NOBLOCK)

    def _kick_if_ready(self) -> None:
        """After any operation: if a parked task can now proceed, wake it (the edge-trigger fix)."""
        scope = self._fd_scope
        if scope is None:
            return
        want = (zmq.POLLIN if self._want_in else 0) | (zmq.POLLOUT if self._want_out else 0)
        if self._sock.getsockopt(zmq.EVENTS) & want:
            scope.cancel()

    async def _park(self, event: int) -> None:
        """Wait until the socket may be ready for ``event``; the caller then retries its operation.

        Must be called right after the operation raised ``Again`` with no await in between: libzmq
        guarantees the FD signals after an ``Again`` once something changes.
        """
        if event == zmq.POLLIN:
            self._want_in += 1
        else:
            self._want_out += 1
        try:
            if self._fd_scope is None:
                released = self._fd_released = trio.Event()
                with trio.CancelScope() as scope:
                    self._fd_scope = scope
                    try:
                        await trio.lowlevel.wait_readable(self._fd)
                    finally:
                        self._fd_scope = None
                        self._fd_released = None
                        released.set()
            else:
                await self._fd_released.wait()
        finally:
            if event == zmq.POLLIN:
                self._want_in -= 1
            else:
                self._want_out -= 1
        self._unchecked = 0
