"""Transport errors: each says what went wrong and what to do about it."""

from __future__ import annotations


class TransportError(Exception):
    """Base class of every error raised by ``orchestrator.transport``."""


class EndpointError(TransportError, ValueError):
    """An endpoint string that cannot be used (unknown scheme, bad name, ipc path too long)."""


class EndpointInUseError(EndpointError):
    """An ipc socket file that another live process is listening on; binding would steal it."""


class RuntimeDirError(TransportError):
    """The runtime directory is not a private (mode 0700, ours, not a symlink) directory."""


class CurveKeyError(TransportError):
    """CURVE keys are missing, unreadable, malformed or too widely readable."""


class PeerUnreachableError(TransportError):
    """A ROUTER send to an identity that is not connected (``ROUTER_MANDATORY`` turned the drop into this).

    ``identity`` is the routing id that was refused. The peer has gone (crashed, disconnected or
    never connected); the caller decides whether that is a dead child or a stale CLI client.
    """

    def __init__(self, identity: bytes) -> None:
        super().__init__(
            f"no peer with identity {identity!r} is connected to this ROUTER; it has gone or never "
            "said hello: drop the message or wait for the peer to reconnect"
        )
        self.identity = identity
