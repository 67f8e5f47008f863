"""Socket options, set in one place for every socket the orchestrator opens.

Why these options:

- ``LINGER`` small (default 200 ms): closing a socket with unsent messages to a dead peer must not
  hang shutdown; a stream that must arrive ends with an explicit end-of-stream message and its ack
  (ipc can lose the tail of a closing sender whatever LINGER says, DESIGN §5).
- ``SNDHWM``/``RCVHWM``: bounded queues per peer, so a stuck peer costs bounded memory.
- ``MAXMSGSIZE = MAX_FRAME_BYTES``: libzmq refuses a larger frame from the wire itself. Measured
  behaviour (libzmq 4.3.5): the receiving side **drops that peer's connection**; the oversized frame
  and whatever was queued behind it on that connection are lost, the sender gets no error, its
  socket reconnects by itself after ``RECONNECT_IVL`` and later messages flow again. Other peers of
  the same ROUTER are unaffected. Our own ``protocol.encode`` refuses oversized messages so that only
  a rogue peer ever hits this.
"""

from __future__ import annotations

import sys
import threading
import warnings
from dataclasses import dataclass

import zmq

from ..protocol.limits import MAX_FRAME_BYTES


@dataclass(frozen=True, slots=True)
class SocketOptions:
    """The per-socket knobs; the defaults are what every orchestrator socket uses."""

    linger_ms: int = 200
    sndhwm: int = 1000
    rcvhwm: int = 1000
    max_frame_bytes: int = MAX_FRAME_BYTES


DEFAULT_OPTIONS = SocketOptions()


def apply_options(sock: zmq.Socket, options: SocketOptions = DEFAULT_OPTIONS) -> None:
    """Set the common options; must run before ``bind``/``connect`` (HWMs apply to new pipes only)."""
    sock.setsockopt(zmq.LINGER, options.linger_ms)
    sock.setsockopt(zmq.SNDHWM, options.sndhwm)
    sock.setsockopt(zmq.RCVHWM, options.rcvhwm)
    sock.setsockopt(zmq.MAXMSGSIZE, options.max_frame_bytes)


class _Context(zmq.Context):
    """A zmq Context that never blocks the garbage collector.

    pyzmq's ``Context.__del__`` closes the sockets it still tracks, then calls ``term()``, which
    waits until every socket of the context is closed. When the context and one of its sockets
    are garbage in the same reference cycle (an error's traceback holding a subscriber, say), the
    collector has already cleared the weak references by which the context tracks that socket, so
    nothing closes it and ``term()`` waits forever: the process hangs wherever the collector
    happened to run (seen once in the test suite). Here a context found unclosed by the collector
    is reported (the ResourceWarning pyzmq gives), its tracked sockets are closed at once, and it
    is terminated in a thread of its own, which returns once the collector has finalized (and so
    closed) the sockets of the cycle too.
    """

    _repr_cls = "zmq.Context"

    def __del__(self) -> None:
        try:
            if self._shadow or self.closed:
                return
            warnings.warn(f"Unclosed context {self}", ResourceWarning, stacklevel=2, source=self)
            for sock in list(self._sockets or ()):
                if not sock.closed:
                    sock.close(linger=0)
            if sys.is_finalizing():
                return  # no thread can start now (that start hung the exit); the exit frees it all
            threading.Thread(target=self.term, name="zmq-context-term", daemon=True).start()
        except Exception:  # the interpreter is shutting down: the process's exit frees it all
            pass


def new_context() -> zmq.Context:
    """A fresh zmq Context for this process.

    There is deliberately no shared or global context: a Context must never cross a fork (DESIGN
    §5), so each process (parent, every child, the CLI) creates its own with this and passes it to
    the socket factories, and terminates it on exit. One left to the garbage collector never hangs
    the process (``_Context``).
    """
    return _Context(io_threads=1)
