"""``orchestrator sweep`` end to end: real worker processes, real signals, a real SQLite store.

Each test runs the CLI in a subprocess on a tiny generated data set (3,000 quotes, 50 bars), so
a run takes milliseconds and a sweep about a second. To interrupt or kill something *while a
run is in progress* without guessing at timings, the sweeps here use ``GatedEMACross`` (below):
an EMACross that, when its config says so, writes its worker's pid to a file and then waits
for a gate file before trading (or kills its own process). The tests wait on those files and
on rows in the results store, always with a bounded timeout.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.strategies.ema_cross import EMACross, EMACrossConfig
from orchestrator.sweep.store import NONDETERMINISTIC

ROOT = Path(__file__).resolve().parent.parent
STRATEGY = "tests.test_sweep_cli:GatedEMACross"
FAST = "strategies.0.config.fast_ema_period"
SLOW = "strategies.0.config.slow_ema_period"
GATE = "strategies.0.config.gate"
PID_DIR = "strategies.0.config.pid_dir"
DIE = "strategies.0.config.die"
SAY = "strategies.0.config.say"
WAIT_S = 60.0


# -- the test strategy (imported by the sweep's worker processes) -------------------------------------
class GatedEMACrossConfig(EMACrossConfig):
    FIELDS = (*EMACrossConfig.FIELDS, "gate", "pid_dir", "die", "say")

    def __init__(
        self,
        *,
        instrument_id,
        bar_type,
        trade_size,
        fast_ema_period: int = 10,
        slow_ema_period: int = 20,
        gate: str = "",
        pid_dir: str = "",
        die: bool = False,
        say: str = "",
    ) -> None:
        super().__init__(
            instrument_id=instrument_id,
            bar_type=bar_type,
            trade_size=trade_size,
            fast_ema_period=fast_ema_period,
            slow_ema_period=slow_ema_period,
        )
        self.gate, self.pid_dir, self.die, self.say = gate, pid_dir, die, say


class GatedEMACross(EMACross):
    """On start: print ``say``; note the worker's pid in ``pid_dir``; die if asked; wait for ``gate``."""

    def on_start(self) -> None:
        if self.config.say:
            print(self.config.say)
        if self.config.pid_dir:
            tmp = Path(self.config.pid_dir) / f".{os.getpid()}.tmp"
            tmp.write_text(str(os.getpid()))
            tmp.rename(Path(self.config.pid_dir) / str(os.getpid()))
        if self.config.die:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.config.gate:
            wait_for(lambda: Path(self.config.gate).exists(), "the gate file")
        super().on_start()


# -- helpers --------------------------------------------------------------------------------------------
def wait_for(predicate, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def write_sweep(
    tmp_path: Path,
    grid: dict | None = None,
    runs: list | None = None,
    name="sweep.toml",
    data: Path | None = None,
) -> Path:
    """A sweep file; its data is 3,000 generated quotes, or the CSV file ``data``."""
    source = [f"path = {json.dumps(str(data))}"] if data else ["[data.generator]", "count = 3000", "seed = 7"]
    lines = [
        "[backtest]",
        'log_level = "ERROR"',
        "equity_sample_interval_s = 600",
        "[[venues]]",
        'name = "SIM"',
        'starting_balances = ["1000000 USD"]',
        "[[instruments]]",
        'id = "EUR/USD.SIM"',
        "[[data]]",
        'instrument_id = "EUR/USD.SIM"',
        *source,
        "[[strategies]]",
        f'path = "{STRATEGY}"',
        "[strategies.config]",
        'instrument_id = "EUR/USD.SIM"',
        'bar_type = "EUR/USD.SIM-1-MINUTE-MID-INTERNAL"',
        "trade_size = 100000",
        "fast_ema_period = 3",
        "slow_ema_period = 10",
    ]
    if grid:
        lines.append("[sweep.grid]")
        lines += [f'"{k}" = {_toml(v)}' for k, v in grid.items()]
    for params in runs or []:
        lines.append("[[sweep.runs]]")
        lines += [f'"{k}" = {_toml(v)}' for k, v in params.items()]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "sweep", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def start_cli(tmp_path: Path, *args) -> subprocess.Popen:
    """The CLI in its own session (so its process group can be killed), output to files."""
    out = (tmp_path / "stdout.txt").open("w")
    err = (tmp_path / "stderr.txt").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "sweep", *map(str, args)],
        stdout=out,
        stderr=err,
        cwd=ROOT,
        start_new_session=True,
    )


def read_rows(out_dir: Path, table: str = "runs") -> list[dict]:
    """Rows of the store, read the way any other reader would (read-only, while it is written)."""
    path = out_dir / "results.sqlite"
    if not path.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY run_id")]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return []


def deterministic(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in NONDETERMINISTIC} for row in rows]


def is_dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def pids_in(directory: Path) -> list[int]:
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


@pytest.fixture
def reap():
    """Kill the process groups of CLIs a test started, whatever happens to the test."""
    procs: list[subprocess.Popen] = []
    yield procs.append
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=WAIT_S)


# -- tests ----------------------------------------------------------------------------------------------
def test_help_has_an_example_and_mentions_the_optional_heatmap():
    proc = cli("--help")
    assert proc.returncode == 0
    assert "example:" in proc.stdout
    assert "orchestrator sweep configs/sweep_example.toml" in proc.stdout
    assert "matplotlib" in proc.stdout and "--resume" in proc.stdout and "--recycle-every" in proc.stdout


def test_shipped_example_runs(tmp_path):
    proc = cli(ROOT / "configs" / "sweep_example.toml", "--out", tmp_path / "out", "--workers", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["counts"]["ok"] == 9 and doc["counts"]["total"] == 9
    assert len(doc["ranking"]) == 9
    values = [r["value"] for r in doc["ranking"]]
    assert values == sorted(values, reverse=True)
    assert all(r["stats"]["trades"] > 0 for r in doc["runs"])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert doc["files"]["heatmap"] is None
    else:
        assert Path(doc["files"]["heatmap"]).is_file()


@pytest.mark.parametrize(
    ("grid", "key", "reason"),
    [
        ({"strategies.0.confg.fast_ema_period": [3]}, "confg", "unknown key path"),
        ({FAST: []}, FAST, "is empty"),
        ({FAST: [3, 12]}, "strategies[0].config", "must be less than slow_ema_period"),
    ],
)
def test_invalid_sweep_exits_2_naming_the_key_before_anything_runs(tmp_path, grid, key, reason):
    path = write_sweep(tmp_path, grid)
    proc = cli(path, "--out", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr and key in proc.stderr and reason in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_metric_exits_2(tmp_path):
    proc = cli(write_sweep(tmp_path, {FAST: [3]}), "--out", tmp_path / "out", "--metric", "profit")
    assert proc.returncode == 2 and "unknown metric 'profit'" in proc.stderr


def test_same_sweep_twice_gives_identical_results_whatever_the_workers(tmp_path):
    path = write_sweep(tmp_path, {FAST: [3, 5], SLOW: [10, 12]})
    one = cli(path, "--out", tmp_path / "a", "--workers", "1")
    two = cli(path, "--out", tmp_path / "b", "--workers", "2", "--recycle-every", "1")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    rows_a, rows_b = read_rows(tmp_path / "a"), read_rows(tmp_path / "b")
    assert len(rows_a) == 4 and {r["status"] for r in rows_a} == {"ok"}
    assert deterministic(rows_a) == deterministic(rows_b)
    assert len({r["worker_pid"] for r in rows_a}) == 1  # one worker ran everything
    assert len({r["worker_pid"] for r in rows_b}) == 4  # recycled after every run
    csv_a = (tmp_path / "a" / "results.csv").read_text().splitlines()
    assert csv_a[0].split(",")[:4] == ["run_id", "status", FAST, SLOW]
    assert len(csv_a) == 5
    assert "ranked by sharpe" in one.stdout and "sweep: 4/4 done" in one.stdout
    # results already there: refuse rather than mix two sweeps
    again = cli(path, "--out", tmp_path / "a")
    assert again.returncode == 2 and "--resume" in again.stderr


def test_a_failing_run_is_recorded_and_the_sweep_completes(tmp_path):
    broken = {
        "strategies.0.config.instrument_id": "GBP/USD.SIM",
        "strategies.0.config.bar_type": "GBP/USD.SIM-1-MINUTE-MID-INTERNAL",
    }
    path = write_sweep(tmp_path, {FAST: [3, 4], SAY: ["a stray print"]}, runs=[broken])
    proc = cli(path, "--out", tmp_path / "out", "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)  # a strategy's print goes to stderr, never into the JSON
    assert "a stray print" in proc.stderr
    assert doc["counts"] | {"skipped": 0} == {
        "total": 3,
        "ok": 2,
        "failed": 1,
        "crashed": 0,
        "pending": 0,
        "skipped": 0,
        "retried": 0,
    }
    failed = [r for r in doc["runs"] if r["status"] == "failed"]
    assert len(failed) == 1 and "StrategyStartError" in failed[0]["error"]
    assert failed[0]["params"] == broken
    assert len(doc["ranking"]) == 2
    attempts = read_rows(tmp_path / "out", "attempts")
    assert any("Traceback" in (a["traceback"] or "") for a in attempts)
    csv_lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and sum("StrategyStartError" in line for line in csv_lines) == 1


def test_a_worker_killed_mid_run_is_replaced_and_the_run_retried(tmp_path, reap):
    gate, pid_dir = tmp_path / "gate", tmp_path / "pids"
    pid_dir.mkdir()
    runs = [{FAST: 3}, {FAST: 4, GATE: str(gate), PID_DIR: str(pid_dir)}, {FAST: 5}]
    out = tmp_path / "out"
    proc = start_cli(tmp_path, write_sweep(tmp_path, runs=runs), "--out", out, "--workers", "1")
    reap(proc)
    victim = wait_for(lambda: pids_in(pid_dir), "the gated run to start")[0]
    os.kill(victim, signal.SIGKILL)
    gate.touch()
    assert proc.wait(timeout=WAIT_S) == 0, (tmp_path / "stderr.txt").read_text()
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["ok"] * 3
    gated = next(r for r in rows if json.loads(r["params"]).get(GATE))
    assert gated["attempt"] == 2 and gated["worker_pid"] != victim
    history = read_rows(out, "attempts")
    crash = [a for a in history if a["status"] == "crashed"]
    assert len(crash) == 1 and crash[0]["worker_pid"] == victim and "SIGKILL" in crash[0]["error"]
    assert is_dead(victim)


def test_a_run_that_kills_its_worker_every_time_ends_crashed_after_one_retry(tmp_path):
    path = write_sweep(tmp_path, runs=[{FAST: 3}, {FAST: 4, DIE: True}, {FAST: 5}])
    proc = cli(path, "--out", tmp_path / "out", "--workers", "2", "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["counts"]["ok"] == 2 and doc["counts"]["crashed"] == 1 and doc["counts"]["retried"] == 1
    crashed = next(r for r in doc["runs"] if r["status"] == "crashed")
    assert crashed["attempt"] == 2 and "SIGKILL" in crashed["error"]
    # --resume skips the finished runs and gives the crashed one a fresh set of attempts
    resumed = cli(path, "--out", tmp_path / "out", "--workers", "2", "--resume", "--json")
    assert resumed.returncode == 1, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["counts"]["skipped"] == 2 and again["counts"]["retried"] == 1
    assert next(r for r in again["runs"] if r["status"] == "crashed")["attempt"] == 4


def test_resume_after_kill_9_gives_the_same_table_as_a_clean_run(tmp_path, reap):
    gate = tmp_path / "gate"
    # Half the runs wait for the gate, so the sweep is certain to be mid-way when it is killed.
    path = write_sweep(tmp_path, {FAST: [3, 4, 5], GATE: ["", str(gate)]})
    out = tmp_path / "interrupted"
    proc = start_cli(tmp_path, path, "--out", out, "--workers", "2")
    reap(proc)
    wait_for(lambda: any(r["status"] == "ok" for r in read_rows(out)), "a finished run in the store")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=WAIT_S)
    before = {r["run_id"]: r for r in read_rows(out)}
    assert 1 <= len(before) < 6
    gate.touch()
    resumed = cli(path, "--out", out, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["counts"]["skipped"] == len(before)
    clean = cli(path, "--out", tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    after = read_rows(out)
    assert deterministic(after) == deterministic(read_rows(tmp_path / "clean"))
    assert len(after) == 6
    for row in after:  # finished runs were not run again
        if row["run_id"] in before:
            assert row["worker_pid"] == before[row["run_id"]]["worker_pid"]


def test_workers_die_with_the_parent(tmp_path, reap):
    gate, pid_dir = tmp_path / "gate", tmp_path / "pids"
    pid_dir.mkdir()
    path = write_sweep(tmp_path, runs=[{FAST: 4, GATE: str(gate), PID_DIR: str(pid_dir)}])
    proc = start_cli(tmp_path, path, "--out", tmp_path / "out", "--workers", "1")
    reap(proc)
    worker = wait_for(lambda: pids_in(pid_dir), "the worker to start its run")[0]
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: no cleanup code runs in it
    proc.wait(timeout=WAIT_S)
    wait_for(lambda: is_dead(worker), "the orphaned worker to die")


def test_sigterm_stops_workers_and_leaves_a_consistent_store(tmp_path, reap):
    gate, pid_dir = tmp_path / "gate", tmp_path / "pids"
    pid_dir.mkdir()
    path = write_sweep(tmp_path, runs=[{FAST: 3}, {FAST: 4, GATE: str(gate), PID_DIR: str(pid_dir)}])
    out = tmp_path / "out"
    proc = start_cli(tmp_path, path, "--out", out, "--workers", "2")
    reap(proc)
    worker = wait_for(lambda: pids_in(pid_dir), "the gated run to start")[0]
    wait_for(lambda: read_rows(out), "the other run's row")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=WAIT_S) == 1
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "interrupted by SIGTERM" in stderr and "--resume" in stderr
    assert is_dead(worker)
    con = sqlite3.connect(out / "results.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert [r["status"] for r in read_rows(out)] == ["ok"]
    gate.touch()
    resumed = cli(path, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [r["status"] for r in read_rows(out)] == ["ok", "ok"]
