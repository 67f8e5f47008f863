"""What a finished (or interrupted) sweep reports: a ranked table, results.csv, one JSON object.

Everything here reads the results store, never the scheduler's memory, so a resumed sweep
reports its earlier runs exactly like the ones it ran just now, and the report of an
interrupted sweep is what a later ``--resume`` would start from. Rows follow the plan's order
(grid order, then explicit runs); runs of an earlier, different sweep that share the output
directory are left out. Ranking puts better first (descending, ascending for drawdown); ties
keep plan order, so the same results always rank the same way.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from orchestrator.sweep.messages import OK
from orchestrator.sweep.metrics import STAT_NAMES, better_first
from orchestrator.sweep.plan import Plan, canonical_json

CSV_NAME = "results.csv"


@dataclass(frozen=True)
class RunRow:
    index: int
    run_id: str
    params: dict
    status: str
    error: str | None
    stats: dict
    elapsed_s: float | None
    attempt: int
    worker_pid: int | None


def collect(plan: Plan, store_rows: list[dict]) -> list[RunRow]:
    """The plan's runs that have a row in the store, in plan order."""
    by_id = {row["run_id"]: row for row in store_rows}
    out = []
    for run in plan.runs:
        row = by_id.get(run.run_id)
        if row is None:
            continue
        out.append(
            RunRow(
                run.index,
                run.run_id,
                run.params,
                row["status"],
                row["error"],
                {name: row[name] for name in STAT_NAMES} if row["status"] == OK else {},
                row["elapsed_s"],
                row["attempt"],
                row["worker_pid"],
            )
        )
    return out


def rank(rows: list[RunRow], metric: str) -> list[RunRow]:
    """Successful runs with a finite metric, best first; ties in plan order."""
    sign = -1.0 if better_first(metric) else 1.0
    usable = [r for r in rows if r.status == OK and _finite(r.stats.get(metric))]
    return sorted(usable, key=lambda r: (sign * r.stats[metric], r.index))


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def short_names(keys) -> dict[str, str]:
    """The shortest dotted suffix of each key path that is unique among ``keys``."""
    keys = list(keys)
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            candidate = ".".join(parts[-n:])
            if sum(1 for k in keys if k == candidate or k.endswith("." + candidate)) == 1:
                out[key] = candidate
                break
        else:
            out[key] = key
    return out


def format_stat(name: str, value) -> str:
    if value is None:
        return ""
    if name in ("total_return", "max_drawdown", "win_rate"):
        return f"{value:.4%}"
    if name == "pnl":
        return f"{value:,.2f}"
    if name == "trades":
        return str(int(value))
    return f"{value:.3f}"


def format_param(value) -> str:
    return value if isinstance(value, str) else canonical_json(value)


def ranked_table(rows: list[RunRow], plan: Plan, metric: str, top: int) -> str:
    ranked = rank(rows, metric)
    names = short_names(plan.param_keys)
    stats = [metric, *(s for s in STAT_NAMES if s != metric)]
    header = ["rank", "run id", *(names[k] for k in plan.param_keys), *stats]
    body = [
        [
            str(i),
            r.run_id,
            *(format_param(r.params[k]) if k in r.params else "" for k in plan.param_keys),
            *(format_stat(s, r.stats.get(s)) for s in stats),
        ]
        for i, r in enumerate(ranked[:top], start=1)
    ]
    widths = [max(len(row[c]) for row in [header, *body]) for c in range(len(header))]
    left = {1}  # the run id reads better left-aligned; numbers right-aligned
    lines = [f"ranked by {metric} ({'higher' if better_first(metric) else 'lower'} is better):"]
    for row in [header, *body]:
        lines.append(
            "  ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    if len(ranked) > top:
        lines.append(f"... {len(ranked) - top} more in {CSV_NAME}")
    if not ranked:
        lines.append("(no successful run to rank)")
    bad = [r for r in rows if r.status != OK]
    if bad:
        lines.append(f"{len(bad)} run(s) did not succeed:")
        for r in bad[:10]:
            shown = ", ".join(f"{names[k]}={format_param(v)}" for k, v in r.params.items())
            lines.append(f"  {r.run_id} [{r.status}, attempt {r.attempt}] {shown}: {r.error}")
        if len(bad) > 10:
            lines.append(f"  ... {len(bad) - 10} more in {CSV_NAME}")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[RunRow], plan: Plan) -> Path:
    """One row per run: id, status, each parameter, each statistic, elapsed, attempt, error.

    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["run_id", "status", *plan.param_keys, *STAT_NAMES, "elapsed_s", "attempt", "error"])
        for r in rows:
            writer.writerow(
                [
                    r.run_id,
                    r.status,
                    *(format_param(r.params[k]) if k in r.params else "" for k in plan.param_keys),
                    *("" if r.stats.get(s) is None else repr(r.stats[s]) for s in STAT_NAMES),
                    "" if r.elapsed_s is None else f"{r.elapsed_s:.6f}",
                    r.attempt,
                    r.error or "",
                ]
            )
    tmp.replace(path)
    return path


def _json_number(value):
    return value if _finite(value) or not isinstance(value, float) else None


def json_doc(*, sweep_path, out_dir, metric, rows, plan, counts, interrupted_by, files) -> dict:
    ranked = rank(rows, metric)
    return {
        "sweep": str(sweep_path),
        "out": str(out_dir),
        "metric": metric,
        "interrupted_by": interrupted_by,
        "counts": counts,
        "runs": [
            {
                "run_id": r.run_id,
                "params": r.params,
                "status": r.status,
                "error": r.error,
                "stats": {k: _json_number(v) for k, v in r.stats.items()},
                "elapsed_s": r.elapsed_s,
                "attempt": r.attempt,
                "worker_pid": r.worker_pid,
            }
            for r in rows
        ],
        "ranking": [
            {"rank": i, "run_id": r.run_id, "value": r.stats[metric]} for i, r in enumerate(ranked, start=1)
        ],
        "files": {k: (str(v) if v is not None else None) for k, v in files.items()},
    }


def dumps(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"), default=str)
