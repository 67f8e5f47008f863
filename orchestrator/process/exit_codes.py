"""Exit codes of a node's child process, in one place.

A child ends with one of these codes so that the supervisor can tell *why* it ended without
parsing logs: a node that FAULTED on corrupt data must not be treated like a crash (restarting it
into the same data would only fault again), and a bad config will not get better by restarting.

These are the child's codes; the CLI's own exit statuses live in ``orchestrator.exit_codes``.
Codes not listed here (anything a library or the interpreter may produce) are "unknown" and are
classified as an abnormal end.
"""

from __future__ import annotations

from enum import IntEnum


class ChildExit(IntEnum):
    """Why a child process ended, as it tells the parent through its exit code."""

    OK = 0
    """Stopped cleanly (asked to stop, or finished its work)."""
    FAILED = 1
    """Unhandled error (Python's own exit code for an uncaught exception)."""
    CONFIG = 2
    """Bad config: the node could not be built from what it was assigned."""
    FAULTED = 3
    """The node reached FAULTED (e.g. corrupt data) and stopped itself."""
    PARENT_LOST = 4
    """The parent's heartbeat stopped, or the parent was already gone at start-up."""


OK = ChildExit.OK
FAILED = ChildExit.FAILED
CONFIG = ChildExit.CONFIG
FAULTED = ChildExit.FAULTED
PARENT_LOST = ChildExit.PARENT_LOST


def exit_code_name(code: int) -> str | None:
    """The name used in reasons for ``code`` ("FAULTED"), or None for a code we do not define."""
    try:
        return ChildExit(code).name
    except ValueError:
        return None
