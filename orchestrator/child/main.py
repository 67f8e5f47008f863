"""The child's program after the parent-death signal is armed: warm up, connect, run, exit.

Order of work, and why:

1. parse the command line (a usage error exits 2 before any cost is paid), and hold the parent's
   lifeline (``orchestrator.process.lifeline``) until a deliberate exit;
2. warm up: every import an ``assign`` would need, timed (``warmup``);
3. a new zmq Context of this process's own (a Context never crosses a fork, DESIGN §5) and the
   DEALER, connected with ``IDENTITY = slot``;
4. ``ChildSession.run`` (hello, spare, node, ending) inside ``trio.run``;
5. close the socket (its LINGER lets the last messages leave) and terminate the Context, then
   exit with the session's code.

The session is imported after the warm-up on purpose: it is itself on the warm-up list, so its
import cost is part of the measured warm-up, and the measurement starts before anything heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.child.cli import ChildOptions, parse_args
from orchestrator.child.log import ChildLog
from orchestrator.child.warmup import warm_up
from orchestrator.process.exit_codes import ChildExit
from orchestrator.process.lifeline import HeldLifeline


async def run_child(options: ChildOptions, log: ChildLog, warmup_s: float) -> ChildExit:
    """Connect to the parent and run one session; return the exit code."""
    from orchestrator.child.session import ChildSession  # warmed already: a cache hit
    from orchestrator.transport import TransportError, TrioSocket, new_context, node_dealer

    ctx = new_context()
    try:
        try:
            sock = node_dealer(ctx, options.endpoint, options.slot)
        except TransportError as exc:
            log.write(f"cannot connect to {options.endpoint}: {exc}")
            return ChildExit.CONFIG
        async with TrioSocket(sock) as tsock:
            return await ChildSession(tsock, options, log, warmup_s).run()
    finally:
        ctx.term()


def hold_lifeline(options: ChildOptions, log: ChildLog) -> HeldLifeline | None:
    """Hold the parent's lifeline, if it gave one; a failure costs only the early crash notice."""
    if options.lifeline is None:
        return None
    try:
        lifeline = HeldLifeline(Path(options.lifeline))
        lifeline.hold()
    except OSError as exc:
        log.write(f"cannot hold the lifeline {options.lifeline}: {exc}; the parent sees my end from my exit")
        return None
    return lifeline


def main(argv: Sequence[str] | None = None) -> int:
    """Run the child; the return value is the process's exit code."""
    options = parse_args(argv)
    log = ChildLog(options.slot)
    # By the main thread, before hello (the parent watches it from then on), for the whole life.
    lifeline = hold_lifeline(options, log)
    try:
        warmup_s = warm_up().seconds
        import trio  # imported by the warm-up: a cache hit

        try:
            return int(trio.run(run_child, options, log, warmup_s))
        except Exception as exc:  # a bug of ours: say so, and exit FAILED rather than with a bare traceback
            log.exception("the child failed unexpectedly", exc)
            return int(ChildExit.FAILED)
    finally:
        if lifeline is not None:
            lifeline.release()  # a deliberate exit: the parent waits for it, and for our bye


__all__ = ["hold_lifeline", "main", "run_child"]
