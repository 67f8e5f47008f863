"""How a node ended, in the terms the restart policy decides on.

The same exit status means different things depending on what the supervisor had asked: a
SIGKILL we sent because the heartbeat was missing is a hang; a SIGKILL we sent to finish a stop
is part of stopping; a SIGKILL from someone else is a crash. So the classification takes the
exit status *and* the supervisor's :class:`Intent`, and keeps the code/signal as readable text
("killed by SIGKILL (heartbeat missed for 300 ms)", "exit code 3 (FAULTED)") for events and status.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from orchestrator.process import exit_codes
from orchestrator.process.exit_status import ExitStatus


class Intent(Enum):
    """What the supervisor had asked of the node before it ended."""

    NONE = "none"
    """Nothing: the node ended on its own."""
    STOP = "stop"
    """We asked it to stop (protocol stop, possibly escalated to SIGTERM/SIGKILL)."""
    HANG_KILL = "hang_kill"
    """We sent SIGKILL because its heartbeat was missing."""


class ExitReason(Enum):
    """How a node ended, as far as restarting it is concerned."""

    CLEAN = "clean"
    """Exit 0 without being asked to stop: the node finished by itself."""
    STOPPED = "stopped"
    """Exit 0 after we asked it to stop."""
    STOP_UNCLEAN = "stop_unclean"
    """We asked it to stop, but it needed a signal to end, or ended with a non-zero code."""
    ABNORMAL = "abnormal"
    """A crash: a non-zero exit code not listed below, or a signal we did not send."""
    FAULTED = "faulted"
    """The node reported FAULTED (e.g. corrupt data), exit code ``FAULTED``."""
    CONFIG = "config"
    """The node could not be built from its config, exit code ``CONFIG``: restarting won't help."""
    HUNG = "hung"
    """We SIGKILLed it after a missed heartbeat."""

    @property
    def is_clean(self) -> bool:
        """True for the endings that count as a clean stop (orchestrator exit status 0)."""
        return self in (ExitReason.CLEAN, ExitReason.STOPPED)


_BY_EXIT_CODE = MappingProxyType(
    {
        exit_codes.OK: ExitReason.CLEAN,
        exit_codes.CONFIG: ExitReason.CONFIG,
        exit_codes.FAULTED: ExitReason.FAULTED,
    }
)
"""Exit code -> reason when nothing was asked; any other code or a signal is ABNORMAL."""


@dataclass(frozen=True, slots=True)
class ExitClassification:
    """An ending: the reason the policy decides on, and the text shown to people."""

    reason: ExitReason
    text: str


def classify_exit(
    status: ExitStatus, intent: Intent = Intent.NONE, note: str | None = None
) -> ExitClassification:
    """Map an exit status and what we had asked for to an :class:`ExitReason` and a reason text.

    ``note`` is appended in parentheses, e.g. ``"heartbeat missed for 300 ms"``.
    """
    if intent is Intent.STOP:
        reason = ExitReason.STOPPED if status.exit_code == exit_codes.OK else ExitReason.STOP_UNCLEAN
        text = f"{status.describe()} after a stop request"
    elif intent is Intent.HANG_KILL and status.signal == signal.SIGKILL:
        reason, text = ExitReason.HUNG, status.describe()
    elif status.exit_code is not None:
        reason, text = _BY_EXIT_CODE.get(status.exit_code, ExitReason.ABNORMAL), status.describe()
    else:
        reason, text = ExitReason.ABNORMAL, status.describe()
    if note:
        text = f"{text} ({note})"
    return ExitClassification(reason, text)
