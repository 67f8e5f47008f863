"""Sweep planning in-process: grid expansion, stable run ids, key paths, config validation."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest

from node.backtest.results import compute_stats
from orchestrator.sweep import keypath
from orchestrator.sweep.metrics import STAT_NAMES
from orchestrator.sweep.plan import build_plan, canonical_json, expand_grid, run_id_for
from orchestrator.sweep.progress import Progress
from orchestrator.sweep.report import RunRow, rank, short_names
from orchestrator.sweep.scheduler import Counts
from orchestrator.sweep.spec import SweepConfigError, load_sweep

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "configs" / "sweep_example.toml"
FAST = "strategies.0.config.fast_ema_period"
SLOW = "strategies.0.config.slow_ema_period"

BASE = {
    "backtest": {"run_id": "base", "log_level": "ERROR"},
    "venues": [{"name": "SIM", "starting_balances": ["1000000 USD"]}],
    "instruments": [{"id": "EUR/USD.SIM"}],
    "data": [{"instrument_id": "EUR/USD.SIM", "generator": {"count": 600, "seed": 1}}],
    "strategies": [
        {
            "path": "node.strategies.ema_cross:EMACross",
            "config": {
                "instrument_id": "EUR/USD.SIM",
                "bar_type": "EUR/USD.SIM-1-MINUTE-MID-INTERNAL",
                "trade_size": 100000,
                "fast_ema_period": 3,
                "slow_ema_period": 10,
            },
        }
    ],
}


# -- grid and ids ------------------------------------------------------------------------------------
def test_grid_is_the_cartesian_product_first_key_slowest():
    combos = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(combos) == 6
    assert combos[:3] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}]
    assert combos[-1] == {"a": 2, "b": "z"}
    assert expand_grid({}) == []


def test_run_id_is_stable_and_ignores_key_order_and_label():
    same = copy.deepcopy(BASE)
    reordered = dict(reversed(list(copy.deepcopy(BASE).items())))
    reordered["strategies"][0]["config"] = dict(reversed(list(reordered["strategies"][0]["config"].items())))
    relabelled = copy.deepcopy(BASE)
    relabelled["backtest"]["run_id"] = "another label"
    ids = {run_id_for(d) for d in (BASE, same, reordered, relabelled)}
    assert len(ids) == 1
    (rid,) = ids
    assert len(rid) == 12 and int(rid, 16) >= 0


def test_different_params_give_different_ids_and_identical_ones_merge():
    plan = build_plan(BASE, {FAST: [3, 4], SLOW: [10, 12]}, [{FAST: 3, SLOW: 10}, {FAST: 5}])
    assert plan.duplicates == 1  # the explicit (3, 10) is the grid's first run
    assert len(plan.runs) == 5
    assert len({r.run_id for r in plan.runs}) == 5
    assert plan.param_keys == (FAST, SLOW)
    assert plan.grid_keys == (FAST, SLOW)
    first = plan.runs[0]
    assert first.params == {FAST: 3, SLOW: 10} and first.source == "sweep.grid"
    assert first.doc["backtest"]["run_id"] == first.run_id
    assert plan.runs[-1].source == "sweep.runs[1]" and plan.runs[-1].params == {FAST: 5}
    # the base is not modified by resolving runs
    assert BASE["strategies"][0]["config"]["fast_ema_period"] == 3
    again = build_plan(BASE, {SLOW: [12, 10], FAST: [4, 3]}, [])
    assert {r.run_id for r in again.runs} == {r.run_id for r in plan.runs[:4]}


def test_int_and_float_values_are_different_configs():
    assert canonical_json({"a": 10}) != canonical_json({"a": 10.0})


# -- key paths ----------------------------------------------------------------------------------------
def test_key_paths_accept_bracket_form_and_name_the_bad_segment():
    assert keypath.normalise("strategies[0].config.x") == "strategies.0.config.x"
    doc = copy.deepcopy(BASE)
    keypath.set_value(doc, "strategies[0].config.fast_ema_period", 7)
    assert doc["strategies"][0]["config"]["fast_ema_period"] == 7
    with pytest.raises(keypath.KeyPathError, match="has no key 'confg'"):
        keypath.set_value(doc, "strategies.0.confg.fast_ema_period", 1)
    with pytest.raises(keypath.KeyPathError, match="1 item"):
        keypath.set_value(doc, "strategies.1.config.fast_ema_period", 1)
    with pytest.raises(keypath.KeyPathError, match="is a value"):
        keypath.set_value(doc, "backtest.run_id.deeper", 1)
    with pytest.raises(keypath.KeyPathError, match="empty segment"):
        keypath.normalise("strategies..config")


# -- sweep files --------------------------------------------------------------------------------------
def test_example_sweep_loads_nine_runs_with_stable_ids():
    first, second = load_sweep(EXAMPLE), load_sweep(EXAMPLE)
    assert len(first.plan.runs) == 9
    assert [r.run_id for r in first.plan.runs] == [r.run_id for r in second.plan.runs]
    assert first.plan.grid_keys == (FAST, SLOW)
    assert first.base_dir == (ROOT / "configs").resolve()
    assert first.metric == "sharpe"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(f'base = "{(ROOT / "configs" / "backtest_ema_cross.toml").as_posix()}"\n' + text)
    return path


def test_unquoted_dotted_keys_read_like_quoted_ones(tmp_path):
    quoted = load_sweep(_write(tmp_path, f'[sweep.grid]\n"{FAST}" = [5, 6]\n'))
    nested = load_sweep(_write(tmp_path, f"[sweep.grid]\n{FAST} = [5, 6]\n"))
    assert [r.run_id for r in quoted.plan.runs] == [r.run_id for r in nested.plan.runs]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[sweep.grid]\n"strategies.0.confg.fast_ema_period" = [5]\n', "confg", "unknown key path"),
        ('[sweep.grid]\n"strategies.3.config.fast_ema_period" = [5]\n', "strategies.3", "1 item"),
        (f'[sweep.grid]\n"{FAST}" = []\n', FAST, "is empty"),
        (f'[sweep.grid]\n"{FAST}" = 5\n', FAST, "must be a list"),
        (f'[sweep.grid]\n"{FAST}" = [5, 25]\n', "strategies[0].config", "must be less than slow_ema_period"),
        ('[sweep.grid]\n"strategies.0.config.fast_ema" = [5]\n', "strategies[0].config", "unknown key"),
        (f'[sweep.grid]\n"{FAST}" = ["five"]\n', "strategies[0].config", "fast_ema_period"),
        ("[sweep]\nmetric = 'profit'\n[sweep.grid]\n", "sweep.metric", "unknown metric"),
        (f'[sweep]\nworkers = 3\n[sweep.grid]\n"{FAST}" = [5]\n', "sweep.workers", "unknown key"),
        ("[sweep]\n", "sweep", "has no runs"),
        ("[[sweep.runs]]\n", "sweep.runs[0]", "is empty"),
    ],
)
def test_invalid_sweeps_name_file_key_and_reason(tmp_path, text, key, reason):
    with pytest.raises(SweepConfigError) as info:
        load_sweep(_write(tmp_path, text))
    assert info.value.file == str(tmp_path / "sweep.toml")
    message = str(info.value)
    assert key in message and reason in message


def test_base_problems_are_reported(tmp_path):
    missing = tmp_path / "a.toml"
    missing.write_text(f'base = "nope.toml"\n[sweep.grid]\n"{FAST}" = [5]\n')
    with pytest.raises(SweepConfigError, match="base: file not found"):
        load_sweep(missing)
    mixed = tmp_path / "b.toml"
    mixed.write_text(
        f'base = "{(ROOT / "configs" / "backtest_ema_cross.toml").as_posix()}"\n'
        f'[backtest]\nrun_id = "x"\n[sweep.grid]\n"{FAST}" = [5]\n'
    )
    with pytest.raises(SweepConfigError, match="takes no backtest tables"):
        load_sweep(mixed)
    plain = tmp_path / "c.toml"
    plain.write_text((ROOT / "configs" / "backtest_ema_cross.toml").read_text())
    with pytest.raises(SweepConfigError, match=r"sweep: is required"):
        load_sweep(plain)


# -- statistics, ranking and progress -----------------------------------------------------------------
def test_stat_names_match_what_a_backtest_computes():
    assert set(STAT_NAMES) == set(compute_stats([], 1.0, [], 1))


def _row(index, sharpe, drawdown, status="ok"):
    stats = {"sharpe": sharpe, "max_drawdown": drawdown} if status == "ok" else {}
    return RunRow(index, f"r{index}", {}, status, None, stats, 0.1, 1, 1)


def test_ranking_is_descending_except_drawdown_and_ties_keep_plan_order():
    rows = [_row(0, 1.0, 0.3), _row(1, 2.0, 0.1), _row(2, 2.0, 0.2), _row(3, None, None, "failed")]
    assert [r.run_id for r in rank(rows, "sharpe")] == ["r1", "r2", "r0"]
    assert [r.run_id for r in rank(rows, "max_drawdown")] == ["r1", "r2", "r0"]
    assert [r.index for r in rank(rows, "max_drawdown")] == [1, 2, 0]


def test_short_names_are_unique_suffixes():
    names = short_names(["strategies.0.config.fast", "strategies.1.config.fast", "risk.bypass"])
    assert names == {
        "strategies.0.config.fast": "0.config.fast",
        "strategies.1.config.fast": "1.config.fast",
        "risk.bypass": "bypass",
    }


def _counts(done, total=10, elapsed=4.0):
    return Counts(total, 0, done, 0, 0, 1, total - done - 1, 0, done, elapsed)


def test_progress_prints_throttled_plain_lines_off_a_terminal():
    now = [0.0]
    out = io.StringIO()
    progress = Progress(out, tty=False, interval_s=2.0, clock=lambda: now[0])
    progress(_counts(0))
    now[0] = 1.0
    progress(_counts(2))  # within the interval: not printed
    now[0] = 2.5
    progress(_counts(4))
    progress(_counts(10))  # the last one always
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith("sweep: ") for line in lines)
    assert "4/10 done" in lines[1] and "ETA 0:00:06" in lines[1] and "running 1" in lines[1]
    assert "\r" not in out.getvalue()


def test_progress_redraws_one_line_on_a_terminal():
    out = io.StringIO()
    progress = Progress(out, tty=True, interval_s=0.0)
    progress(_counts(5))
    progress(_counts(10))
    progress.finish()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "[" + "#" * 24 + "]" in text


# -- big sweeps ----------------------------------------------------------------------------------------
def test_a_sweep_over_the_run_limit_is_refused_before_it_is_expanded(tmp_path):
    values = ", ".join(str(v) for v in range(2, 102))
    path = tmp_path / "huge.toml"
    path.write_text(
        f'base = "{EXAMPLE.parent / "backtest_ema_cross.toml"}"\n[sweep.grid]\n'
        f'"{FAST}" = [{values}]\n"{SLOW}" = [{values}]\n"backtest.equity_sample_interval_s" = [{values}]\n'
    )
    with pytest.raises(
        SweepConfigError, match=r"makes 1,000,000 runs \(100 x 100 x 100\).*--max-runs"
    ) as exc:
        load_sweep(path)  # at once; expanding and checking the million runs took minutes
    assert exc.value.key == "sweep.grid" and "100,000" in exc.value.reason
    with pytest.raises(SweepConfigError, match="makes 9 runs"):
        load_sweep(EXAMPLE, max_runs=8)
    assert len(load_sweep(EXAMPLE, max_runs=9).plan.runs) == 9


def test_planning_notice_is_silent_when_quick_then_throttled():
    from orchestrator.sweep.progress import PlanningNotice

    now = [0.0]
    out = io.StringIO()
    notice = PlanningNotice(out, after_s=0.5, interval_s=2.0, clock=lambda: now[0])
    notice("runs resolved", 1, 100)  # quick so far: nothing
    now[0] = 0.6
    notice("runs resolved", 40, 100)
    now[0] = 1.0
    notice("runs resolved", 60, 100)  # within the interval
    notice("runs resolved", 100, 100)  # a stage's end always
    assert out.getvalue().splitlines() == [
        "sweep: planning: 40/100 runs resolved",
        "sweep: planning: 100/100 runs resolved",
    ]
