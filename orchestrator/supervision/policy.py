"""Restart policy of one node: restart type, restart intensity and backoff. Pure logic.

The ideas come from OTP supervisors (restart types, "at most N restarts in T seconds") and from
process managers (exponential backoff, reset after a stable run). Nothing here does I/O or reads
a clock: the caller passes ``now`` and the node's uptime, so every decision is reproducible.

What to do with an ending is one table, :data:`DECISIONS` (restart type x exit reason). Only a
RESTART verdict then goes through intensity and backoff, in this order:

1. uptime >= ``stable_after_s`` resets the backoff: the node ran long enough to call it healthy;
2. if ``max_restarts`` restarts already happened within the last ``window_s`` seconds, the node
   FAILs (a restart storm helps nobody, and the event must say why);
3. otherwise restart n (counted since the last reset, from 1) waits 0 for n == 1, then
   ``backoff_initial_s * backoff_multiplier ** (n - 2)``, capped at ``backoff_max_s``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from orchestrator.supervision.exit_reason import ExitReason

__all__ = [
    "DECISIONS",
    "Action",
    "Decision",
    "ExitReason",
    "FaultAction",
    "InvalidDecisionInput",
    "InvalidRestartPolicy",
    "RestartPolicy",
    "RestartTracker",
    "RestartType",
    "Verdict",
]


class InvalidRestartPolicy(ValueError):
    """A restart policy field is out of range or of the wrong kind."""


class InvalidDecisionInput(ValueError):
    """``decide`` was given a time or uptime that cannot be right (negative, NaN, going back)."""


class RestartType(Enum):
    """When a node that ended is restarted."""

    PERMANENT = "permanent"
    """Always (unless we asked it to stop, or its config/fault rules say no)."""
    TRANSIENT = "transient"
    """Only after an abnormal end."""
    TEMPORARY = "temporary"
    """Never."""


class FaultAction(Enum):
    """What to do with a node that ended FAULTED (e.g. on corrupt data)."""

    FAIL = "fail"
    """Do not restart it into the same data: mark it FAILED."""
    RESTART = "restart"
    """Treat it like a crash."""


class Action(Enum):
    """What the supervisor does next with a node that ended."""

    RESTART = "restart"
    STOP = "stop"
    """It is done, and that is fine (state "stopped")."""
    FAIL = "fail"
    """It is done, and that is a failure (state "failed"); the event says why."""


class Verdict(Enum):
    """A cell of the decision table."""

    RESTART = "restart"
    STOP = "stop"
    FAIL = "fail"
    BY_FAULT_ACTION = "by_fault_action"
    """RESTART or FAIL according to ``RestartPolicy.fault_action``."""


_R, _S, _F, _BY_FAULT = Verdict.RESTART, Verdict.STOP, Verdict.FAIL, Verdict.BY_FAULT_ACTION

_COLUMNS = (RestartType.PERMANENT, RestartType.TRANSIENT, RestartType.TEMPORARY)
_ROWS = (
    #  reason                    PERMANENT  TRANSIENT  TEMPORARY
    (ExitReason.CLEAN,           _R,        _S,        _S),
    (ExitReason.STOPPED,         _S,        _S,        _S),
    (ExitReason.STOP_UNCLEAN,    _S,        _S,        _S),
    (ExitReason.ABNORMAL,        _R,        _R,        _F),
    (ExitReason.HUNG,            _R,        _R,        _F),
    (ExitReason.FAULTED,         _BY_FAULT, _BY_FAULT, _F),
    (ExitReason.CONFIG,          _F,        _F,        _F),
)  # fmt: skip
DECISIONS = MappingProxyType(
    {(rtype, reason): verdict for reason, *row in _ROWS for rtype, verdict in zip(_COLUMNS, row, strict=True)}
)
"""(restart type, exit reason) -> verdict. A node we asked to stop is never restarted; a bad
config is never restarted; a temporary node that ended badly is FAILED (not silently "stopped")."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Restart rules of one node, validated at construction.

    ``restart_type`` and ``fault_action`` also accept their string values ("transient",
    "restart") so that a config file can be passed through as is.
    """

    restart_type: RestartType = RestartType.PERMANENT
    max_restarts: int = 5
    window_s: float = 60.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    backoff_multiplier: float = 2.0
    stable_after_s: float = 30.0
    fault_action: FaultAction = FaultAction.FAIL

    def __post_init__(self) -> None:
        object.__setattr__(self, "restart_type", _as_enum(RestartType, "restart_type", self.restart_type))
        object.__setattr__(self, "fault_action", _as_enum(FaultAction, "fault_action", self.fault_action))
        if (
            isinstance(self.max_restarts, bool)
            or not isinstance(self.max_restarts, int)
            or self.max_restarts < 0
        ):
            raise InvalidRestartPolicy(f"max_restarts must be an int >= 0, got {self.max_restarts!r}")
        _check_number("window_s", self.window_s, minimum=0.0, strict=True)
        _check_number("backoff_initial_s", self.backoff_initial_s, minimum=0.0)
        _check_number("backoff_max_s", self.backoff_max_s, minimum=0.0)
        _check_number("backoff_multiplier", self.backoff_multiplier, minimum=1.0)
        _check_number("stable_after_s", self.stable_after_s, minimum=0.0)
        if self.backoff_max_s < self.backoff_initial_s:
            raise InvalidRestartPolicy(
                f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_initial_s ({self.backoff_initial_s})"
            )

    def backoff_s(self, n: int) -> float:
        """Delay before restart number ``n`` (1-based, counted since the last reset)."""
        if n <= 1:
            return 0.0
        # Compare exponents, not powers: a long streak must not overflow a float.
        if self.backoff_initial_s == 0:
            return 0.0
        exponent = n - 2
        if self.backoff_multiplier > 1 and exponent > math.log(
            self.backoff_max_s / self.backoff_initial_s, self.backoff_multiplier
        ):
            return self.backoff_max_s
        return min(self.backoff_max_s, self.backoff_initial_s * self.backoff_multiplier**exponent)


def _as_enum(kind, name: str, value):
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise InvalidRestartPolicy(f"{name} must be one of {choices}, got {value!r}") from None


def _check_number(name: str, value: object, *, minimum: float, strict: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise InvalidRestartPolicy(f"{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a node that ended: the action, how long to wait first, and why."""

    action: Action
    delay_s: float
    why: str


class RestartTracker:
    """The restart history of one node, and the decisions taken from it.

    Keeps the times of recent restarts (for intensity) and the number of restarts since the last
    stable run (for backoff). Only RESTART decisions change it.
    """

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._recent: deque[float] = deque()
        self._streak = 0
        self._total = 0
        self._last_now = -math.inf

    @property
    def total_restarts(self) -> int:
        """Restarts decided over the node's life (shown in status)."""
        return self._total

    def restarts_in_window(self, now: float) -> int:
        """Restarts decided within the last ``window_s`` seconds before ``now``."""
        return sum(1 for t in self._recent if t > now - self.policy.window_s)

    def reset(self) -> None:
        """Forget the history (an operator restarted a FAILED node by hand)."""
        self._recent.clear()
        self._streak = 0

    def decide(self, reason: ExitReason, now: float, uptime_s: float) -> Decision:
        """Decide on a node that ended for ``reason`` at ``now`` after running ``uptime_s`` seconds."""
        self._check_inputs(now, uptime_s)
        policy = self.policy
        kind = policy.restart_type.value
        verdict = DECISIONS[(policy.restart_type, reason)]
        if verdict is Verdict.BY_FAULT_ACTION:
            if policy.fault_action is FaultAction.FAIL:
                return Decision(
                    Action.FAIL,
                    0.0,
                    f"{kind}: faulted and fault_action=fail: not restarted into the same data",
                )
            verdict = Verdict.RESTART
        if verdict is Verdict.STOP:
            return Decision(Action.STOP, 0.0, f"{kind}: {reason.value} end, not restarted")
        if verdict is Verdict.FAIL:
            return Decision(Action.FAIL, 0.0, f"{kind}: {reason.value} end, not restarted")
        return self._restart(reason, now, uptime_s)

    def _check_inputs(self, now: float, uptime_s: float) -> None:
        if not math.isfinite(now) or now < self._last_now:
            raise InvalidDecisionInput(
                f"now must be finite and never go back (last {self._last_now}, got {now})"
            )
        if not math.isfinite(uptime_s) or uptime_s < 0:
            raise InvalidDecisionInput(f"uptime_s must be a finite number >= 0, got {uptime_s}")
        self._last_now = now

    def _restart(self, reason: ExitReason, now: float, uptime_s: float) -> Decision:
        policy = self.policy
        if uptime_s >= policy.stable_after_s:
            self._streak = 0
        while self._recent and self._recent[0] <= now - policy.window_s:
            self._recent.popleft()
        if len(self._recent) >= policy.max_restarts:
            return Decision(
                Action.FAIL,
                0.0,
                f"restart intensity exceeded: {len(self._recent) + 1} restarts in {policy.window_s:g} s "
                f"(max_restarts={policy.max_restarts}); last end was {reason.value}",
            )
        self._recent.append(now)
        self._streak += 1
        self._total += 1
        delay = policy.backoff_s(self._streak)
        return Decision(
            Action.RESTART,
            delay,
            f"{policy.restart_type.value}: restart {self._streak} after {reason.value} end, in {delay:g} s",
        )
