"""``sweep --resume`` against the store it finds: changed data, failed runs, another sweep's runs.

Real CLI processes on a tiny CSV (400 quotes): a sweep of two runs takes about a second, a
resume with nothing left to run about half that.
"""

from __future__ import annotations

import json

from tests.test_sweep_cli import FAST, cli, read_rows, write_sweep


def write_quotes(path, nan_row: int | None = None) -> None:
    lines = ["timestamp,bid,ask"]
    for i in range(400):
        bid = 1.1 + 0.0001 * ((i * 7) % 23 - 11)
        lines.append(f"{1704067200000000000 + i * 10_000_000_000},{bid:.5f},{bid + 0.0002:.5f}")
    if nan_row is not None:
        ts = lines[nan_row].split(",")[0]
        lines[nan_row] = f"{ts},nan,nan"
    path.write_text("\n".join(lines) + "\n")


def test_resume_refuses_runs_made_on_changed_data_until_told_to_discard_them(tmp_path):
    data, out = tmp_path / "quotes.csv", tmp_path / "out"
    write_quotes(data)
    sweep = write_sweep(tmp_path, {FAST: [3, 4]}, data=data)
    assert cli(sweep, "--out", out, "--workers", "2").returncode == 0
    first = read_rows(out)
    # Same contents, new mtime: not a change.
    data.write_text(data.read_text())
    same = cli(sweep, "--out", out, "--resume", "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["resume"]["kept"] == 2
    # One digit changed, same size: the stored results are stale.
    text = data.read_text()
    data.write_text(text.replace("1.10010", "1.10011", 1))
    assert data.read_text() != text and len(data.read_text()) == len(text)
    refused = cli(sweep, "--out", out, "--resume")
    assert refused.returncode == 2, refused.stderr
    assert "2 stored run(s) were made on data that has changed" in refused.stderr
    assert str(data) in refused.stderr and "--out" in refused.stderr and "--discard-stale" in refused.stderr
    assert read_rows(out) == first  # nothing ran, nothing was touched
    rerun = cli(sweep, "--out", out, "--resume", "--discard-stale", "--json")
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    assert doc["resume"]["discarded_stale"] == 2 and doc["counts"]["ok"] == 2
    assert len(read_rows(out, "attempts")) == 4  # each run twice on record


def test_resume_runs_failed_runs_again_and_counts_stored_runs_not_in_the_sweep(tmp_path):
    data, out = tmp_path / "quotes.csv", tmp_path / "out"
    write_quotes(data, nan_row=50)
    broken = cli(write_sweep(tmp_path, {FAST: [3, 4]}, data=data), "--out", out, "--workers", "2")
    assert broken.returncode == 1, broken.stderr
    assert [r["status"] for r in read_rows(out)] == ["failed", "failed"]
    write_quotes(data)  # the NaN fixed
    sweep = write_sweep(tmp_path, {FAST: [3, 5]}, data=data)  # and the grid edited: 4 -> 5
    resumed = cli(sweep, "--out", out, "--resume", "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 failed run(s) will run again" in resumed.stdout
    assert "1 stored run(s) are not part of this sweep" in resumed.stdout
    statuses = sorted((json.loads(r["params"])[FAST], r["status"]) for r in read_rows(out))
    assert statuses == [(3, "ok"), (4, "failed"), (5, "ok")]


def test_resume_with_nothing_to_resume_exits_2(tmp_path):
    out = tmp_path / "missing"
    proc = cli(write_sweep(tmp_path, {FAST: [3]}), "--out", out, "--resume")
    assert proc.returncode == 2, proc.stderr
    assert f"nothing to resume in {out}" in proc.stderr and "without --resume" in proc.stderr
    assert not out.exists()
