"""Binding and connecting with the endpoint rules of DESIGN §3 enforced in one place.

- ``ipc://``: the path must fit a unix socket address; a bind first claims the path (a stale file
  is removed, a live one refused). The privacy comes from the 0700 runtime dir.
- ``tcp://``: only with CURVE; a tcp endpoint without keys is an error that says how to get them.
- ``inproc://``: allowed (same process, used by tests and in-process tools).
- anything else is refused.
"""

from __future__ import annotations

import zmq

from .curve import CurveKeyPair, configure_client, configure_server
from .errors import CurveKeyError, EndpointError
from .runtime_dir import check_ipc_path, claim_ipc_path, ipc_path

_SCHEMES = ("ipc", "tcp", "inproc")


def scheme_of(endpoint: str) -> str:
    """The scheme of ``endpoint``; raise ``EndpointError`` for an unsupported one."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in _SCHEMES or not rest:
        raise EndpointError(
            f"endpoint {endpoint!r} must look like ipc://PATH, tcp://HOST:PORT or inproc://NAME"
        )
    return scheme


def bind(sock: zmq.Socket, endpoint: str, *, server_keys: CurveKeyPair | None = None) -> None:
    """Bind ``sock`` to ``endpoint``; tcp requires ``server_keys`` (then CURVE is configured first)."""
    scheme = scheme_of(endpoint)
    if scheme == "tcp":
        if server_keys is None:
            raise CurveKeyError(
                f"tcp endpoint {endpoint!r} requires CURVE: create keys with "
                "orchestrator.transport.write_server_keys(DIR) and pass "
                "server_keys=load_server_keys(DIR/server.key), or use an ipc:// endpoint"
            )
        configure_server(sock, server_keys)
    elif scheme == "ipc":
        path = ipc_path(endpoint)
        check_ipc_path(path)
        claim_ipc_path(path)
    sock.bind(endpoint)


def connect(sock: zmq.Socket, endpoint: str, *, server_public_key: bytes | None = None) -> None:
    """Connect ``sock`` to ``endpoint``; tcp requires the server's public key."""
    scheme = scheme_of(endpoint)
    if scheme == "tcp":
        if server_public_key is None:
            raise CurveKeyError(
                f"tcp endpoint {endpoint!r} requires CURVE: pass "
                "server_public_key=load_public_key(DIR/server.pub) (the key the server was started with), "
                "or use an ipc:// endpoint"
            )
        configure_client(sock, server_public_key)
    elif scheme == "ipc":
        check_ipc_path(ipc_path(endpoint))
    sock.connect(endpoint)
