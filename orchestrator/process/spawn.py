"""Start a child by fork+exec, see its end the moment it happens, and stop it step by step.

**Why not ``trio.lowlevel.open_process``.** trio runs ``subprocess.Popen`` in a worker thread of
its thread cache, and those threads exit after 10 s idle. Linux delivers ``PR_SET_PDEATHSIG``
when the *thread* that forked the child exits, so every child that arms it (all of ours do, see
``pdeathsig``) was SIGKILLed ~10 s after start: measured with trio 0.35, rc -9 after 10.0 s.
:func:`spawn` therefore calls ``Popen`` on the trio thread itself, which lives as long as the
orchestrator's event loop. ``Popen`` uses vfork+exec here and blocks the loop for ~0.3 ms
(median measured on this machine), which is cheaper than any thread hand-off would be.

**fork+exec, always.** The parent owns a zmq Context; a forked copy of it without exec is
unusable and dangerous. ``Popen`` execs at once, and ``close_fds=True`` keeps the parent's sockets
out of the child (only ``pass_fds`` and stdio are inherited).

**How the exit is seen.** On Linux >= 5.3 the handle opens a *pidfd* for the child
(``os.pidfd_open``) and waits with ``trio.lowlevel.wait_readable`` on it: the kernel makes the
pidfd readable when the process exits, so the wait ends in the same loop iteration as the exit,
with no polling loop and no thread. (trio's own ``Process.wait`` does the same; it falls back to
a ``waitid`` thread where pidfds are missing.) Where ``pidfd_open`` is unavailable, this module
falls back to a blocking ``waitpid`` in a worker thread; :attr:`ChildProcess.exit_watch` says which
is in use. Only this handle reaps the child, so the pid cannot be recycled under a signal we send.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import trio

from orchestrator.process.exit_status import ExitStatus
from orchestrator.process.pdeathsig import PARENT_PID_ENV

Redirect = str | os.PathLike[str] | int | None
"""Where a child's stdout/stderr goes: None inherits the parent's; a path is opened for append
(created with mode 0600); an int is a file descriptor (or ``subprocess.DEVNULL`` /
``subprocess.STDOUT`` for stderr)."""


class InvalidTimeout(ValueError):
    """A stop/term timeout is negative, NaN or infinite."""


class TerminationStep(Enum):
    """Which step of :meth:`ChildProcess.terminate_gracefully` ended the child."""

    EXITED = "exited"
    """It ended within ``stop_timeout_s`` without a signal from us (the protocol stop worked)."""
    TERM = "term"
    """It ended after SIGTERM."""
    KILL = "kill"
    """It needed SIGKILL."""


@dataclass(frozen=True, slots=True)
class Termination:
    """Result of :meth:`ChildProcess.terminate_gracefully`: the step that ended it and how."""

    step: TerminationStep
    status: ExitStatus


def _check_timeout(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise InvalidTimeout(f"{name} must be a finite number >= 0, got {value!r}")


class _Adopted:
    """The part of ``Popen`` that :class:`ChildProcess` uses, for a child this process did not fork.

    A child forked by the zygote (``orchestrator.child.zygote``) becomes this process's child by
    adoption (this process is a child subreaper): it is reaped with ``waitpid`` like any other.
    """

    STATUS_LOST = 255
    """The exit code reported if someone else in this process reaped the child (``waitpid``:
    ECHILD): its real status is gone, and the supervisor must still learn that it ended."""

    def __init__(self, pid: int, argv: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(argv)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self._reap(0)
        return self.returncode

    def _reap(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:
            self.returncode = self.STATUS_LOST
            return
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)


_HANDLES: weakref.WeakSet[ChildProcess] = weakref.WeakSet()
"""Every child handle of this process: a process-wide fact (a process has one set of children),
for the ``OrphanReaper``, which must leave alone the children someone here watches."""


def known_child_pids() -> set[int]:
    """The pids of this process's children that a :class:`ChildProcess` handle watches, not reaped."""
    return {handle.pid for handle in list(_HANDLES) if handle._popen.returncode is None}


class ChildProcess:
    """Handle of one child started by :func:`spawn`: pid, exit, signals, graceful stop.

    Any number of tasks may call :meth:`wait`; one of them watches the process, the others get
    the same :class:`ExitStatus`. Not thread-safe: use it from the trio thread that spawned it.
    """

    @classmethod
    def adopt(cls, pid: int, argv: Sequence[str]) -> ChildProcess:
        """A handle for ``pid``, a child this process adopted (see :class:`_Adopted`)."""
        return cls(_Adopted(pid, argv), trio.current_time())  # type: ignore[arg-type]

    def __init__(self, popen: subprocess.Popen[bytes], started_at: float) -> None:
        self._popen = popen
        self.pid: int = popen.pid
        _HANDLES.add(self)
        self.stdin = getattr(popen, "stdin", None)  # pipes, with spawn(pipe_stdio=True)
        self.stdout = getattr(popen, "stdout", None)
        self.argv: tuple[str, ...] = tuple(str(a) for a in popen.args)
        self.started_at: float = started_at
        """``trio.current_time()`` right after the fork; uptime = now - started_at."""
        self._wait_lock = trio.Lock()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):  # not Linux, or a kernel older than 5.3
            self._pidfd = None
        self.exit_watch: str = "pidfd" if self._pidfd is not None else "waitpid-thread"
        """How the exit is detected: ``"pidfd"``, or the ``"waitpid-thread"`` fallback."""

    def __repr__(self) -> str:
        status = self.poll()
        state = "running" if status is None else status.describe()
        return f"<ChildProcess pid={self.pid} {state}>"

    def poll(self) -> ExitStatus | None:
        """The exit status if the child has ended (reaping it), else None. Never blocks."""
        rc = self._popen.poll()
        if rc is None:
            return None
        self._close_pidfd()
        return ExitStatus(rc)

    async def wait(self) -> ExitStatus:
        """Wait until the child ends and return how; see the module docstring for the mechanism."""
        status = self.poll()
        if status is not None:
            return status
        async with self._wait_lock:
            if self._popen.poll() is None:
                if self._pidfd is not None:
                    # ClosedResourceError: poll() saw the end and closed the pidfd meanwhile.
                    with contextlib.suppress(trio.ClosedResourceError):
                        await trio.lowlevel.wait_readable(self._pidfd)
                else:
                    await trio.to_thread.run_sync(self._popen.wait, abandon_on_cancel=True)
            rc = self._popen.wait()  # the child has exited: reaps at once
            self._close_pidfd()
        return ExitStatus(rc)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            trio.lowlevel.notify_closing(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def send_signal(self, sig: int) -> bool:
        """Send ``sig`` unless the child has already ended; True if it was sent.

        Safe against pid reuse: the pid is ours until this handle reaps it, and a reaped child is
        never signalled.
        """
        if self._popen.poll() is not None:
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> bool:
        """SIGKILL the child (see :meth:`send_signal`)."""
        return self.send_signal(signal.SIGKILL)

    async def terminate_gracefully(self, stop_timeout_s: float, term_timeout_s: float) -> Termination:
        """End the child: wait ``stop_timeout_s`` -> SIGTERM -> wait ``term_timeout_s`` -> SIGKILL -> wait.

        The caller sends the protocol ``stop`` first (this module knows nothing of the protocol);
        the first wait gives the child the chance to obey it. The wait after SIGKILL is not
        bounded here (a process in uninterruptible sleep ends when the kernel lets it); wrap the
        call in ``trio.fail_after`` if that matters. If cancelled, no further signal is sent.
        """
        _check_timeout("stop_timeout_s", stop_timeout_s)
        _check_timeout("term_timeout_s", term_timeout_s)
        steps = (
            (TerminationStep.EXITED, None, stop_timeout_s),
            (TerminationStep.TERM, signal.SIGTERM, term_timeout_s),
        )
        previous = TerminationStep.EXITED
        for step, sig, timeout in steps:
            # Looked at before each signal: an end during the previous wait belongs to that step,
            # even when its timeout was 0 (a zero wait is cancelled before it can look).
            status = self.poll()
            if status is not None:
                return Termination(previous, status)
            if sig is not None:
                self.send_signal(sig)
            with trio.move_on_after(timeout):
                return Termination(step, await self.wait())
            previous = step
        status = self.poll()
        if status is not None:
            return Termination(previous, status)
        self.kill()
        return Termination(TerminationStep.KILL, await self.wait())


def _open_redirect(target: Redirect) -> tuple[int | None, bool]:
    """(fd or None, whether we opened it and must close it after the fork)."""
    if target is None or isinstance(target, int):
        return target, False
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return fd, True


async def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdout: Redirect = None,
    stderr: Redirect = None,
    start_new_session: bool = False,
    pass_fds: Sequence[int] = (),
    pipe_stdio: bool = False,
) -> ChildProcess:
    """Start ``argv`` as a child process by fork+exec, from the trio thread.

    ``pipe_stdio=True``: the child's stdin and stdout are pipes to this process (``stdout`` is
    then ignored), available as ``ChildProcess.stdin`` and ``.stdout`` (binary, unbuffered).

    ``env`` replaces the environment (None: inherit the parent's); in both cases
    ``ORCHESTRATOR_PARENT_PID`` is set to this process's pid for ``pdeathsig``. stdin is
    ``/dev/null``: children are driven over the protocol, never a terminal.

    ``start_new_session=True`` puts the child in its own session and process group, so a Ctrl-C
    in the terminal reaches only the orchestrator, which then decides how its children stop.

    Raises what ``execve`` raises (``FileNotFoundError``, ``PermissionError``...) in the parent.
    """
    await trio.lowlevel.checkpoint()
    child_env = dict(os.environ if env is None else env)
    child_env[PARENT_PID_ENV] = str(os.getpid())
    out_fd, close_out = _open_redirect(stdout)
    try:
        err_fd, close_err = _open_redirect(stderr)
    except BaseException:
        if close_out:
            os.close(out_fd)
        raise
    try:
        # On the trio thread, deliberately (see the module docstring).
        popen = subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.PIPE if pipe_stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdio else out_fd,
            bufsize=0,
            stderr=err_fd,
            cwd=cwd,
            env=child_env,
            close_fds=True,
            pass_fds=tuple(pass_fds),
            start_new_session=start_new_session,
        )
        return ChildProcess(popen, trio.current_time())
    finally:
        for fd, opened in ((out_fd, close_out), (err_fd, close_err)):
            if opened:
                os.close(fd)
