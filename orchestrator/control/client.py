"""A synchronous control client for one-shot CLI commands; every wait in it is bounded.

Before sending anything the client checks the socket file: no file means no orchestrator is
running on that runtime dir; a file nobody listens on (``ECONNREFUSED``: left behind by a killed
orchestrator) is reported as stale. Then a ``ping`` with a short timeout tells a live
orchestrator from a hung one, and gives the timeouts of the slow operations (``restart`` waits
for a stop and a start), so the real request gets a deadline that fits the fleet's config
rather than a guess.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

import zmq

from orchestrator.control import messages as m
from orchestrator.control.server import control_endpoint
from orchestrator.transport.errors import TransportError
from orchestrator.transport.options import new_context
from orchestrator.transport.runtime_dir import ipc_path
from orchestrator.transport.sockets import control_dealer

PING_TIMEOUT_S = 3.0


class NotRunning(Exception):
    """No orchestrator answers on this runtime dir (the message says why and what to check)."""


class RequestFailed(Exception):
    """The orchestrator answered with an error; ``code`` is the control protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_socket_file(runtime_dir: Path) -> str:
    """Return the control endpoint if something listens on it, else raise ``NotRunning``."""
    endpoint = control_endpoint(runtime_dir)
    path = ipc_path(endpoint)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotRunning(
            f"no orchestrator is running on runtime dir {runtime_dir} (no {path.name}); start one with "
            "`orchestrator up CONFIG`, or pass the right --runtime-dir/--config"
        ) from None
    if not stat.S_ISSOCK(st.st_mode):
        raise NotRunning(f"{path} is not a socket; remove it (no orchestrator is using it)")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(PING_TIMEOUT_S)
        probe.connect(os.fspath(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            raise NotRunning(
                f"no orchestrator is running on runtime dir {runtime_dir}: {path} is a stale socket "
                "file left by one that was killed (the next `orchestrator up` removes it)"
            ) from None
        raise NotRunning(f"cannot reach the orchestrator at {path}: {exc}") from None
    finally:
        probe.close()
    return endpoint


class ControlClient:
    """``with ControlClient(runtime_dir) as c: c.call("status")``."""

    def __init__(self, runtime_dir: str | os.PathLike) -> None:
        self.runtime_dir = Path(runtime_dir)
        self._endpoint = check_socket_file(self.runtime_dir)
        self._ctx = new_context()
        try:
            self._sock = control_dealer(self._ctx, self._endpoint)
        except TransportError as exc:
            self._ctx.term()
            raise NotRunning(f"cannot connect to {self._endpoint}: {exc}") from None
        self.info: dict = {}

    def ping(self) -> dict:
        self.info = self.call("ping", timeout=PING_TIMEOUT_S)
        return self.info

    def call(self, op: str, *, timeout: float = PING_TIMEOUT_S, **args):
        """Send one request and return its result; raise RequestFailed / NotRunning."""
        self._sock.send(m.encode(m.request(op, **args)))
        if not self._sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise NotRunning(
                f"the orchestrator on {self.runtime_dir} did not answer {op!r} within {timeout:g} s "
                f"(hung, stopped, or shutting down); check its log, {self.runtime_dir / 'logs' / 'orchestrator.log'}"
            )
        try:
            reply = m.decode_reply(self._sock.recv())
        except m.ControlProtocolError as exc:
            raise RequestFailed(exc.code, str(exc)) from None
        if not reply["ok"]:
            raise RequestFailed(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    def close(self) -> None:
        self._sock.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
