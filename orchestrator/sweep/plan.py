"""The runs of a sweep: grid and explicit parameter sets applied to a base config, with ids.

A run's id is a short hash of its *resolved* config (the base with the run's parameters set),
serialised as canonical JSON (sorted keys, no whitespace). Why hash the resolved config rather
than number the runs or hash the parameters: the id must survive edits to the sweep file that
do not change what a run computes (reordering grid keys or values, adding runs, moving a value
from the grid to an explicit run), because ``--resume`` matches finished rows by id. Two
parameter sets that resolve to the same config are the same run and run once.

``backtest.run_id`` is left out of the hash (it is only a label, and each run's is replaced by
its sweep id so a result names the run it came from).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import json
import math
from dataclasses import dataclass

from orchestrator.sweep import keypath

ID_LENGTH = 12  # hex digits: 48 bits, a collision is negligible for any sweep a person runs


@dataclass(frozen=True)
class Run:
    """One backtest of a sweep. ``params`` maps key path -> value in the sweep's key order."""

    index: int
    run_id: str
    params: dict
    doc: dict
    source: str  # "sweep.grid" or "sweep.runs[i]": where an error in it should point


@dataclass(frozen=True)
class Plan:
    runs: tuple[Run, ...]
    param_keys: tuple[str, ...]  # every varied key path, grid keys first, in file order
    grid_keys: tuple[str, ...]
    duplicates: int  # parameter sets that resolved to a config already in the plan


def canonical_json(value) -> str:
    """One spelling per value: sorted keys, no spaces, TOML dates as ISO strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value):
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} {value!r} in a sweep config")


def run_id_for(doc: dict) -> str:
    hashed = copy.deepcopy(doc)
    backtest = hashed.get("backtest")
    if isinstance(backtest, dict):
        backtest.pop("run_id", None)
    return hashlib.sha256(canonical_json(hashed).encode()).hexdigest()[:ID_LENGTH]


def expand_grid(grid: dict[str, list]) -> list[dict]:
    """The cartesian product, first key varying slowest: ``{a: [1, 2], b: [3]}`` -> 2 dicts."""
    if not grid:
        return []
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def resolve(base_doc: dict, params: dict) -> dict:
    """A deep copy of ``base_doc`` with each parameter set at its key path."""
    doc = copy.deepcopy(base_doc)
    for path, value in params.items():
        keypath.set_value(doc, path, copy.deepcopy(value))
    return doc


def run_count(grid: dict[str, list], explicit: list[dict]) -> int:
    """How many parameter sets ``build_plan`` would expand, counted without expanding them."""
    return (math.prod(len(v) for v in grid.values()) if grid else 0) + len(explicit)


def build_plan(base_doc: dict, grid: dict[str, list], explicit: list[dict], on_progress=None) -> Plan:
    """Grid runs first (product order), then the explicit runs; duplicates merged.

    ``on_progress(done, total)`` is called after each parameter set. Raises KeyPathError for a
    path that does not lead anywhere in the base config.
    """
    sets = [("sweep.grid", p) for p in expand_grid(grid)]
    sets += [(f"sweep.runs[{i}]", p) for i, p in enumerate(explicit)]
    runs: list[Run] = []
    seen: set[str] = set()
    duplicates = 0
    for done, (source, params) in enumerate(sets, start=1):
        if on_progress is not None:
            on_progress(done, len(sets))
        doc = resolve(base_doc, params)
        run_id = run_id_for(doc)
        if run_id in seen:
            duplicates += 1
            continue
        seen.add(run_id)
        backtest = doc.setdefault("backtest", {})
        if isinstance(backtest, dict):
            backtest["run_id"] = run_id
        runs.append(Run(len(runs), run_id, dict(params), doc, source))
    param_keys = list(grid)
    for params in explicit:
        param_keys += [k for k in params if k not in param_keys]
    return Plan(tuple(runs), tuple(param_keys), tuple(grid), duplicates)
