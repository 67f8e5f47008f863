"""A heatmap PNG of the ranking metric over a two-parameter grid (when matplotlib is installed).

Why optional: matplotlib is a large dependency that a sweep on a server does not need, so it
lives in the ``plot`` extra (``pip install -e .[plot]``) and without it the heatmap is skipped
without a word (``--help`` says so). It is drawn through ``matplotlib.figure.Figure`` and the
Agg canvas directly, not ``pyplot``, which keeps a process-global registry of figures.

Rows are the first grid key's values, columns the second's, in the order the sweep file gives
them; a cell whose run failed is blank. Colours are arranged so that brighter is always better
(reversed for drawdown, where lower is better).

Why a size limit: the figure grew 1.1 in per column, so a 100 x 100 grid took ~20 s and 3.6 GB
to draw and a 2 x 700 grid made a PNG 77,120 px wide, neither of which anyone can read. A grid
with more than ``MAX_CELLS`` values on either axis gets no heatmap (``skip_reason`` says why,
in one line; the values are all in results.csv); up to that, the figure's cells shrink so that it
stays within ``MAX_INCHES``, and the values are written in the cells only while they fit.
"""

from __future__ import annotations

import math
from pathlib import Path

from orchestrator.sweep.messages import OK
from orchestrator.sweep.metrics import better_first
from orchestrator.sweep.plan import Plan
from orchestrator.sweep.report import CSV_NAME, RunRow, format_param, format_stat, short_names

MAX_CELLS = 40  # values per axis
MAX_INCHES = (16.0, 12.0)  # width, height of the plot area at most (100 dpi: 1600 x 1200 px)
LABEL_CELLS = (15, 25)  # columns, rows up to which each cell shows its value


def heatmap_name(metric: str) -> str:
    return f"heatmap_{metric}.png"


def _axes(plan: Plan) -> tuple[list, list]:
    ykey, xkey = plan.grid_keys
    grid_runs = [r for r in plan.runs if r.source == "sweep.grid"]
    ys = _ordered(format_param(r.params[ykey]) for r in grid_runs)
    xs = _ordered(format_param(r.params[xkey]) for r in grid_runs)
    return ys, xs


def skip_reason(plan: Plan) -> str | None:
    """Why a two-parameter grid gets no heatmap (too many cells to draw or read), or None."""
    if len(plan.grid_keys) != 2:
        return None
    ys, xs = _axes(plan)
    if len(ys) <= MAX_CELLS and len(xs) <= MAX_CELLS:
        return None
    return (
        f"heatmap skipped: the grid is {len(ys)} x {len(xs)} values, more than {MAX_CELLS} on an axis "
        f"can be drawn readably; every value is in {CSV_NAME}"
    )


def write_heatmap(out_dir: Path, plan: Plan, rows: list[RunRow], metric: str) -> Path | None:
    """The PNG's path, or None when the grid is not two-parameter, too large, or matplotlib is missing."""
    if len(plan.grid_keys) != 2 or skip_reason(plan) is not None:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    ykey, xkey = plan.grid_keys
    grid_runs = [r for r in plan.runs if r.source == "sweep.grid"]
    ys, xs = _axes(plan)
    y_at = {v: i for i, v in enumerate(ys)}
    x_at = {v: i for i, v in enumerate(xs)}
    by_id = {r.run_id: r for r in rows}
    values = [[math.nan] * len(xs) for _ in ys]
    for run in grid_runs:
        row = by_id.get(run.run_id)
        if row is not None and row.status == OK and row.stats.get(metric) is not None:
            y = y_at[format_param(run.params[ykey])]
            x = x_at[format_param(run.params[xkey])]
            values[y][x] = float(row.stats[metric])
    names = short_names(plan.grid_keys)
    cell_w = min(1.1, MAX_INCHES[0] / len(xs))
    cell_h = min(0.8, MAX_INCHES[1] / len(ys))
    fig = Figure(figsize=(1.2 + cell_w * len(xs), 1.0 + cell_h * len(ys)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis" if better_first(metric) else "viridis_r", aspect="auto")
    ax.set_xticks(range(len(xs)), xs, fontsize=8 if len(xs) <= LABEL_CELLS[0] else 6)
    ax.set_yticks(range(len(ys)), ys, fontsize=8 if len(ys) <= LABEL_CELLS[1] else 6)
    ax.set_xlabel(names[xkey])
    ax.set_ylabel(names[ykey])
    ax.set_title(f"{metric} by {names[ykey]} x {names[xkey]}")
    labelled = len(xs) <= LABEL_CELLS[0] and len(ys) <= LABEL_CELLS[1]
    for y, line in enumerate(values if labelled else ()):
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
