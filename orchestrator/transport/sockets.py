"""Factories for the three sockets of DESIGN §3 and the peers that connect to them.

Every factory takes the process's zmq Context from the caller (there is no global one), applies
``options.apply_options`` and the endpoint rules of ``endpoints``, and returns a plain, bound or
connected ``zmq.Socket``. Wrap it in ``TrioSocket`` to use it from trio; a synchronous tool (e.g. a
one-shot CLI call) may use it directly.

- **node ROUTER** (parent, one for all children) / **node DEALER** (child, ``IDENTITY = slot id``).
  The ROUTER sets ``ROUTER_MANDATORY`` (a send to a gone child raises ``PeerUnreachableError``
  instead of vanishing) and ``ROUTER_HANDOVER``: measured with libzmq 4.3.5, a peer whose
  connection was dropped (e.g. it sent a frame over ``MAXMSGSIZE``) reconnects under the same
  identity, and without handover the ROUTER may keep the stale identity and silently ignore the
  new connection for good. The 0700 runtime dir (ipc) and CURVE (tcp) keep strangers from claiming
  an identity.
- **event PUB** (parent) / **SUB** (subscribers): plain PUB, drops at the HWM, never stalls nodes;
  publish through ``SequencedPublisher`` so subscribers can detect gaps with ``GapDetector``.
- **control ROUTER** (parent) / **control DEALER** (CLI): same ROUTER options as the node ROUTER.
"""

from __future__ import annotations

import zmq

from .curve import CurveKeyPair
from .endpoints import bind, connect
from .errors import EndpointError
from .options import DEFAULT_OPTIONS, SocketOptions, apply_options


def _router(
    ctx: zmq.Context, endpoint: str, server_keys: CurveKeyPair | None, options: SocketOptions
) -> zmq.Socket:
    sock = ctx.socket(zmq.ROUTER)
    try:
        apply_options(sock, options)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        bind(sock, endpoint, server_keys=server_keys)
    except BaseException:
        sock.close(linger=0)
        raise
    return sock


def _client(
    ctx: zmq.Context,
    kind: int,
    endpoint: str,
    server_public_key: bytes | None,
    options: SocketOptions,
    identity: bytes | None = None,
    topics: tuple[bytes, ...] = (),
) -> zmq.Socket:
    sock = ctx.socket(kind)
    try:
        apply_options(sock, options)
        if identity is not None:
            sock.setsockopt(zmq.IDENTITY, identity)
        for topic in topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        connect(sock, endpoint, server_public_key=server_public_key)
    except BaseException:
        sock.close(linger=0)
        raise
    return sock


def slot_identity(slot: str) -> bytes:
    """The routing id of a child's DEALER: the slot id in UTF-8 (1..255 bytes, not starting with NUL)."""
    identity = slot.encode()
    if not 1 <= len(identity) <= 255 or identity[0] == 0:
        raise EndpointError(
            f"slot id {slot!r} cannot be a zmq identity: it must be 1..255 bytes and not start with NUL"
        )
    return identity


def node_router(
    ctx: zmq.Context,
    endpoint: str,
    *,
    server_keys: CurveKeyPair | None = None,
    options: SocketOptions = DEFAULT_OPTIONS,
) -> zmq.Socket:
    """The parent's ROUTER that every child's DEALER connects to (bound)."""
    return _router(ctx, endpoint, server_keys, options)


def node_dealer(
    ctx: zmq.Context,
    endpoint: str,
    slot: str,
    *,
    server_public_key: bytes | None = None,
    options: SocketOptions = DEFAULT_OPTIONS,
) -> zmq.Socket:
    """A child's DEALER, identified to the ROUTER by its ``slot`` id (connected)."""
    return _client(ctx, zmq.DEALER, endpoint, server_public_key, options, identity=slot_identity(slot))


def event_pub(
    ctx: zmq.Context,
    endpoint: str,
    *,
    server_keys: CurveKeyPair | None = None,
    options: SocketOptions = DEFAULT_OPTIONS,
) -> zmq.Socket:
    """The parent's event PUB (bound); drops for slow subscribers, never blocks the relay."""
    sock = ctx.socket(zmq.PUB)
    try:
        apply_options(sock, options)
        bind(sock, endpoint, server_keys=server_keys)
    except BaseException:
        sock.close(linger=0)
        raise
    return sock


def event_sub(
    ctx: zmq.Context,
    endpoint: str,
    *,
    topics: tuple[bytes, ...] = (b"",),
    server_public_key: bytes | None = None,
    options: SocketOptions = DEFAULT_OPTIONS,
) -> zmq.Socket:
    """A subscriber to the event PUB (connected), subscribed to ``topics`` (prefix match; b"" = all)."""
    return _client(ctx, zmq.SUB, endpoint, server_public_key, options, topics=topics)


def control_router(
    ctx: zmq.Context,
    endpoint: str,
    *,
    server_keys: CurveKeyPair | None = None,
    options: SocketOptions = DEFAULT_OPTIONS,
) -> zmq.Socket:
    """The parent's control ROUTER that CLI clients talk to (bound)."""
    return _router(ctx, endpoint, server_keys, options)


def control_dealer(
    ctx: zmq.Context,
    endpoint: str,
    *,
    server_public_key: bytes | None = None,
    options: SocketOptions = DEFAULT_OPTIONS,
) -> zmq.Socket:
    """A CLI client's DEALER to the control ROUTER (connected; the ROUTER assigns its identity)."""
    return _client(ctx, zmq.DEALER, endpoint, server_public_key, options)
