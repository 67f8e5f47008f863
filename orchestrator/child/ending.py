"""How a child's end becomes an exit code and a reason a person can read.

The supervisor decides from the exit code (``orchestrator.process.exit_codes``) and shows the
reason from ``bye``, so both are settled here, in one place:

========================================================  ============  ==========================
what happened                                             code          reason
========================================================  ============  ==========================
the node stopped cleanly (stop command, a signal, a       OK 0          why it stopped
replay that finished, a spare told to stop)
the assigned config is invalid (or names an unknown       CONFIG 2      the key and what is wrong
client type / strategy path)
the node failed on invalid data: its failure, or a        FAULTED 3     the node's failure
cause in the failure's chain, is a
``node.model.errors.InvalidValueError``
start-up failed or timed out, a fatal node error,         FAILED 1      the node's failure
anything unexpected                                                     (start-up step, timeout)
the parent's heartbeat stopped                            PARENT_LOST 4 how long it was silent
========================================================  ============  ==========================

Corrupt market data is fail-fast (DESIGN §2): restarting into the same data would fault again,
which is why FAULTED is distinct from FAILED and the policy may treat it differently.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.backtest.config import ConfigError
from node.live.errors import UnknownClientFactory
from node.model.errors import InvalidValueError
from orchestrator.child import error_codes
from orchestrator.exception_groups import leaves
from orchestrator.process.exit_codes import ChildExit

_CHAIN_LIMIT = 32  # causes followed at most (a cycle in __cause__/__context__ is possible)


@dataclass(frozen=True, slots=True)
class Ending:
    """How the child ends: the exit ``code``, the ``reason`` for ``bye``, and an optional ``error``.

    ``error`` is ``(code, message)`` for an ``error`` message sent before ``bye`` (a refused
    config), or None.
    """

    code: ChildExit
    reason: str
    error: tuple[str, str] | None = None


def caused_by_invalid_data(exc: BaseException | None) -> bool:
    """True if ``exc`` (or one in an exception group it is) or any exception in its cause/context
    chain is an ``InvalidValueError``."""
    if exc is None:
        return False
    for leaf in leaves(exc):
        seen: set[int] = set()
        while leaf is not None and id(leaf) not in seen and len(seen) < _CHAIN_LIMIT:
            if isinstance(leaf, InvalidValueError):
                return True
            seen.add(id(leaf))
            leaf = leaf.__cause__ or leaf.__context__
    return False


def describe(exc: BaseException) -> str:
    """``Type: message`` of what actually failed: a task group's wrapper says nothing of it (a
    full disk under a node's stream task came out as "ExceptionGroup: Exceptions from Trio
    nursery (1 sub-exception)")."""
    return "; ".join(f"{type(e).__name__}: {e}" for e in leaves(exc)[:3])


def is_state_problem(exc: BaseException) -> bool:
    """A build error of the node's durable state (corrupt, locked, unusable) that a restart won't fix."""
    from node.live.recovery import StateRestoreError
    from node.persistence.store.errors import StateStoreError

    return isinstance(exc, StateStoreError | StateRestoreError)


def state_ending(node: str, exc: BaseException) -> Ending:
    """The ending for a node whose state store cannot be used: fail fast, naming the file."""
    message = f"node {node!r}: its durable state cannot be used: {exc}"
    return Ending(ChildExit.CONFIG, message, (error_codes.STATE, message))


def config_ending(node: str, exc: BaseException) -> Ending:
    """The ending for a config the node cannot be built from."""
    message = f"node {node!r}: invalid config: {exc}"
    return Ending(ChildExit.CONFIG, message, (error_codes.CONFIG, message))


def is_config_problem(exc: BaseException) -> bool:
    """A build error that a restart cannot fix: the config itself is wrong."""
    return isinstance(exc, ConfigError | UnknownClientFactory)


def node_ending(node: str, failure: BaseException | None, stop_reason: str) -> Ending:
    """The ending of a node whose ``run_async`` has returned or raised.

    ``failure`` is what it raised (its ``failure``, or an unexpected error), None for a clean stop.
    """
    if failure is None:
        return Ending(ChildExit.OK, f"node {node!r} stopped: {stop_reason or 'no reason given'}")
    what = describe(failure)
    if caused_by_invalid_data(failure):
        return Ending(ChildExit.FAULTED, f"node {node!r} faulted on invalid data: {what}")
    return Ending(ChildExit.FAILED, f"node {node!r} failed: {what}")


__all__ = [
    "Ending",
    "caused_by_invalid_data",
    "config_ending",
    "describe",
    "is_config_problem",
    "node_ending",
]
