"""The orchestrator's handle on its zygote (``orchestrator.child.zygote``): fork a warm child.

The zygote is started like any child (fork+exec from the trio thread, parent-death signal armed,
its own session), with its stdin and stdout as pipes for the line protocol described in
``orchestrator.child.zygote``. :meth:`Zygote.fork` returns a :class:`ChildProcess` for the new
child, which is this process's child by adoption (the orchestrator is a child subreaper), so
everything downstream (exit through a pidfd, waitpid status, signals, graceful stop) is the same
as for a child started by fork+exec. One fork at a time: requests are serialised by a lock.

A fork is answered in milliseconds. A zygote that does not answer within ``FORK_REPLY_TIMEOUT_S``
(SIGSTOPped, wedged, starved for that long) is killed and refused from then on: every child
waits behind the lock for the one fork in flight, so without a bound a stopped zygote held up
every restart that had no spare, for ever (measured: the node stayed STARTING). The caller starts
the child by fork+exec instead, and the pool starts a new zygote once the old one is reaped.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from orchestrator.process.spawn import ChildProcess, spawn

FORK_REPLY_TIMEOUT_S = 1.0
"""How long a fork may take before the zygote is deemed wedged (a fork takes a few ms)."""


class ZygoteError(OSError):
    """The zygote could not start, is gone, or could not fork: start the child the slow way."""


class ForkUnanswered(ZygoteError):
    """The zygote did not answer a fork in time and was killed; it may have forked all the same.

    Such a child would say hello under the slot id it was forked for: the caller must not reuse
    that id, and ends whatever says hello under it (``orchestrator.fleet.strays``).
    """


class Zygote:
    """A running zygote process; see the module docstring."""

    def __init__(self, process: ChildProcess) -> None:
        self.process = process
        self._out = trio.lowlevel.FdStream(os.dup(process.stdout.fileno()))
        self._in = trio.lowlevel.FdStream(os.dup(process.stdin.fileno()))
        process.stdout.close()
        process.stdin.close()
        self._buffer = bytearray()
        self._lock = trio.Lock()
        self._wedged = False  # it missed a fork's deadline: killed, and never asked again
        self.forks = 0

    @classmethod
    async def start(cls, python: str | None, log_path: Path, timeout_s: float) -> Zygote:
        """Start a zygote and wait (at most ``timeout_s``) until it has warmed up."""
        process = await spawn(
            [python or sys.executable, "-m", "orchestrator.child.zygote"],
            stderr=log_path,
            start_new_session=True,
            pipe_stdio=True,
        )
        zygote = cls(process)
        try:
            with trio.fail_after(timeout_s):
                ready = await zygote._reply()
            if ready.get("ready") != process.pid:
                raise ZygoteError(f"the zygote said {ready!r} instead of being ready")
        except BaseException as exc:
            process.kill()
            await zygote.aclose()
            if isinstance(exc, trio.TooSlowError):
                raise ZygoteError(
                    f"the zygote was not ready within {timeout_s:g} s; see {log_path}"
                ) from None
            raise
        return zygote

    async def fork(self, args: Sequence[str], log_path: Path) -> ChildProcess:
        """A new child running ``orchestrator.child`` with ``args``, output appended to ``log_path``."""
        request = json.dumps({"args": [str(a) for a in args], "log": str(log_path)}).encode() + b"\n"
        async with self._lock:
            if self._wedged:
                raise ZygoteError("the zygote was killed for not answering a fork; a new one is coming")
            try:
                with trio.fail_after(FORK_REPLY_TIMEOUT_S):
                    await self._in.send_all(request)
                    reply = await self._reply()
            except trio.TooSlowError:
                # Its reply may still come, and would answer the next request: never ask it again.
                self._wedged = True
                self.process.kill()
                raise ForkUnanswered(
                    f"the zygote (pid {self.process.pid}) did not answer a fork within "
                    f"{FORK_REPLY_TIMEOUT_S:g} s (stopped or wedged): killed it; children start "
                    "by fork+exec until a new one is ready"
                ) from None
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise ZygoteError(f"the zygote is gone: {exc}") from None
        if "pid" not in reply:
            raise ZygoteError(f"the zygote could not fork: {reply.get('error', reply)}")
        self.forks += 1
        return ChildProcess.adopt(reply["pid"], ["orchestrator.child", *args])

    async def _reply(self) -> dict:
        while b"\n" not in self._buffer:
            chunk = await self._out.receive_some(4096)
            if not chunk:
                raise ZygoteError("the zygote closed its reply pipe (it exited)")
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        try:
            reply = json.loads(line)
        except ValueError:
            raise ZygoteError(f"the zygote replied {line[:200]!r}, not JSON") from None
        if not isinstance(reply, dict):
            raise ZygoteError(f"the zygote replied {reply!r:.200}, not an object")
        return reply

    async def aclose(self) -> None:
        """End the zygote (end of its stdin) and wait for it; its children live on."""
        with trio.CancelScope(shield=True):
            await self._in.aclose()
            with trio.move_on_after(2.0):
                await self.process.wait()
            if self.process.poll() is None:
                self.process.kill()
                await self.process.wait()
            await self._out.aclose()


__all__ = ["FORK_REPLY_TIMEOUT_S", "ForkUnanswered", "Zygote", "ZygoteError"]
