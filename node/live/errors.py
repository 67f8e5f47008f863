"""Every error the live node raises, in one place so a host can catch them as families.

Each message says what happened *and* what to do about it: a person reading a log at 3 a.m., or
the orchestrator deciding whether to restart, should not need the source to act on it.

Families:

* :class:`NodeStateError` - a lifecycle method called in the wrong state (a programming error of
  the host; nothing was changed).
* :class:`StartupError` - a start-up step failed or timed out; the node stopped itself and is
  ``STOPPED``, never ``RUNNING``.
* :class:`NodeFatalError` - something the node must not carry on after (an execution event that
  could not be queued, a stream that overflowed); the node stops and ``run_async`` raises it.
"""

from __future__ import annotations


class LiveNodeError(Exception):
    """Base class of the live node's errors."""


# -- lifecycle ------------------------------------------------------------------------------------


class NodeStateError(LiveNodeError):
    """A lifecycle method was called in a state that does not allow it."""


class NodeAlreadyBuilt(NodeStateError):
    """``build()`` was called a second time."""


class NodeNotBuilt(NodeStateError):
    """``run()``/``run_async()`` was called before ``build()``."""


class NodeDisposed(NodeStateError):
    """The node was used after ``dispose()``."""


class DisposeTimeout(LiveNodeError):
    """``dispose()`` waited ``node.timeouts.shutdown`` for the node to stop, and it did not."""


# -- building -------------------------------------------------------------------------------------


class UnknownClientFactory(LiveNodeError, KeyError):
    """A client spec names a factory that was never registered on this node."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class ClientFactoryError(LiveNodeError):
    """A client factory raised or returned something that is not a client."""


# -- start-up -------------------------------------------------------------------------------------


class StartupError(LiveNodeError):
    """A start-up step failed; ``step`` names it (connection, reconciliation, portfolio, strategies)."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


class StartupTimeout(StartupError):
    """A start-up step did not finish within its timeout."""


class StartupFailed(StartupError):
    """A start-up step raised."""


# -- running --------------------------------------------------------------------------------------


class NodeFatalError(LiveNodeError):
    """The node cannot carry on safely; it stops, and ``run_async`` re-raises this."""


class QueueFull(NodeFatalError):
    """A synchronous producer found a never-drop queue full (raise its capacity, or produce async)."""


class QueueClosed(LiveNodeError):
    """An item was put into a queue after the node closed it at shutdown."""


class StreamOverflow(NodeFatalError):
    """The external stream's buffer is full: the host's sink does not keep up."""


# -- commands -------------------------------------------------------------------------------------


class InvalidCommand(LiveNodeError, ValueError):
    """A host command that cannot be parsed (unknown kind, missing field)."""


class CommandRejected(LiveNodeError):
    """A well-formed host command that cannot be carried out now (unknown strategy, wrong state)."""


__all__ = [
    "ClientFactoryError",
    "CommandRejected",
    "DisposeTimeout",
    "InvalidCommand",
    "LiveNodeError",
    "NodeAlreadyBuilt",
    "NodeDisposed",
    "NodeFatalError",
    "NodeNotBuilt",
    "NodeStateError",
    "QueueClosed",
    "QueueFull",
    "StartupError",
    "StartupFailed",
    "StartupTimeout",
    "StreamOverflow",
    "UnknownClientFactory",
]
