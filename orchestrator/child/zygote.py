"""The zygote: one process that has imported everything, forking warm children on request.

Why: a child started by fork+exec pays the interpreter start and every import (0.6-0.9 s on the
project's 2-core machine) before it can say hello. Warm spares hide that for one restart, but a
fleet's first start and several nodes crashing at once still pay it. A fork of a process that
has already imported everything costs ~1-2 ms: a restart with no spare ready takes ~60-70 ms
instead of ~0.85 s (bench/restart_latency.py). Spares are forked too: a node builds slower on a
fork, whose first writes to the pages it shares with the zygote are copy-on-write faults, so a
spare takes those before its hello, in its rehearsal (``orchestrator.child.rehearsal``,
``orchestrator.fleet.children``).

**No zmq Context crosses the fork** (DESIGN §5): the zygote imports zmq, trio and the node but
never creates a Context, a socket, a thread or an event loop; every child creates its own after
the fork, exactly as a fork+exec'd child does (``orchestrator.child.main``).

**The orchestrator stays the parent.** The zygote forks an intermediate process, which forks the
child and exits at once. The orphaned child is adopted by the nearest *child subreaper*: the
orchestrator, which marks itself one (``PR_SET_CHILD_SUBREAPER``) before it starts the zygote.
So the orchestrator reaps the child and reads its exit status like any child of its own, sees
its end through a pidfd, and the child's ``PR_SET_PDEATHSIG`` is armed against the orchestrator
(after the adoption: the child waits on the intermediate's pidfd first). The kernel re-parents
an orphan to the subreaper's first live thread, the one that runs trio: the thread whose exit
fires the signal lives as long as the orchestrator (``orchestrator.process.pdeathsig``, trap 2).
The zygote replies with the child's pid only once the intermediate has been reaped, i.e. once
the adoption is done.

**Protocol** (stdin/stdout pipes with the orchestrator, one JSON object per line): the zygote
says ``{"ready": pid}`` after its warm-up; each request ``{"args": [...], "log": path}`` (the
child's command line after ``-m orchestrator.child``, and the file its output goes to) is
answered with ``{"pid": N}`` or ``{"error": "..."}``. End of stdin ends the zygote. It arms its
own parent-death signal first (``__main__`` below), so it never outlives the orchestrator.
"""

from __future__ import annotations

import gc
import json
import os
import select
import sys
import time
import traceback

from orchestrator.process.exit_codes import ChildExit


def _read_line(fd: int) -> bytes:
    """One line from ``fd`` (unbuffered, so no byte meant for a child is read ahead); b"" at EOF."""
    line = bytearray()
    while True:
        chunk = os.read(fd, 1)
        if not chunk:
            return b""
        if chunk == b"\n":
            return bytes(line)
        line += chunk


def _write_line(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode() + b"\n"
    while data:
        data = data[os.write(fd, data) :]


def fork_child(args: list[str], log_path: str) -> int:
    """Fork a child running ``orchestrator.child`` with ``args``, adopted by the orchestrator; its pid."""
    pid_r, pid_w = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:  # the intermediate: fork the child, tell its pid, vanish
        code = 0
        try:
            os.close(pid_r)
            me = os.getpid()
            child = os.fork()
            if child == 0:
                os.close(pid_w)
                _become_child(args, log_path, me)  # never returns
            _write_line(pid_w, {"pid": child})
        except BaseException:  # noqa: BLE001 - nothing may escape a forked copy of the zygote
            code = 1
        finally:
            os._exit(code)
    os.close(pid_w)
    try:
        reply = _read_line(pid_r)
    finally:
        os.close(pid_r)
        os.waitpid(intermediate, 0)  # gone: the child is the orchestrator's from now on
    if not reply:
        raise OSError("the intermediate process died before telling the child's pid")
    return int(json.loads(reply)["pid"])


def _wait_adopted(intermediate: int) -> None:
    """Return once ``intermediate`` (our parent) has exited, and so we have a new parent.

    Its pidfd, not a pipe's EOF: a dying process closes its files before its children are
    re-parented, but its pidfd becomes readable only after that (measured: with a pipe, one
    child in a few dozen still saw the intermediate as its parent, and took that for a lost one).
    """
    try:
        fd = os.pidfd_open(intermediate)
    except ProcessLookupError:  # exited and reaped already: re-parented before that
        return
    except OSError:  # no pidfds (Linux < 5.3): watch for the new parent instead, briefly
        while os.getppid() == intermediate:
            time.sleep(0.0002)
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def _become_child(args: list[str], log_path: str, intermediate: int) -> None:
    """In the forked child: wait for the adoption, take the child's stdio, run it, exit."""
    code = int(ChildExit.FAILED)
    try:
        _wait_adopted(intermediate)
        os.setsid()  # its own session, as spawn(start_new_session=True) gives a fork+exec'd child
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # stdin was the zygote's request pipe
        os.close(null)
        out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(out, 1)  # stdout was the zygote's reply pipe
        os.dup2(out, 2)
        os.close(out)
        # The zygote's objects stay frozen (gc.freeze in serve): a collection that walked them
        # would write to, and so copy, every page the child shares with the zygote.
        from orchestrator.process.pdeathsig import die_with_parent_from_env, set_process_name

        die_with_parent_from_env()  # against the orchestrator: our parent since the adoption
        # Its command line is the zygote's; the name (ps -o comm, top) at least tells which slot.
        slot = args[args.index("--slot") + 1] if "--slot" in args[:-1] else "?"
        set_process_name(f"orch-child-{slot}")
        from orchestrator.child.main import main

        sys.argv = ["orchestrator.child", *args]
        code = main(args)
    except SystemExit as exc:  # argparse on a bad command line
        code = exc.code if isinstance(exc.code, int) else int(ChildExit.CONFIG)
    except BaseException:  # noqa: BLE001 - report, then exit like a failed child
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
        os._exit(code)


def serve(requests: int = 0, replies: int = 1) -> int:
    """Warm up, say ready, then fork one child per request until stdin ends."""
    from orchestrator.child.warmup import warm_up
    from orchestrator.process.pdeathsig import set_process_name

    set_process_name("orch-zygote")
    warm_up()
    gc.collect()
    gc.freeze()  # children share these pages; the GC of a child will not write to them
    _write_line(replies, {"ready": os.getpid()})
    while True:
        line = _read_line(requests)
        if not line:
            return 0
        try:
            request = json.loads(line)
            args, log_path = request["args"], request["log"]
            if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
                raise ValueError("args must be a list of strings")
            if not isinstance(log_path, str) or not log_path:
                raise ValueError("log must be a file path")
            _write_line(replies, {"pid": fork_child(args, log_path)})
        except Exception as exc:  # a bad request or a failed fork: say so, serve the next one
            _write_line(replies, {"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    from orchestrator.process.pdeathsig import die_with_parent_or_exit

    die_with_parent_or_exit("orchestrator.child.zygote")  # first: it must never outlive the orchestrator
    sys.exit(serve())
