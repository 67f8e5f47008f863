"""Process control with real processes and real signals: spawn, wait, signals, graceful stop,
and the child's "die with the parent" guard.

Synchronisation is always on an event: a line the child writes on a pipe once it is ready, a
process exit seen through its pidfd. The few timeouts are hang guards or the stop/term delays
under test, never a threshold on how fast something happened.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading

import pytest
import trio
import trio.testing

from orchestrator.process.exit_codes import FAULTED, PARENT_LOST
from orchestrator.process.exit_status import ExitStatus
from orchestrator.process.pdeathsig import PARENT_PID_ENV, ParentPidMissing, expected_parent_pid
from orchestrator.process.spawn import ChildProcess, InvalidTimeout, TerminationStep, spawn
from orchestrator.supervision.exit_reason import ExitReason, Intent, classify_exit

pytestmark = pytest.mark.trio

PY = sys.executable
GUARD_S = 30  # hang guard only: every wait below ends on an event long before this

# Children do not write core files, whatever the machine's ulimit says.
NO_CORE = "import resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"


def code(src: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(src)]


@pytest.fixture
async def children():
    """Spawned children; any still running at the end of a test is killed and reaped."""
    spawned: list[ChildProcess] = []
    yield spawned
    for child in spawned:
        child.kill()
        with trio.fail_after(GUARD_S):
            await child.wait()


class Lines:
    """Line reader on the read end of a pipe (trio stream over the fd)."""

    def __init__(self, fd: int) -> None:
        self._stream = trio.lowlevel.FdStream(fd)
        self._buf = b""

    async def readline(self) -> str:
        while b"\n" not in self._buf:
            chunk = await self._stream.receive_some()
            if not chunk:
                raise EOFError(self._buf)
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    async def read_all(self) -> str:
        while chunk := await self._stream.receive_some():
            self._buf += chunk
        out, self._buf = self._buf.decode(), b""
        return out

    async def aclose(self) -> None:
        await self._stream.aclose()


async def spawn_piped(children, argv, *, to="stdout", **kwargs) -> tuple[ChildProcess, Lines]:
    """Spawn with stdout (or stderr) on a pipe that the test reads."""
    read_fd, write_fd = os.pipe()
    try:
        child = await spawn(argv, **{to: write_fd}, **kwargs)
    finally:
        os.close(write_fd)  # the child has its copy; EOF once every writer is gone
    children.append(child)
    return child, Lines(read_fd)


async def wait_status(child: ChildProcess) -> ExitStatus:
    with trio.fail_after(GUARD_S):
        return await child.wait()


# --- exit codes and signals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "returncode", "text", "reason"),
    [
        ("raise SystemExit(0)", 0, "exit code 0 (OK)", ExitReason.CLEAN),
        (f"raise SystemExit({int(FAULTED)})", 3, "exit code 3 (FAULTED)", ExitReason.FAULTED),
        ("raise SystemExit(42)", 42, "exit code 42", ExitReason.ABNORMAL),
        ("raise RuntimeError('boom')", 1, "exit code 1 (FAILED)", ExitReason.ABNORMAL),
        (NO_CORE + "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", -11, "killed by SIGSEGV", None),
        (NO_CORE + "import os; os.abort()", -6, "killed by SIGABRT", None),
    ],
)
async def test_exit_code_or_signal_is_reported(children, tmp_path, src, returncode, text, reason):
    child = await spawn(code(src), cwd=tmp_path, stderr=subprocess.DEVNULL)
    children.append(child)
    status = await wait_status(child)
    assert status == ExitStatus(returncode)
    assert status.describe() == text
    assert classify_exit(status).reason is (reason or ExitReason.ABNORMAL)


async def test_sigkill_is_reported(children):
    child, out = await spawn_piped(
        children, code("import signal; print('ready', flush=True); signal.pause()")
    )
    assert await out.readline() == "ready"
    assert child.poll() is None
    assert child.kill() is True
    status = await wait_status(child)
    assert (status.exit_code, status.signal) == (None, signal.SIGKILL)
    hung = classify_exit(status, Intent.HANG_KILL, note="heartbeat missed for 300 ms")
    assert (hung.reason, hung.text) == (ExitReason.HUNG, "killed by SIGKILL (heartbeat missed for 300 ms)")
    await out.aclose()


async def test_wait_is_shared_by_several_tasks_and_signals_after_the_end_are_not_sent(children):
    child, out = await spawn_piped(
        children, code("import sys; sys.stdout.write('ready\\n'); sys.stdout.flush()")
    )
    results: list[ExitStatus] = []

    async def waiter() -> None:
        results.append(await wait_status(child))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(waiter)
    assert results == [ExitStatus(0)] * 3
    assert await child.wait() == ExitStatus(0)
    assert child.poll() == ExitStatus(0)
    assert child.send_signal(signal.SIGTERM) is False
    assert child.kill() is False
    await out.aclose()


async def test_exit_is_watched_through_a_pidfd(children):
    """The kernel object behind wait(): a pidfd for the child's pid in our fd table (Linux >= 5.3)."""
    if not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd on this platform")
    child, out = await spawn_piped(
        children, code("import signal; print('ready', flush=True); signal.pause()")
    )
    assert await out.readline() == "ready"
    assert child.exit_watch == "pidfd"

    def pidfds_for(pid: int) -> list[int]:
        found = []
        for name in os.listdir("/proc/self/fdinfo"):
            try:
                with open(f"/proc/self/fdinfo/{name}") as f:
                    info = f.read()
            except OSError:
                continue
            if f"Pid:\t{pid}\n" in info:
                found.append(int(name))
        return found

    assert len(pidfds_for(child.pid)) == 1
    child.kill()
    await wait_status(child)
    assert pidfds_for(child.pid) == []  # closed once the child is reaped
    await out.aclose()


# --- graceful termination ---------------------------------------------------------------------

HANDLES_TERM = """
    import signal, sys
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    while True:
        signal.pause()
"""

IGNORES_TERM = """
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        signal.pause()
"""


async def test_a_child_that_handles_sigterm_exits_cleanly_at_step_term(children):
    child, out = await spawn_piped(children, code(HANDLES_TERM))
    assert await out.readline() == "ready"
    with trio.fail_after(GUARD_S):
        result = await child.terminate_gracefully(stop_timeout_s=0, term_timeout_s=GUARD_S)
    assert (result.step, result.status) == (TerminationStep.TERM, ExitStatus(0))
    assert classify_exit(result.status, Intent.STOP).reason is ExitReason.STOPPED
    await out.aclose()


async def test_a_child_that_ignores_sigterm_is_escalated_to_sigkill(children):
    child, out = await spawn_piped(children, code(IGNORES_TERM))
    assert await out.readline() == "ready"
    with trio.fail_after(GUARD_S):
        result = await child.terminate_gracefully(stop_timeout_s=0.05, term_timeout_s=0.2)
    assert (result.step, result.status) == (TerminationStep.KILL, ExitStatus(-signal.SIGKILL))
    stopped = classify_exit(result.status, Intent.STOP)
    assert (stopped.reason, stopped.text) == (
        ExitReason.STOP_UNCLEAN,
        "killed by SIGKILL after a stop request",
    )
    await out.aclose()


async def test_a_child_that_obeys_the_stop_ends_at_step_exited(children):
    """The protocol stop is the caller's; here the child "obeys" a byte on a pipe by exiting."""
    read_fd, write_fd = os.pipe()
    try:
        child, out = await spawn_piped(
            children,
            code(f"import os; print('ready', flush=True); os.read({read_fd}, 1); raise SystemExit(0)"),
            pass_fds=[read_fd],
        )
    finally:
        os.close(read_fd)
    assert await out.readline() == "ready"
    os.write(write_fd, b"s")  # "stop"
    os.close(write_fd)
    with trio.fail_after(GUARD_S):
        result = await child.terminate_gracefully(stop_timeout_s=GUARD_S, term_timeout_s=GUARD_S)
    assert (result.step, result.status) == (TerminationStep.EXITED, ExitStatus(0))
    await out.aclose()


async def test_terminate_while_another_task_waits_for_the_exit(children):
    """The supervisor always has a task in wait(); a graceful stop must share the exit with it."""
    child, out = await spawn_piped(children, code(IGNORES_TERM))
    assert await out.readline() == "ready"
    seen: list[ExitStatus] = []

    async def supervisor_wait() -> None:
        seen.append(await wait_status(child))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor_wait)
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(GUARD_S):
            result = await child.terminate_gracefully(stop_timeout_s=0, term_timeout_s=0.1)
    assert result.step is TerminationStep.KILL
    assert seen == [result.status] == [ExitStatus(-signal.SIGKILL)]
    await out.aclose()


async def test_terminating_a_child_that_already_ended(children):
    child = await spawn(code("raise SystemExit(3)"))
    children.append(child)
    await wait_status(child)
    result = await child.terminate_gracefully(stop_timeout_s=0, term_timeout_s=0)
    assert (result.step, result.status) == (TerminationStep.EXITED, ExitStatus(3))


@pytest.mark.parametrize(("stop", "term"), [(-1, 1), (1, float("nan")), (float("inf"), 1)])
async def test_invalid_termination_timeouts(children, stop, term):
    child = await spawn(code("pass"))
    children.append(child)
    with pytest.raises(InvalidTimeout):
        await child.terminate_gracefully(stop, term)


# --- how the child is started -----------------------------------------------------------------


async def test_stdout_and_stderr_go_to_log_files(children, tmp_path):
    out_log, err_log = tmp_path / "node.out", tmp_path / "node.err"
    out_log.write_text("earlier run\n")
    child = await spawn(
        code("import sys; print('to out'); print('to err', file=sys.stderr)"), stdout=out_log, stderr=err_log
    )
    children.append(child)
    assert await wait_status(child) == ExitStatus(0)
    assert out_log.read_text() == "earlier run\nto out\n"  # appended, not truncated
    assert err_log.read_text() == "to err\n"
    assert stat.S_IMODE(err_log.stat().st_mode) == 0o600


async def test_stderr_can_join_stdout_in_one_log(children, tmp_path):
    log = tmp_path / "node.log"
    child = await spawn(
        code("import sys; print('out', flush=True); print('err', file=sys.stderr, flush=True)"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    children.append(child)
    await wait_status(child)
    assert log.read_text() == "out\nerr\n"


async def test_env_cwd_and_parent_pid(children, tmp_path):
    child, out = await spawn_piped(
        children,
        code(
            f"import os; print(os.getcwd(), os.environ['NODE_ID'], os.environ['{PARENT_PID_ENV}'], 'HOME' in os.environ)"
        ),
        env={"NODE_ID": "n1", "PATH": os.environ.get("PATH", "")},
        cwd=tmp_path,
    )
    cwd, node_id, parent_pid, has_home = (await out.readline()).split()
    assert (cwd, node_id, int(parent_pid), has_home) == (str(tmp_path.resolve()), "n1", os.getpid(), "False")
    await wait_status(child)
    await out.aclose()


async def test_start_new_session_detaches_from_our_process_group(children):
    alone, out1 = await spawn_piped(
        children, code("import os; print(os.getsid(0), os.getpgid(0))"), start_new_session=True
    )
    with_us, out2 = await spawn_piped(children, code("import os; print(os.getsid(0), os.getpgid(0))"))
    assert (await out1.readline()).split() == [str(alone.pid), str(alone.pid)]
    assert (await out2.readline()).split() == [str(os.getsid(0)), str(os.getpgid(0))]
    for child in (alone, with_us):
        await wait_status(child)
    await out1.aclose()
    await out2.aclose()


async def test_parent_fds_are_not_inherited(children):
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, True)  # even an inheritable fd stays out unless passed
    try:
        child, out = await spawn_piped(
            children, code(f"import os; print(os.path.exists('/proc/self/fd/{write_fd}'))")
        )
        assert await out.readline() == "False"
        await wait_status(child)
        await out.aclose()
    finally:
        os.close(read_fd)
        os.close(write_fd)


async def test_the_child_belongs_to_the_trio_thread(children):
    """PR_SET_PDEATHSIG fires when the *thread* that forked the child exits. trio's open_process
    forks from a cache thread that exits after 10 s idle (and takes armed children with it);
    spawn() must fork from the trio thread. The kernel lists each thread's children in /proc."""
    me = threading.get_native_id()
    path = f"/proc/self/task/{me}/children"
    if not os.path.exists(path):
        pytest.skip("kernel without /proc/<pid>/task/<tid>/children")
    child, out = await spawn_piped(
        children, code("import signal; print('ready', flush=True); signal.pause()")
    )
    assert await out.readline() == "ready"
    with open(path) as f:
        assert str(child.pid) in f.read().split()
    child.kill()
    await wait_status(child)
    await out.aclose()


async def test_a_missing_program_raises_in_the_parent(tmp_path):
    with pytest.raises(FileNotFoundError):
        await spawn([str(tmp_path / "no-such-program")])


# --- die with the parent ----------------------------------------------------------------------

GRANDCHILD = """
    import os, signal
    from orchestrator.process.pdeathsig import die_with_parent_from_env, parent_death_signal
    die_with_parent_from_env()
    print(os.getpid(), parent_death_signal(), flush=True)
    while True:
        signal.pause()
"""

# The intermediate parent: spawns the grandchild with our spawn() and waits on it forever.
INTERMEDIATE = f"""
    import sys, textwrap, trio
    from orchestrator.process.spawn import spawn

    async def main():
        child = await spawn([sys.executable, "-c", textwrap.dedent({GRANDCHILD!r})])
        await child.wait()

    trio.run(main)
"""


async def wait_gone(pid: int) -> None:
    """Wait until ``pid`` has exited: its pidfd becomes readable (works for a non-child too)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with trio.fail_after(GUARD_S):
            await trio.lowlevel.wait_readable(pidfd)
    finally:
        trio.lowlevel.notify_closing(pidfd)
        os.close(pidfd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
async def test_grandchild_dies_when_its_parent_is_killed(children):
    intermediate, out = await spawn_piped(children, code(INTERMEDIATE))
    pid_text, pdeathsig = (await out.readline()).split()
    grandchild = int(pid_text)
    assert int(pdeathsig) == signal.SIGKILL
    os.kill(grandchild, 0)  # alive
    intermediate.kill()
    assert (await wait_status(intermediate)).signal == signal.SIGKILL
    await wait_gone(grandchild)
    assert await out.read_all() == ""  # the pipe's writers are all gone
    await out.aclose()


async def test_die_with_parent_exits_parent_lost_when_the_ppid_does_not_match(children):
    wrong = 1 if os.getpid() != 1 else 2
    child, err = await spawn_piped(
        children,
        code(
            f"""
            from orchestrator.process.pdeathsig import die_with_parent
            die_with_parent({wrong})
            raise SystemExit(0)  # not reached
            """
        ),
        to="stderr",
    )
    status = await wait_status(child)
    assert status == ExitStatus(int(PARENT_LOST))
    assert status.describe() == "exit code 4 (PARENT_LOST)"
    assert f"expected {wrong}" in await err.read_all()
    await err.aclose()


async def test_die_with_parent_returns_when_the_parent_is_alive(children):
    child, out = await spawn_piped(
        children,
        code(
            """
            from orchestrator.process.pdeathsig import die_with_parent_from_env, parent_death_signal
            die_with_parent_from_env()
            print(parent_death_signal())
            """
        ),
    )
    assert await out.readline() == str(int(signal.SIGKILL))
    assert await wait_status(child) == ExitStatus(0)
    await out.aclose()


# The real race: the parent is gone before the child arms PDEATHSIG. The grandchild waits (on its
# parent's pidfd) until the intermediate has exited, and only then calls die_with_parent.
LATE_GRANDCHILD = """
    import os, select
    from orchestrator.process.pdeathsig import die_with_parent_from_env, expected_parent_pid
    try:
        pidfd = os.pidfd_open(expected_parent_pid())
    except ProcessLookupError:
        pidfd = None
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll()
    die_with_parent_from_env()
    print("not reached", flush=True)
"""

EXITING_INTERMEDIATE = f"""
    import os, sys, textwrap, trio
    from orchestrator.process.spawn import spawn

    async def main():
        await spawn([sys.executable, "-c", textwrap.dedent({LATE_GRANDCHILD!r})])
        os._exit(0)

    trio.run(main)
"""


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd to order the race")
async def test_a_child_whose_parent_died_before_prctl_exits_at_once(children):
    read_fd, write_fd = os.pipe()
    try:
        intermediate = await spawn(code(EXITING_INTERMEDIATE), stdout=write_fd, stderr=write_fd)
    finally:
        os.close(write_fd)
    children.append(intermediate)
    output = Lines(read_fd)
    assert await wait_status(intermediate) == ExitStatus(0)
    with trio.fail_after(GUARD_S):
        text = await output.read_all()  # EOF: the grandchild has exited too
    assert "parent lost before start-up completed" in text
    assert "not reached" not in text
    await output.aclose()


@pytest.mark.parametrize("value", [None, "", "abc", "0", "-5"])
async def test_a_missing_or_bad_parent_pid_is_refused(value):
    env = {} if value is None else {PARENT_PID_ENV: value}
    with pytest.raises(ParentPidMissing):
        expected_parent_pid(env)


async def test_the_parent_pid_is_read_from_the_environment():
    assert expected_parent_pid({PARENT_PID_ENV: "1234"}) == 1234
