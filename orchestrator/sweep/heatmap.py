"""A heatmap PNG of the ranking metric over a two-parameter grid (when matplotlib is installed).

Why optional: matplotlib is a large dependency that a sweep on a server does not need, so it
lives in the ``plot`` extra (``pip install -e .[plot]``) and without it the heatmap is skipped
without a word (``--help`` says so). It is drawn through ``matplotlib.figure.Figure`` and the
Agg canvas directly, not ``pyplot``, which keeps a process-global registry of figures.

Rows are the first grid key's values, columns the second's, in the order the sweep file gives
them; a cell whose run failed is blank. Colours are arranged so that brighter is always better
(reversed for drawdown, where lower is better).
"""

from __future__ import annotations

import math
from pathlib import Path

from orchestrator.sweep.messages import OK
from orchestrator.sweep.metrics import better_first
from orchestrator.sweep.plan import Plan
from orchestrator.sweep.report import RunRow, format_param, format_stat, short_names


def heatmap_name(metric: str) -> str:
    return f"heatmap_{metric}.png"


def write_heatmap(out_dir: Path, plan: Plan, rows: list[RunRow], metric: str) -> Path | None:
    """The PNG's path, or None when the grid is not two-parameter or matplotlib is missing."""
    if len(plan.grid_keys) != 2:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    ykey, xkey = plan.grid_keys
    grid_runs = [r for r in plan.runs if r.source == "sweep.grid"]
    ys = _ordered(format_param(r.params[ykey]) for r in grid_runs)
    xs = _ordered(format_param(r.params[xkey]) for r in grid_runs)
    by_id = {r.run_id: r for r in rows}
    values = [[math.nan] * len(xs) for _ in ys]
    for run in grid_runs:
        row = by_id.get(run.run_id)
        if row is not None and row.status == OK and row.stats.get(metric) is not None:
            y = ys.index(format_param(run.params[ykey]))
            x = xs.index(format_param(run.params[xkey]))
            values[y][x] = float(row.stats[metric])
    names = short_names(plan.grid_keys)
    fig = Figure(figsize=(1.2 + 1.1 * len(xs), 1.0 + 0.8 * len(ys)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis" if better_first(metric) else "viridis_r", aspect="auto")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(names[xkey])
    ax.set_ylabel(names[ykey])
    ax.set_title(f"{metric} by {names[ykey]} x {names[xkey]}")
    for y, line in enumerate(values):
        for x, value in enumerate(line):
            if not math.isnan(value):
                bright = image.norm(value) > 0.6 if better_first(metric) else image.norm(value) < 0.4
                colour = "black" if bright else "white"
                ax.text(x, y, format_stat(metric, value), ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, label=metric)
    path = Path(out_dir) / heatmap_name(metric)
    fig.savefig(path)
    return path


def _ordered(values) -> list:
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out
