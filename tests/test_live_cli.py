"""``python -m node.live`` as a real process: real SIGINT/SIGTERM, --duration, bad configs, replay.

Synchronisation is on the process's own output: a reader thread collects stdout lines and the
test waits (with a timeout) for the milestone it needs before acting; nothing waits on a sleep.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_live_support import INSTRUMENT

from node.live.config import load_node_config_file
from node.persistence.generators import random_walk_quotes
from node.persistence.loaders import write_quotes_csv

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "configs" / "sandbox.toml"

pytestmark = pytest.mark.slow


class NodeProcess:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.live", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(
                    f"no line containing {text!r} within {timeout}s; got {self.lines}"
                ) from None
            if line is None:
                raise AssertionError(f"process ended before printing {text!r}; got {self.lines}")
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        while True:
            line = self._queue.get_nowait() if not self._queue.empty() else None
            if line is None:
                break
            self.lines.append(line)
        return code, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def trio_config(tmp_path) -> Path:
    text = SANDBOX.read_text().replace('backend = "asyncio"', 'backend = "trio"')
    assert 'backend = "trio"' in text
    path = tmp_path / "sandbox_trio.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "data_client"), [("sandbox.toml", "random_walk"), ("sandbox_replay.toml", "replay")]
)
def test_the_shipped_sandbox_configs_are_valid(name, data_client):
    config = load_node_config_file(ROOT / "configs" / name)
    assert config.environment.value == "sandbox"
    assert [s.factory for s in config.data_clients] == [data_client]
    assert [s.factory for s in config.exec_clients] == ["sandbox"]


@pytest.mark.parametrize(
    ("sig", "config"),
    [
        (signal.SIGINT, "asyncio"),
        (signal.SIGTERM, "asyncio"),
        (signal.SIGINT, "trio"),
        (signal.SIGTERM, "trio"),
    ],
    ids=["SIGINT-asyncio", "SIGTERM-asyncio", "SIGINT-trio", "SIGTERM-trio"],
)
def test_signal_stops_and_disposes_cleanly(sig, config, trio_config):
    path = SANDBOX if config == "asyncio" else trio_config
    node = NodeProcess(str(path))
    try:
        node.wait_for("node RUNNING")
        node.proc.send_signal(sig)
        code, stderr = node.finish()
    finally:
        node.kill()
    assert code == 0, stderr
    text = "\n".join(node.lines)
    assert f"node STOPPING (signal {sig.name})" in text
    assert f"node STOPPED (signal {sig.name})" in text
    assert f"node DISPOSED (event loop ({config}, owned by the node): finished and closed" in text
    assert node.lines.index(next(x for x in node.lines if x.startswith("node STOPPED"))) < len(node.lines) - 1


def test_duration_ends_the_run_with_exit_0():
    node = NodeProcess(str(SANDBOX), "--duration", "0.5")
    try:
        code, stderr = node.finish()
    finally:
        node.kill()
    assert code == 0, stderr
    assert "node STOPPED (duration of 0.5 s reached)" in node.lines
    assert node.lines[-1].startswith("node DISPOSED")


def test_bad_config_exits_2_naming_file_key_and_reason(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SANDBOX.read_text().replace("rate = 20.0", "rate = -3"))
    node = NodeProcess(str(bad))
    code, stderr = node.finish()
    assert code == 2
    assert f"error: {bad}: data_clients[0].rate: must be a finite positive number, got -3" in stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(SANDBOX.read_text().replace("[node.queues]", "[node.queues]\nsize = 3"))
    code, stderr = NodeProcess(str(unknown)).finish()
    assert code == 2 and "node.queues.size: unknown key" in stderr


def test_replay_config_plays_a_file_and_stops_by_itself(tmp_path):
    data = tmp_path / "quotes.csv"
    write_quotes_csv(data, random_walk_quotes(INSTRUMENT, 2000, seed=7))
    config = tmp_path / "replay.toml"
    config.write_text(
        f"""
[node]
trader_id = "REPLAY-001"
[[venues]]
name = "SIM"
starting_balances = ["1000000 USD"]
[[instruments]]
id = "EUR/USD.SIM"
[[data_clients]]
type = "replay"
instrument_id = "EUR/USD.SIM"
path = "{data.name}"
speed = 0
stop_when_done = true
[risk]
max_submit_rate = 1000000
[[strategies]]
path = "node.strategies.quote_mean_reversion:QuoteMeanReversion"
[strategies.config]
instrument_id = "EUR/USD.SIM"
trade_size = 100000
window = 20
entry_ticks = 2
"""
    )
    node = NodeProcess(str(config))
    try:
        code, stderr = node.finish()
    finally:
        node.kill()
    assert code == 0, stderr
    assert any(line.startswith("order OrderFilled") for line in node.lines)
    assert any(line.startswith("position PositionClosed") for line in node.lines)
    assert node.lines[-1].startswith("node DISPOSED")


@pytest.mark.parametrize(
    ("sig", "config"),
    [(signal.SIGINT, "asyncio"), (signal.SIGTERM, "trio")],
    ids=["SIGINT-asyncio", "SIGTERM-trio"],
)
def test_a_signal_sent_as_soon_as_the_node_says_starting_stops_it_cleanly(sig, config, trio_config):
    """A supervisor may signal the moment it reads STARTING: the signal must already be the node's."""
    node = NodeProcess(str(SANDBOX if config == "asyncio" else trio_config))
    try:
        node.wait_for("node STARTING")
        node.proc.send_signal(sig)
        code, stderr = node.finish()
    finally:
        node.kill()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert f"node STOPPED (signal {sig.name})" in node.lines
    assert node.lines[-1].startswith("node DISPOSED")


def test_an_unusable_state_store_exits_2_with_one_line_naming_it(tmp_path):
    store = tmp_path / "node.sqlite"
    store.write_bytes(b"this is not a SQLite database, " * 100)
    config = tmp_path / "stateful.toml"
    config.write_text(SANDBOX.read_text() + f'\n[state]\npath = "{store}"\n')
    code, stderr = NodeProcess(str(config)).finish()
    assert code == 2
    assert "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: {config}: the node's state store cannot be used:") and str(store) in line


def test_a_config_that_is_not_utf8_exits_2_in_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[node]\n")
    code, stderr = NodeProcess(str(bad)).finish()
    assert code == 2 and "Traceback" not in stderr
    assert "not valid UTF-8" in stderr
