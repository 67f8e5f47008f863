"""Restart policy: the decision table, backoff, stable reset, intensity, fault action, validation.

Pure logic with times passed in: no clock, no sleep.
"""

from __future__ import annotations

import math
import signal

import pytest

from orchestrator.process.exit_status import ExitStatus, signal_name
from orchestrator.supervision.exit_reason import ExitClassification, ExitReason, Intent, classify_exit
from orchestrator.supervision.policy import (
    DECISIONS,
    Action,
    FaultAction,
    InvalidDecisionInput,
    InvalidRestartPolicy,
    RestartPolicy,
    RestartTracker,
    RestartType,
)

P, TR, TE = RestartType.PERMANENT, RestartType.TRANSIENT, RestartType.TEMPORARY
R, S, F = Action.RESTART, Action.STOP, Action.FAIL

# Expected first decision for every restart type x exit reason, written out by hand
# (fault_action at its default, "fail").
EXPECTED = {
    (P, ExitReason.CLEAN): R,
    (TR, ExitReason.CLEAN): S,
    (TE, ExitReason.CLEAN): S,
    (P, ExitReason.STOPPED): S,
    (TR, ExitReason.STOPPED): S,
    (TE, ExitReason.STOPPED): S,
    (P, ExitReason.STOP_UNCLEAN): S,
    (TR, ExitReason.STOP_UNCLEAN): S,
    (TE, ExitReason.STOP_UNCLEAN): S,
    (P, ExitReason.ABNORMAL): R,
    (TR, ExitReason.ABNORMAL): R,
    (TE, ExitReason.ABNORMAL): F,
    (P, ExitReason.HUNG): R,
    (TR, ExitReason.HUNG): R,
    (TE, ExitReason.HUNG): F,
    (P, ExitReason.FAULTED): F,
    (TR, ExitReason.FAULTED): F,
    (TE, ExitReason.FAULTED): F,
    (P, ExitReason.CONFIG): F,
    (TR, ExitReason.CONFIG): F,
    (TE, ExitReason.CONFIG): F,
}


def test_expected_table_covers_every_combination():
    combos = {(t, r) for t in RestartType for r in ExitReason}
    assert set(EXPECTED) == combos
    assert set(DECISIONS) == combos


@pytest.mark.parametrize(("rtype", "reason"), sorted(EXPECTED, key=lambda k: (k[0].value, k[1].value)))
def test_decision_for_every_type_and_reason(rtype, reason):
    decision = RestartTracker(RestartPolicy(restart_type=rtype)).decide(reason, now=100.0, uptime_s=1.0)
    assert decision.action is EXPECTED[(rtype, reason)]
    assert decision.delay_s == 0.0
    assert decision.why


def test_restart_type_accepts_config_strings():
    assert RestartPolicy(restart_type="transient", fault_action="restart").restart_type is TR


def test_backoff_sequence_hand_computed_and_capped():
    policy = RestartPolicy(
        backoff_initial_s=0.1, backoff_multiplier=2, backoff_max_s=1.0, max_restarts=100, stable_after_s=30
    )
    tracker = RestartTracker(policy)
    delays = [tracker.decide(ExitReason.ABNORMAL, now=float(i), uptime_s=0.5).delay_s for i in range(8)]
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert tracker.total_restarts == 8


def test_backoff_with_other_multiplier():
    policy = RestartPolicy(backoff_initial_s=0.5, backoff_multiplier=3, backoff_max_s=10, max_restarts=100)
    assert [policy.backoff_s(n) for n in range(1, 6)] == pytest.approx([0.0, 0.5, 1.5, 4.5, 10.0])


def test_backoff_does_not_overflow_on_a_long_streak():
    assert RestartPolicy(backoff_max_s=10).backoff_s(10**6) == 10.0


def test_backoff_resets_after_a_stable_period():
    policy = RestartPolicy(backoff_initial_s=0.1, stable_after_s=30, max_restarts=100, window_s=60)
    tracker = RestartTracker(policy)
    assert [tracker.decide(ExitReason.ABNORMAL, float(i), 1.0).delay_s for i in range(3)] == pytest.approx(
        [0.0, 0.1, 0.2]
    )
    # Ran exactly stable_after_s: counts as stable, so this restart is immediate again ...
    assert tracker.decide(ExitReason.ABNORMAL, 40.0, 30.0).delay_s == 0.0
    # ... and the backoff starts over.
    assert tracker.decide(ExitReason.ABNORMAL, 41.0, 1.0).delay_s == pytest.approx(0.1)
    # Just short of stable: no reset.
    assert tracker.decide(ExitReason.ABNORMAL, 72.0, 29.999).delay_s == pytest.approx(0.2)


def test_intensity_exceeded_fails_with_the_count_in_the_reason():
    policy = RestartPolicy(max_restarts=5, window_s=60, stable_after_s=30)
    tracker = RestartTracker(policy)
    actions = [tracker.decide(ExitReason.ABNORMAL, 10.0 + i, 0.2).action for i in range(5)]
    assert actions == [R] * 5
    decision = tracker.decide(ExitReason.ABNORMAL, 15.0, 0.2)
    assert decision.action is F
    assert "6 restarts in 60 s" in decision.why
    assert "max_restarts=5" in decision.why
    assert tracker.total_restarts == 5


def test_intensity_window_slides():
    tracker = RestartTracker(RestartPolicy(max_restarts=2, window_s=10, stable_after_s=30))
    assert tracker.decide(ExitReason.HUNG, 0.0, 0.1).action is R
    assert tracker.decide(ExitReason.HUNG, 5.0, 0.1).action is R
    assert tracker.decide(ExitReason.HUNG, 9.9, 0.1).action is F
    assert tracker.restarts_in_window(9.9) == 2
    # At t=10 the restart at t=0 has left the window (restarts in (now - window, now]).
    assert tracker.decide(ExitReason.HUNG, 10.0, 0.1).action is R
    assert tracker.restarts_in_window(10.0) == 2


def test_a_stable_run_does_not_clear_the_intensity_window():
    tracker = RestartTracker(RestartPolicy(max_restarts=1, window_s=100, stable_after_s=1))
    assert tracker.decide(ExitReason.ABNORMAL, 0.0, 5.0).action is R
    assert tracker.decide(ExitReason.ABNORMAL, 50.0, 50.0).action is F


def test_max_restarts_zero_never_restarts():
    decision = RestartTracker(RestartPolicy(max_restarts=0)).decide(ExitReason.ABNORMAL, 0.0, 0.0)
    assert decision.action is F
    assert "1 restarts in 60 s" in decision.why


def test_reset_forgets_history():
    tracker = RestartTracker(RestartPolicy(max_restarts=1))
    tracker.decide(ExitReason.ABNORMAL, 0.0, 0.0)
    assert tracker.decide(ExitReason.ABNORMAL, 1.0, 0.0).action is F
    tracker.reset()
    decision = tracker.decide(ExitReason.ABNORMAL, 2.0, 0.0)
    assert (decision.action, decision.delay_s) == (R, 0.0)


@pytest.mark.parametrize("rtype", [P, TR])
def test_fault_action_fail_does_not_restart_into_the_same_data(rtype):
    decision = RestartTracker(RestartPolicy(restart_type=rtype, fault_action=FaultAction.FAIL)).decide(
        ExitReason.FAULTED, 0.0, 3.0
    )
    assert decision.action is F
    assert "fault_action=fail" in decision.why


@pytest.mark.parametrize("rtype", [P, TR])
def test_fault_action_restart_restarts_with_backoff_and_intensity(rtype):
    tracker = RestartTracker(RestartPolicy(restart_type=rtype, fault_action="restart", max_restarts=2))
    assert [tracker.decide(ExitReason.FAULTED, float(i), 0.0).delay_s for i in range(2)] == pytest.approx(
        [0.0, 0.1]
    )
    assert tracker.decide(ExitReason.FAULTED, 2.0, 0.0).action is F


def test_temporary_is_never_restarted_even_with_fault_action_restart():
    tracker = RestartTracker(RestartPolicy(restart_type=TE, fault_action="restart"))
    assert tracker.decide(ExitReason.FAULTED, 0.0, 0.0).action is F


def test_stop_and_fail_decisions_do_not_count_as_restarts():
    tracker = RestartTracker(RestartPolicy(restart_type=TR, max_restarts=1))
    for i in range(5):
        assert tracker.decide(ExitReason.CLEAN, float(i), 0.0).action is S
        assert tracker.decide(ExitReason.CONFIG, float(i), 0.0).action is F
    assert tracker.total_restarts == 0
    assert tracker.decide(ExitReason.ABNORMAL, 9.0, 0.0).action is R


@pytest.mark.parametrize(
    "kwargs",
    [
        {"restart_type": "sometimes"},
        {"fault_action": "ignore"},
        {"max_restarts": -1},
        {"max_restarts": 1.5},
        {"max_restarts": True},
        {"window_s": 0},
        {"window_s": -1},
        {"window_s": math.inf},
        {"backoff_initial_s": -0.1},
        {"backoff_initial_s": math.nan},
        {"backoff_max_s": 0.05, "backoff_initial_s": 0.1},
        {"backoff_multiplier": 0.5},
        {"stable_after_s": -1},
        {"stable_after_s": "30"},
    ],
)
def test_invalid_policies_are_refused(kwargs):
    with pytest.raises(InvalidRestartPolicy):
        RestartPolicy(**kwargs)


def test_policy_defaults():
    p = RestartPolicy()
    assert (p.restart_type, p.max_restarts, p.window_s, p.fault_action) == (P, 5, 60.0, FaultAction.FAIL)
    assert (p.backoff_initial_s, p.backoff_max_s, p.backoff_multiplier, p.stable_after_s) == (
        0.1,
        10.0,
        2.0,
        30.0,
    )


@pytest.mark.parametrize(("now", "uptime"), [(math.nan, 0.0), (0.0, -1.0), (0.0, math.inf)])
def test_invalid_decision_inputs_are_refused(now, uptime):
    with pytest.raises(InvalidDecisionInput):
        RestartTracker(RestartPolicy()).decide(ExitReason.ABNORMAL, now, uptime)


def test_time_going_back_is_refused():
    tracker = RestartTracker(RestartPolicy())
    tracker.decide(ExitReason.ABNORMAL, 10.0, 0.0)
    with pytest.raises(InvalidDecisionInput):
        tracker.decide(ExitReason.ABNORMAL, 9.0, 0.0)


# --- classification of an ending -------------------------------------------------------------

KILL, SEGV, TERM = -signal.SIGKILL, -signal.SIGSEGV, -signal.SIGTERM


@pytest.mark.parametrize(
    ("returncode", "intent", "reason", "text"),
    [
        (0, Intent.NONE, ExitReason.CLEAN, "exit code 0 (OK)"),
        (1, Intent.NONE, ExitReason.ABNORMAL, "exit code 1 (FAILED)"),
        (2, Intent.NONE, ExitReason.CONFIG, "exit code 2 (CONFIG)"),
        (3, Intent.NONE, ExitReason.FAULTED, "exit code 3 (FAULTED)"),
        (4, Intent.NONE, ExitReason.ABNORMAL, "exit code 4 (PARENT_LOST)"),
        (17, Intent.NONE, ExitReason.ABNORMAL, "exit code 17"),
        (KILL, Intent.NONE, ExitReason.ABNORMAL, "killed by SIGKILL"),
        (SEGV, Intent.NONE, ExitReason.ABNORMAL, "killed by SIGSEGV"),
        (TERM, Intent.NONE, ExitReason.ABNORMAL, "killed by SIGTERM"),
        (0, Intent.STOP, ExitReason.STOPPED, "exit code 0 (OK) after a stop request"),
        (TERM, Intent.STOP, ExitReason.STOP_UNCLEAN, "killed by SIGTERM after a stop request"),
        (KILL, Intent.STOP, ExitReason.STOP_UNCLEAN, "killed by SIGKILL after a stop request"),
        (3, Intent.STOP, ExitReason.STOP_UNCLEAN, "exit code 3 (FAULTED) after a stop request"),
        (KILL, Intent.HANG_KILL, ExitReason.HUNG, "killed by SIGKILL"),
        # It crashed on its own before our SIGKILL landed: say what happened.
        (SEGV, Intent.HANG_KILL, ExitReason.ABNORMAL, "killed by SIGSEGV"),
        (3, Intent.HANG_KILL, ExitReason.FAULTED, "exit code 3 (FAULTED)"),
    ],
)
def test_classify_exit(returncode, intent, reason, text):
    assert classify_exit(ExitStatus(returncode), intent) == ExitClassification(reason, text)


def test_classify_hang_kill_with_note():
    result = classify_exit(ExitStatus(KILL), Intent.HANG_KILL, note="heartbeat missed for 300 ms")
    assert result.reason is ExitReason.HUNG
    assert result.text == "killed by SIGKILL (heartbeat missed for 300 ms)"


def test_only_clean_and_stopped_count_as_clean():
    assert {r for r in ExitReason if r.is_clean} == {ExitReason.CLEAN, ExitReason.STOPPED}


def test_exit_status_parts():
    assert (ExitStatus(3).exit_code, ExitStatus(3).signal) == (3, None)
    assert (ExitStatus(KILL).exit_code, ExitStatus(KILL).signal) == (None, signal.SIGKILL)
    assert signal_name(999) == "signal 999"
