"""The sweep results store and the files reported from it (in-process, no workers)."""

from __future__ import annotations

import csv
import math
import sqlite3

import pytest

from orchestrator.sweep import report
from orchestrator.sweep.messages import CRASHED, FAILED, OK, Outcome
from orchestrator.sweep.metrics import STAT_NAMES
from orchestrator.sweep.plan import build_plan
from orchestrator.sweep.store import FILENAME, ResultsExistError, ResultsStore, ResultsStoreError

BASE = {"backtest": {}, "strategies": [{"config": {"fast": 1, "slow": 9}}]}
FAST = "strategies.0.config.fast"
SLOW = "strategies.0.config.slow"
STATS = {
    "total_return": 0.01,
    "pnl": 100.0,
    "sharpe": 1.5,
    "max_drawdown": 0.02,
    "trades": 4,
    "win_rate": 0.5,
}


def outcome(run_id, status=OK, attempt=1, **stats):
    return Outcome(
        run_id,
        attempt,
        status,
        {**STATS, **stats} if status == OK else None,
        None if status == OK else f"{status} on purpose",
        None,
        0.01,
        1234,
        20_000,
    )


def test_a_recorded_run_is_durable_and_readable_by_another_connection(tmp_path):
    store = ResultsStore.open(tmp_path, resume=False)
    store.record(outcome("a"), {FAST: 1})
    store.record(outcome("b", FAILED), {FAST: 2})
    # another reader sees both rows while the store is still open (WAL)
    other = sqlite3.connect(tmp_path / FILENAME)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT run_id, status FROM runs ORDER BY run_id").fetchall() == [
        ("a", "ok"),
        ("b", "failed"),
    ]
    other.close()
    assert store.statuses() == {"a": ("ok", 1), "b": ("failed", 1)}
    row = store.rows()[0]
    assert {name: row[name] for name in STAT_NAMES} == STATS
    assert row["params"] == '{"strategies.0.config.fast":1}'
    store.close()


def test_a_retry_replaces_the_run_row_and_keeps_every_attempt(tmp_path):
    store = ResultsStore.open(tmp_path, resume=False)
    store.record(outcome("a", CRASHED, attempt=1), {})
    store.record(outcome("a", OK, attempt=2), {})
    assert store.statuses() == {"a": ("ok", 2)}
    assert [(a["attempt"], a["status"]) for a in store.attempts("a")] == [(1, "crashed"), (2, "ok")]
    store.close()


def test_existing_results_need_resume(tmp_path):
    store = ResultsStore.open(tmp_path, resume=False)
    store.record(outcome("a"), {})
    store.close()
    with pytest.raises(ResultsExistError, match="--resume"):
        ResultsStore.open(tmp_path, resume=False)
    again = ResultsStore.open(tmp_path, resume=True)
    assert again.count() == 1
    again.close()


def test_foreign_files_are_refused(tmp_path):
    (tmp_path / FILENAME).write_bytes(b"this is not a database, just some bytes " * 20)
    with pytest.raises(ResultsStoreError):
        ResultsStore.open(tmp_path, resume=True)
    other = tmp_path / "other"
    other.mkdir()
    con = sqlite3.connect(other / FILENAME)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    con.commit()
    con.close()
    with pytest.raises(ResultsStoreError, match="schema version 99"):
        ResultsStore.open(other, resume=True)


def test_csv_has_one_row_per_finished_run_in_plan_order(tmp_path):
    plan = build_plan(BASE, {FAST: [1, 2, 3], SLOW: [9]}, [{FAST: 4, SLOW: 8}])
    store = ResultsStore.open(tmp_path, resume=False)
    ids = [r.run_id for r in plan.runs]
    store.record(outcome(ids[2], sharpe=3.0), plan.runs[2].params)
    store.record(outcome(ids[0], sharpe=-1.0), plan.runs[0].params)
    store.record(outcome(ids[3], FAILED), plan.runs[3].params)
    store.record(outcome("from-another-sweep"), {})
    rows = report.collect(plan, store.rows())
    store.close()
    path = report.write_csv(tmp_path / "results.csv", rows, plan)
    assert not (tmp_path / "results.csv.tmp").exists()
    with path.open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["run_id"] for r in table] == [ids[0], ids[2], ids[3]]
    assert list(table[0]) == ["run_id", "status", FAST, SLOW, *STAT_NAMES, "elapsed_s", "attempt", "error"]
    assert table[1][FAST] == "3" and table[1]["sharpe"] == "3.0"
    assert (
        table[2]["status"] == "failed"
        and table[2]["sharpe"] == ""
        and table[2]["error"] == "failed on purpose"
    )
    text = report.ranked_table(rows, plan, "sharpe", top=1)
    assert "ranked by sharpe" in text and ids[2] in text and "1 more in results.csv" in text
    assert "1 run(s) did not succeed" in text


def test_json_doc_has_no_nan_and_ranks(tmp_path):
    plan = build_plan(BASE, {FAST: [1, 2]}, [])
    rows = [
        report.RunRow(
            0, plan.runs[0].run_id, plan.runs[0].params, OK, None, {**STATS, "sharpe": math.nan}, 0.1, 1, 1
        ),
        report.RunRow(1, plan.runs[1].run_id, plan.runs[1].params, OK, None, STATS, 0.1, 1, 1),
    ]
    doc = report.json_doc(
        sweep_path="s.toml",
        out_dir=tmp_path,
        metric="sharpe",
        rows=rows,
        plan=plan,
        counts={},
        interrupted_by=None,
        files={"csv": None},
    )
    assert doc["runs"][0]["stats"]["sharpe"] is None
    assert doc["ranking"] == [{"rank": 1, "run_id": plan.runs[1].run_id, "value": 1.5}]
    assert "NaN" not in report.dumps(doc)


def _grid_rows(plan):
    return [
        report.RunRow(r.index, r.run_id, r.params, OK, None, {**STATS, "sharpe": float(r.index)}, 0.1, 1, 1)
        for r in plan.runs
    ]


def test_no_heatmap_unless_the_grid_has_two_parameters(tmp_path):
    from orchestrator.sweep.heatmap import write_heatmap

    plan = build_plan(BASE, {FAST: [1, 2, 3]}, [])
    assert write_heatmap(tmp_path, plan, _grid_rows(plan), "sharpe") is None
    assert list(tmp_path.iterdir()) == []


def test_heatmap_png_for_a_two_parameter_grid(tmp_path):
    pytest.importorskip("matplotlib")
    from orchestrator.sweep.heatmap import write_heatmap

    plan = build_plan(BASE, {FAST: [1, 2, 3], SLOW: [9, 10]}, [{FAST: 5}])
    path = write_heatmap(tmp_path, plan, _grid_rows(plan)[:-2], "sharpe")  # one grid run missing
    assert path == tmp_path / "heatmap_sharpe.png"
    assert path.read_bytes().startswith(b"\x89PNG")


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]  # signature, IHDR length and type, then width and height
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_heatmap_is_skipped_with_a_note_beyond_40_values_on_an_axis(tmp_path):
    from orchestrator.sweep.heatmap import skip_reason, write_heatmap

    plan = build_plan(BASE, {FAST: [9], SLOW: list(range(41))}, [])
    assert skip_reason(plan) == (
        "heatmap skipped: the grid is 1 x 41 values, more than 40 on an axis can be drawn readably; "
        "every value is in results.csv"
    )
    assert write_heatmap(tmp_path, plan, _grid_rows(plan), "sharpe") is None
    assert list(tmp_path.iterdir()) == []
    assert skip_reason(build_plan(BASE, {FAST: [9], SLOW: list(range(40))}, [])) is None


def test_a_large_heatmap_stays_a_readable_size(tmp_path):
    pytest.importorskip("matplotlib")
    from orchestrator.sweep.heatmap import write_heatmap

    plan = build_plan(BASE, {FAST: list(range(30)), SLOW: list(range(40))}, [])
    path = write_heatmap(tmp_path, plan, _grid_rows(plan), "sharpe")
    width, height = _png_size(path)
    assert width <= 1800 and height <= 1400, (width, height)  # was 4,520 x 2,500 px


def test_a_version_1_store_is_upgraded_and_its_runs_kept(tmp_path):
    from orchestrator.sweep.store import ATTEMPT_COLUMNS, RUN_COLUMNS

    con = sqlite3.connect(tmp_path / FILENAME)
    old_runs = [c for c in RUN_COLUMNS if c[0] != "data_digest"]
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute(f"CREATE TABLE runs ({', '.join(f'{n} {t}' for n, t in old_runs)})")
    con.execute(
        f"CREATE TABLE attempts ({', '.join(f'{n} {t}' for n, t in ATTEMPT_COLUMNS)}, PRIMARY KEY (run_id, attempt))"
    )
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.commit()
    con.close()
    store = ResultsStore.open(tmp_path, resume=True)
    store.record(outcome("a"), {FAST: 1}, data_digest="d1")
    assert store.stored() == {"a": ("ok", "d1")}
    store.close()
