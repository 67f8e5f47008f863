"""``orchestrator up CONFIG``: run a fleet of nodes in the foreground until Ctrl-C, SIGTERM or SIGHUP.

With ``--detach`` this process only launches ``up`` again in the background (its own session,
output to ``<runtime dir>/logs/orchestrator.log``) and waits for it to say whether every node
reached RUNNING. The background process says so over a pipe (hidden ``--ready-fd``) rather than
being polled: the answer arrives the moment it is known, and an orchestrator that dies while
starting closes the pipe, which the waiting side sees at once.

In the foreground on a terminal the output is a live status view (the table of ``status``,
redrawn in place with plain ANSI codes); anywhere else it stays one line per state change,
which is what a log or a test wants to read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator import exit_codes
from orchestrator.commands.own_log import open_own_log
from orchestrator.commands.up_output import LiveView, LoggedOutput, PlainOutput
from orchestrator.process.orphans import OrphanReaper

HELP = "start every node of a fleet config and supervise them (foreground, or --detach)"
DESCRIPTION = """\
Start the orchestrator in the foreground: one child process per node (from warm spares),
events relayed over ZeroMQ, crashes and hangs detected and answered by the node's restart
policy. On a terminal it shows a live table, redrawn twice a second: one row per node with
state, pid, incarnation, restarts, uptime, heartbeat age, events/s, PnL (account currency) and
how its last process ended, with the latest state changes below it. Otherwise (a pipe, a log)
it prints one line per node state change. Ctrl-C, SIGTERM or SIGHUP (its terminal closed)
stops every node gracefully (stop -> stop_timeout_s -> SIGTERM -> SIGKILL) and exits 0 only if
every node stopped cleanly. An output that goes away (a pipe whose reader exited) never stops
the fleet: it runs on, logging to <runtime dir>/logs/orchestrator.log. A control socket in the
runtime dir serves `status`, `start|stop|restart`, `events` and `down`; each node's output goes
to <runtime dir>/logs/<node>.log (`logs NODE`).

With --detach the orchestrator runs in the background (its output in
<runtime dir>/logs/orchestrator.log) and this command returns once every node is running
(exit 0), or exits 1 naming the node that did not start (the orchestrator keeps running:
inspect it with `status`, stop it with `down`).

example:
  orchestrator up configs/example.toml
  orchestrator up configs/example.toml --detach && orchestrator status

exit status: 0 every node stopped cleanly (--detach: every node is running), 1 a node did
not, 2 invalid config or usage.
"""


def add_parser(subparsers) -> None:
    import argparse

    p = subparsers.add_parser(
        "up", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("config", help="path to the fleet TOML file")
    p.add_argument("--detach", action="store_true", help="run in the background; return once all nodes run")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="--detach: wait at most S seconds for every node to run (default: 2 x startup_timeout_s)",
    )
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # set by --detach for its child
    p.set_defaults(func=run)


def run(args) -> int:
    from orchestrator.configfile import load_or_report
    from orchestrator.fleet.loader import load_fleet

    path = Path(args.config)
    config = load_or_report(path, load_fleet)
    if config is None:
        return exit_codes.BAD_USAGE
    if args.timeout is not None and args.timeout <= 0:
        print(f"error: --timeout must be > 0, got {args.timeout}", file=sys.stderr)
        return exit_codes.BAD_USAGE
    timeout = args.timeout or 2 * config.startup_timeout_s
    if args.detach:
        return _detach(path, config, timeout)
    import trio

    live = args.ready_fd is None and sys.stdout.isatty()
    try:
        clean = trio.run(_serve, config, args.ready_fd, timeout, live)
    except Exception as exc:
        problems = _startup_problems(exc)
        if not problems:
            raise  # a bug: the traceback is what helps
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    return exit_codes.OK if clean else exit_codes.JOB_FAILED


def _startup_problems(exc: BaseException) -> list[str]:
    """The messages of ``exc`` if it is (a group of) problems the operator must fix, else [].

    A corrupt or locked journal, a runtime dir with the wrong mode, an endpoint in use: each error
    already says which file and what to do; a traceback around it would only hide that.
    """
    from orchestrator.exception_groups import leaves as leaves_of
    from orchestrator.fleet.state_dir import StateDirError
    from orchestrator.journal import JournalError, JournalFailedError, JournalWriteError
    from orchestrator.transport.errors import TransportError

    leaves = leaves_of(exc)
    if not leaves or not all(isinstance(e, JournalError | TransportError | StateDirError) for e in leaves):
        return []
    problems = [str(e) for e in leaves]
    if any(isinstance(e, JournalWriteError | JournalFailedError) for e in leaves):
        problems.append(
            "the orchestrator stopped, and every node with it: a node's events must be journaled "
            "before they are relayed. Free space on that disk (or fix it) and start the fleet again: "
            "each node resends, from its state store, the events that were not journaled (with "
            'node_state = "off" they are lost)'
        )
    return problems


def _detach(path: Path, config, timeout: float) -> int:
    """Start ``up`` in the background and wait (bounded) for its report on the pipe."""
    import select

    from orchestrator.control.client import NotRunning, check_socket_file
    from orchestrator.fleet.state_dir import StateDirError, link_logs
    from orchestrator.transport.errors import TransportError
    from orchestrator.transport.runtime_dir import ensure_runtime_dir

    try:
        runtime_dir = ensure_runtime_dir(config.runtime_dir)
    except TransportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    try:
        check_socket_file(runtime_dir)
    except NotRunning:
        pass
    else:
        print(
            f"error: an orchestrator is already running on {runtime_dir}; "
            "`orchestrator down` it first or use another runtime_dir",
            file=sys.stderr,
        )
        return exit_codes.JOB_FAILED
    try:
        log_path = link_logs(runtime_dir, config.state_dir) / "orchestrator.log"  # in the state dir
    except StateDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    read_end, write_end = os.pipe()
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        launched_at = log.seek(0, os.SEEK_END)  # what this launch writes starts here
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "up", str(path.resolve()), "--ready-fd", str(write_end)]
            + ["--timeout", str(timeout)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    data = b""
    deadline = time.monotonic() + timeout + 10.0  # the child's deadline is `timeout`: its answer wins
    with os.fdopen(read_end, "rb") as pipe:
        while b"\n" not in data:
            ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:  # the orchestrator exited (or closed the pipe) without a report
                break
            data += chunk
    if b"\n" not in data:
        try:
            code = proc.wait(timeout=1.0)
            what = f"exited with status {code}"
        except subprocess.TimeoutExpired:
            what = f"did not report within {timeout + 10:g} s (pid {proc.pid}, still running)"
        for line in _errors_since(log_path, launched_at):  # its own words: why it could not start
            print(line, file=sys.stderr)
        print(f"error: the orchestrator {what}; see {log_path}", file=sys.stderr)
        return exit_codes.JOB_FAILED
    report = json.loads(data.split(b"\n", 1)[0])
    if report["ok"]:
        print(
            f"orchestrator running in the background (pid {proc.pid}); nodes running: "
            f"{', '.join(report['running']) or 'none'}; log: {log_path}"
        )
        return exit_codes.OK
    for bad in report["not_running"]:
        why = f" ({bad['last_exit']})" if bad.get("last_exit") else ""
        print(f"error: node {bad['node']} did not start: it is {bad['state']}{why}", file=sys.stderr)
    print(
        f"the orchestrator keeps running (pid {proc.pid}): see `orchestrator status`, "
        f"`orchestrator logs NODE`, stop it with `orchestrator down`; its log: {log_path}",
        file=sys.stderr,
    )
    return exit_codes.JOB_FAILED


def _errors_since(log_path: Path, offset: int, most: int = 20) -> list[str]:
    """The ``error:`` lines the background orchestrator wrote to its log from ``offset`` on."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read(1 << 20).decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.startswith("error: ")][:most]


async def _serve(
    config, ready_fd: int | None = None, ready_timeout: float = 30.0, live: bool = False
) -> bool:
    import trio

    from orchestrator.control.server import ControlServer
    from orchestrator.fleet.orchestrator import Orchestrator
    from orchestrator.fleet.subscriber import EventSubscriber

    orch = Orchestrator(config)
    control = ControlServer(orch)
    header = (
        f"orchestrator: runtime dir {orch.runtime_dir}; state dir {orch.state_dir}; "
        f"events at {orch.event_endpoint}; "
        f"control at {control.endpoint}"
    )
    detached = ready_fd is not None  # stdout and stderr are the log file (see _detach)
    own_log = open_own_log(orch.log_dir / "orchestrator.log", config, carry_stdio=detached)
    if live:
        out = LiveView(header)
    else:
        out = LoggedOutput(own_log, header) if detached else PlainOutput(header)
    # A SUB may connect before the PUB binds: zmq retries, so no state change is missed.
    states = EventSubscriber(orch.event_endpoint, nodes=[])
    outcome: list[bool] = []

    async def show_states() -> None:
        async for item in states:
            out.state_change(item.message)
            e = item.message  # every state change is in the log, whatever the screen shows
            own_log.info(
                "%s: %s incarnation=%s pid=%s %s",
                e["node"],
                e["state"],
                e.get("incarnation"),
                e.get("pid"),
                e.get("reason") or "",
            )

    async def on_signals() -> None:
        # Kept open until the end: a second signal while the nodes stop gracefully kills them
        # (the operator's "now, please"), instead of a KeyboardInterrupt traceback.
        # SIGHUP: the terminal of a foreground `up` closed (an ssh connection dropped). By default
        # it would end this process at once and its children with it (PR_SET_PDEATHSIG): every
        # node killed, not stopped. It is a stop like the others.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            stopping = False
            async for signum in signals:
                name = signal.Signals(signum).name
                if not stopping:
                    stopping = True
                    out.say(f"orchestrator: {name}: stopping every node (again to kill them at once)")
                    orch.shutdown()
                else:
                    out.say(f"orchestrator: {name} again: killing every node now")
                    orch.kill_everything()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(show_states)
            nursery.start_soon(on_signals)
            # This process owns all its children (unlike a host embedding the orchestrator): what a
            # node's process leaves behind, adopted by us as a subreaper, is reaped here.
            nursery.start_soon(OrphanReaper().run)
            async with trio.open_nursery() as serving:

                async def run_orchestrator(task_status=trio.TASK_STATUS_IGNORED) -> None:
                    outcome.append(await orch.run(task_status=task_status))
                    serving.cancel_scope.cancel()  # the control server lives as long as the orchestrator

                await serving.start(run_orchestrator)
                await serving.start(control.serve)
                nursery.start_soon(out.run, orch)
                if ready_fd is not None:
                    serving.start_soon(_report_ready, orch, ready_fd, ready_timeout)
            nursery.cancel_scope.cancel()
    finally:
        await states.aclose()
    out.close(orch)
    clean = bool(outcome and outcome[0])
    out.final(f"orchestrator: stopped ({'clean' if clean else 'NOT clean'})")
    return clean


async def _report_ready(orch, fd: int, timeout: float) -> None:
    """Tell ``up --detach`` (over the pipe ``fd``) whether every autostart node reached RUNNING."""
    import trio

    from orchestrator.fleet.state import NodeState

    expected = [s.node_id for s in orch.config.nodes if s.autostart]
    given_up = (NodeState.FAILED, NodeState.STOPPED)

    def settled() -> bool:
        states = [orch.nodes[n].state for n in expected]
        return all(s is NodeState.RUNNING for s in states) or any(s in given_up for s in states)

    with trio.move_on_after(timeout):
        await orch.wait_until(settled)
    not_running = [
        {"node": n, "state": orch.nodes[n].state.value, "last_exit": orch.nodes[n].last_exit}
        for n in expected
        if orch.nodes[n].state is not NodeState.RUNNING
    ]
    report = {
        "ok": not not_running,
        "running": [n for n in expected if orch.nodes[n].state is NodeState.RUNNING],
        "not_running": not_running,
    }
    try:
        os.write(fd, json.dumps(report).encode() + b"\n")
    except OSError:
        pass  # the launcher has gone (Ctrl-C): nobody to tell
    finally:
        os.close(fd)
