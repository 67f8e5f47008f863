"""Reading a sweep TOML file into a validated plan, before any process is started.

A sweep file is a backtest config plus a ``[sweep]`` table::

    base = "backtest_ema_cross.toml"      # or the backtest tables inline, as in a backtest file

    [sweep]
    metric = "sharpe"                     # default ranking metric (--metric overrides)

    [sweep.grid]                          # cartesian product over key paths
    "strategies.0.config.fast_ema_period" = [5, 10, 15]
    "strategies.0.config.slow_ema_period" = [20, 30, 40]

    [[sweep.runs]]                        # and/or explicit parameter sets
    "strategies.0.config.fast_ema_period" = 3
    "strategies.0.config.slow_ema_period" = 50

Keys are quoted dotted paths; an unquoted dotted key (TOML makes nested tables of it) is read
the same way. Why validate every run here, in the parent: a typo or an impossible combination
(fast >= slow) must stop the sweep with the file, the key and the reason before hours of
compute start, not show up as run 731's error. Data paths resolve against the folder of the
file that holds the backtest tables (the base file, or the sweep file when inline).

Why a cap on the number of runs (``MAX_RUNS``, ``--max-runs`` to change it): the runs are
counted before the grid is expanded, so a 1,000,000-run grid (three keys of 100 values) is
refused at once instead of spending minutes and gigabytes on planning what would take days to
run. Planning that does take a while (resolving and checking every run's config, ~0.4 ms each)
reports itself through ``on_progress(stage, done, total)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from node.backtest.config import BacktestRunConfig, ConfigError
from orchestrator.configfile import ConfigFileError, read_toml
from orchestrator.sweep import keypath
from orchestrator.sweep.metrics import DEFAULT_METRIC, UnknownMetricError, check_metric
from orchestrator.sweep.plan import Plan, build_plan, run_count

SWEEP_KEYS = ("grid", "runs", "metric")
MAX_RUNS = 100_000


class SweepConfigError(ConfigError):
    """An unusable sweep file: ``key: reason`` like any config error, plus the ``file``.

    A ConfigError, so the CLI reports it through the one reporter every command uses
    (``error: <file>: <key>: <reason>``, exit 2).
    """

    def __init__(self, file: Path | str, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.file = str(file)


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    base_dir: Path
    base_doc: dict
    metric: str
    plan: Plan


def load_sweep(path: str | Path, max_runs: int = MAX_RUNS, on_progress=None) -> SweepSpec:
    """Read and validate a sweep file. Raises ConfigFileError (unreadable) or SweepConfigError.

    Every error names the sweep file (errors in the base file too: the key is then ``base``).
    """
    path = Path(path)
    doc = read_toml(path)
    sweep = doc.pop("sweep", None)
    if sweep is None:
        raise SweepConfigError(path, "sweep", "is required: add [sweep.grid] and/or [[sweep.runs]]")
    if not isinstance(sweep, dict):
        raise SweepConfigError(path, "sweep", f"must be a table, got {type(sweep).__name__}")
    base_doc, base_dir = _base(path, doc)
    unknown = sorted(set(sweep) - set(SWEEP_KEYS))
    if unknown:
        raise SweepConfigError(
            path, f"sweep.{unknown[0]}", f"unknown key (known keys: {', '.join(SWEEP_KEYS)})"
        )
    metric = sweep.get("metric", DEFAULT_METRIC)
    try:
        check_metric(metric)
    except UnknownMetricError as exc:
        raise SweepConfigError(path, "sweep.metric", str(exc)) from None
    grid = _grid(path, sweep.get("grid", {}))
    explicit = _explicit(path, sweep.get("runs", []))
    if not grid and not explicit:
        raise SweepConfigError(path, "sweep", "has no runs: give [sweep.grid] and/or [[sweep.runs]]")
    for key in grid:
        _check_path(path, base_doc, key, f'sweep.grid."{key}"')
    for i, params in enumerate(explicit):
        for key in params:
            _check_path(path, base_doc, key, f'sweep.runs[{i}]."{key}"')
    count = run_count(grid, explicit)
    if count > max_runs:
        sizes = " x ".join(str(len(v)) for v in grid.values()) or "0"
        extra = f" + {len(explicit)} explicit" if explicit else ""
        raise SweepConfigError(
            path,
            "sweep.grid" if grid else "sweep.runs",
            f"makes {count:,} runs ({sizes}{extra}), more than the limit of {max_runs:,}; "
            "split the sweep into smaller ones, or raise the limit with --max-runs",
        )
    stage = (lambda done, total: on_progress("runs resolved", done, total)) if on_progress else None
    try:
        plan = build_plan(base_doc, grid, explicit, stage)
    except keypath.KeyPathError as exc:  # a path made unreachable by another parameter's value
        raise SweepConfigError(path, exc.path, exc.reason) from None
    _validate_runs(path, plan, base_dir, on_progress)
    return SweepSpec(path, base_dir, base_doc, metric, plan)


def _base(path: Path, doc: dict) -> tuple[dict, Path]:
    if "base" not in doc:
        return doc, path.parent.resolve()
    base = doc.pop("base")
    if not isinstance(base, str) or not base:
        raise SweepConfigError(path, "base", f"must be a path to a backtest TOML file, got {base!r}")
    if doc:
        extra = sorted(doc)[0]
        raise SweepConfigError(
            path,
            extra,
            "a sweep with 'base' takes no backtest tables of its own; vary values with [sweep.grid] "
            "or [[sweep.runs]] (a single-value grid entry fixes a value)",
        )
    base_path = Path(base) if Path(base).is_absolute() else path.parent / base
    if not base_path.is_file():
        raise SweepConfigError(path, "base", f"file not found: {base_path}")
    try:
        base_doc = read_toml(base_path)
    except ConfigFileError as exc:
        raise SweepConfigError(path, "base", str(exc)) from None
    if "sweep" in base_doc:
        raise SweepConfigError(path, "base", f"{base_path} is itself a sweep; point at a backtest config")
    return base_doc, base_path.parent.resolve()


def _flatten(table: dict, prefix: str = "") -> dict:
    """Nested tables from unquoted dotted keys -> ``{"a.b.c": value}``."""
    out = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def _normalised(file: Path, flat: dict, where: str) -> dict:
    out = {}
    for key, value in flat.items():
        try:
            norm = keypath.normalise(key)
        except keypath.KeyPathError as exc:
            raise SweepConfigError(file, f'{where}."{key}"', exc.reason) from None
        if norm in out:
            raise SweepConfigError(file, f'{where}."{key}"', f"is given twice (as {norm!r})")
        out[norm] = value
    return out


def _grid(file: Path, grid) -> dict[str, list]:
    if not isinstance(grid, dict):
        raise SweepConfigError(
            file, "sweep.grid", f"must be a table of key path = [values], got {type(grid).__name__}"
        )
    flat = _normalised(file, _flatten(grid), "sweep.grid")
    for key, values in flat.items():
        if not isinstance(values, list):
            raise SweepConfigError(
                file,
                f'sweep.grid."{key}"',
                f"must be a list of values, got {type(values).__name__} {values!r}",
            )
        if not values:
            raise SweepConfigError(file, f'sweep.grid."{key}"', "is empty: give at least one value")
    return flat


def _explicit(file: Path, runs) -> list[dict]:
    if not isinstance(runs, list):
        raise SweepConfigError(
            file, "sweep.runs", f"must be an array of tables ([[sweep.runs]]), got {type(runs).__name__}"
        )
    out = []
    for i, table in enumerate(runs):
        if not isinstance(table, dict):
            raise SweepConfigError(file, f"sweep.runs[{i}]", f"must be a table, got {type(table).__name__}")
        if not table:
            raise SweepConfigError(file, f"sweep.runs[{i}]", "is empty: set at least one key path")
        out.append(_normalised(file, _flatten(table), f"sweep.runs[{i}]"))
    return out


def _check_path(file: Path, base_doc: dict, key: str, where: str) -> None:
    try:
        keypath.set_value(copy.deepcopy(base_doc), key, None)
    except keypath.KeyPathError as exc:
        raise SweepConfigError(file, where, exc.reason) from None


def _validate_runs(file: Path, plan: Plan, base_dir: Path, on_progress=None) -> None:
    for done, run in enumerate(plan.runs, start=1):
        if on_progress is not None:
            on_progress("runs checked", done, len(plan.runs))
        try:
            BacktestRunConfig.from_dict(run.doc, base_dir=base_dir)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in run.params.items())
            raise SweepConfigError(file, exc.key, f"{exc.reason} (in the {run.source} run {shown})") from None
