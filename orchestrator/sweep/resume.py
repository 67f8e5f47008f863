"""What ``--resume`` does with the runs already in the store, decided before anything runs.

Why a separate step: the scheduler only knows "this run has an ok row, skip it". Which rows
may be kept is a question about the store as a whole: a row made on data that has changed
since (``fingerprint``) must not be ranked with rows made on the current data, so a resume
with such rows stops, and says how to go on, unless ``--discard-stale`` asks for them to be
run again; a failed run is run again (the cause may be fixed: a NaN in the data, a strategy
bug); and rows of runs that are no longer in the sweep (its base or grid was edited) are left
in the store but counted, so that nobody wonders where they went.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.sweep.messages import CRASHED, FAILED, OK


@dataclass(frozen=True)
class ResumeState:
    kept: int  # ok runs whose data is unchanged: not run again
    failed: int  # failed runs: run again
    crashed: int  # crashed runs: retried
    stale: tuple[str, ...]  # ok runs whose stored row was made on other data
    unverified: int  # ok rows from a version 1 store: no data digest to compare
    not_in_sweep: int  # rows of runs that this sweep no longer has


def assess(digests: dict[str, str], stored: dict[str, tuple[str, str | None]]) -> ResumeState:
    """``digests``: run id -> current data digest, for each run of the plan; ``stored``: the store."""
    kept = failed = crashed = unverified = 0
    stale = []
    for run_id, digest in digests.items():
        if run_id not in stored:
            continue
        status, was = stored[run_id]
        if status == OK and was is None:
            unverified += 1
        elif status == OK and was != digest:
            stale.append(run_id)  # a failed or crashed run runs again anyway: never stale
            continue
        if status == OK:
            kept += 1
        elif status == FAILED:
            failed += 1
        elif status == CRASHED:
            crashed += 1
    foreign = sum(1 for run_id in stored if run_id not in digests)
    return ResumeState(kept, failed, crashed, tuple(stale), unverified, foreign)


def changed_files(current: dict[str, tuple], recorded: dict[str, tuple]) -> list[str]:
    """Data files whose contents differ from the fingerprint the store recorded for them."""
    return sorted(p for p, fp in current.items() if p in recorded and recorded[p][2] != fp[2])


def stale_error(out_dir, state: ResumeState, files: list[str]) -> str:
    which = f" ({', '.join(files)})" if files else ""
    return (
        f"{out_dir}: {len(state.stale)} stored run(s) were made on data that has changed since{which}; "
        "resuming would rank old and new results together. Start a fresh sweep with another --out, "
        "or add --discard-stale to run those runs again on the current data"
    )


def describe(state: ResumeState, discarded: int) -> str:
    """The one line a resumed sweep prints before it starts."""
    parts = [f"{state.kept} ok run(s) kept"]
    if state.failed:
        parts.append(f"{state.failed} failed run(s) will run again")
    if state.crashed:
        parts.append(f"{state.crashed} crashed run(s) will be retried")
    if discarded:
        parts.append(f"{discarded} run(s) made on changed data discarded, will run again")
    if state.not_in_sweep:
        parts.append(
            f"{state.not_in_sweep} stored run(s) are not part of this sweep (its base or grid changed; "
            "they stay in the store, not in the table)"
        )
    if state.unverified:
        parts.append(f"{state.unverified} run(s) predate data fingerprints: their data cannot be checked")
    return "resuming: " + "; ".join(parts)


def as_json(state: ResumeState, discarded: int) -> dict:
    return {
        "kept": state.kept,
        "rerun_failed": state.failed,
        "retried_crashed": state.crashed,
        "discarded_stale": discarded,
        "not_in_sweep": state.not_in_sweep,
        "unverified": state.unverified,
    }
