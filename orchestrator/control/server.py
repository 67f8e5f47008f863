"""The control ROUTER served beside a running Orchestrator (``up`` starts it).

One task reads requests; each request runs in its own task, because some take seconds
(``restart`` waits for the node to stop and to come back RUNNING) and must not hold up a
``status`` from another terminal. Every request gets exactly one reply, errors included: a CLI
must never be left waiting for an answer that will not come. A reply to a client that has gone
(``PeerUnreachableError``) is dropped; a reply to a client that stopped reading is given up on
after ``SEND_TIMEOUT_S``.

``down`` replies first (with the pid and how long a graceful shutdown may take, so the client
can wait for the process to end with a bound) and then asks the Orchestrator to shut down.

``history`` (what ``events --since`` replays) reads the nodes' journals (issue #5): durable and
complete, not a bounded window. It reads the files with ``read_journal`` (its own fd, no lock, safe
while the relay appends) in a worker thread, so a large replay page never stalls the relay.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import trio
import zmq

from orchestrator.control import messages as m
from orchestrator.control.journal_events import journaled_events
from orchestrator.fleet.orchestrator import Orchestrator, OrchestratorError
from orchestrator.fleet.state import NodeState
from orchestrator.transport.endpoints import bind
from orchestrator.transport.errors import PeerUnreachableError
from orchestrator.transport.options import new_context
from orchestrator.transport.runtime_dir import ipc_endpoint, ipc_path, remove_ipc_file
from orchestrator.transport.sockets import control_router
from orchestrator.transport.trio_socket import TrioSocket

log = logging.getLogger("orchestrator.control")

SEND_TIMEOUT_S = 2.0
CONTROL_SOCKET_NAME = "control"
_ENDED = (NodeState.RUNNING, NodeState.FAILED, NodeState.STOPPED, NodeState.CRASHED)
_ENDED_MEANWHILE = "the orchestrator shut down before this request was done; see `status` once it is up again"


def control_endpoint(runtime_dir) -> str:
    return ipc_endpoint(runtime_dir, CONTROL_SOCKET_NAME)


class ControlServer:
    """Serves control requests for ``orch``; ``history`` replays the nodes' journals."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self.endpoint = control_endpoint(orch.runtime_dir)
        self._sock: TrioSocket | None = None
        self._down_requested = False

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Bind, then serve until cancelled; the socket file is removed on the way out."""
        ctx = new_context()
        kept = Path(ipc_path(self.endpoint))
        try:
            raw = control_router(ctx, self.endpoint)
            self._sock = TrioSocket(raw)
            # Bound again if the runtime dir is emptied under us (orchestrator.fleet.runtime_watch).
            self.orch.runtime_watch.keep(kept, "the control socket", lambda: bind(raw, self.endpoint))
            try:
                task_status.started(self)
                async with trio.open_nursery() as nursery:
                    while True:
                        frames = await self._sock.recv_multipart()
                        nursery.start_soon(self._answer, frames)
            finally:
                self.orch.runtime_watch.forget(kept)
                remove_ipc_file(self.endpoint)  # first: a cancelled aclose() would skip it
                with trio.CancelScope(shield=True):
                    await self._sock.aclose()
        finally:
            ctx.term()

    async def _answer(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            return  # a DEALER always sends identity + one frame; anything else is not a client of ours
        identity, frame = frames
        try:
            req = m.decode_request(frame)
            reply = m.ok(await self._dispatch(req["op"], req["args"]))
        except m.ControlProtocolError as exc:
            reply = m.error(exc.code, str(exc))
        except _Refused as exc:
            reply = m.error(exc.code, str(exc))
        except OrchestratorError as exc:
            code = m.UNKNOWN_NODE if str(exc).startswith("unknown node") else m.FAILED
            reply = m.error(code, str(exc))
        except trio.TooSlowError as exc:
            reply = m.error(m.FAILED, str(exc) or "timed out")
        except trio.Cancelled:  # the orchestrator is ending: the client is told, not left to time out
            with trio.CancelScope(shield=True):
                await self._reply(identity, m.error(m.SHUTTING_DOWN, _ENDED_MEANWHILE))
            raise
        except Exception as exc:  # a bug of ours: the client hears of it, and the fleet runs on
            log.exception("control request %r failed unexpectedly", frame[:200])
            reply = m.error(
                m.FAILED, f"internal error ({type(exc).__name__}: {exc}); see the orchestrator's log"
            )
        await self._reply(identity, reply)
        if self._down_requested:
            self.orch.shutdown()

    async def _reply(self, identity: bytes, reply: dict) -> None:
        try:
            payload = m.encode(reply)
        except m.ControlProtocolError as exc:
            payload = m.encode(m.error(exc.code, str(exc)))
        with trio.move_on_after(SEND_TIMEOUT_S):
            try:
                await self._sock.send_multipart([identity, payload])
            except (PeerUnreachableError, zmq.ZMQError, trio.ClosedResourceError):
                pass  # the client has gone; nothing to tell

    async def _dispatch(self, op: str, args: dict):
        orch = self.orch
        cfg = orch.config
        if op == "ping":
            return {
                "pid": os.getpid(),
                "runtime_dir": str(orch.runtime_dir),
                "state_dir": str(orch.state_dir),
                "event_endpoint": orch.event_endpoint,
                "start_wait_s": cfg.startup_timeout_s,
                "stop_wait_s": cfg.stop_timeout_s + cfg.term_timeout_s,
                "nodes": list(orch.nodes),
            }
        if op == "status":
            return orch.status()
        if op == "history":
            node = args.get("node")
            if node is not None:
                orch.node_status(node)  # unknown node -> OrchestratorError
            nodes = [node] if node is not None else sorted(orch.nodes)
            return await trio.to_thread.run_sync(
                journal_history, orch.state_dir, nodes, args.get("since", 0), args.get("limit", 1000)
            )
        if op == "down":
            self._down_requested = True
            return {
                "pid": os.getpid(),
                "max_wait_s": cfg.stop_timeout_s + cfg.term_timeout_s + 5.0,
            }
        if self._down_requested:
            raise _Refused(m.SHUTTING_DOWN, "the orchestrator is shutting down")
        node = args["node"]
        orch.node_status(node)
        if op == "stop":
            status = await orch.stop_node(node)
            return status.to_dict(trio.current_time())
        if op == "start":
            await orch.start_node(node)
        else:  # restart
            await orch.restart_node(node)
        return await self._wait_started(node)

    async def _wait_started(self, node: str) -> dict:
        """After an assign: wait (bounded) until the node is RUNNING or has visibly not started."""
        cfg = self.orch.config
        with trio.move_on_after(cfg.startup_timeout_s + 1.0):
            await self.orch.wait_for(node, *_ENDED)
        status = self.orch.node_status(node)
        if status.state is not NodeState.RUNNING:
            why = f": {status.last_exit}" if status.last_exit else ""
            raise _Refused(m.FAILED, f"node {node} did not reach running (it is {status.state.value}){why}")
        return status.to_dict(trio.current_time())


def journal_history(state_dir, nodes: list[str], since: int = 0, limit: int = 1000) -> dict:
    """Journaled events of ``nodes`` with ``seq >= since``, at most ``limit``, node by node.

    Same shape as the in-memory history had: ``events`` (``[node, seq, ts_ns, topic, type, data]``),
    ``first_kept`` (per node: 1 if it has any event, else None; a journal keeps everything) and
    ``truncated`` (more events are there: ask again after the last one).
    """
    out: list = []
    first_kept: dict[str, int | None] = {}
    truncated = False
    for node in nodes:
        first_kept[node] = None
        if truncated:
            continue
        try:
            for event in journaled_events(state_dir, node, since):
                first_kept[node] = 1
                if len(out) >= limit:
                    truncated = True
                    break
                out.append([node, *event])
        except FileNotFoundError:
            continue
    return {"events": out, "first_kept": first_kept, "truncated": truncated}


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
