"""Fleet config validation (``orchestrator validate``) and docs/configuration.md kept in step.

The invalid configs are table-driven: each case is a fleet file that must be refused with exit
status 2 and a message naming the key path. They run the CLI's ``main`` in-process (the same
code a subprocess would run, without paying an interpreter start per case); one case also runs
as a real subprocess.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from node.backtest.config import ConfigError
from orchestrator import cli
from orchestrator.fleet import loader
from orchestrator.fleet.loader import fleet_from_dict
from orchestrator.fleet.state_dir import default_state_dir
from orchestrator.supervision.policy import RestartPolicy
from tests.fleet_support import fast_node_doc
from tests.test_orchestrator_process import _toml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "configuration.md"

NODE = 'id = "n0"\nconfig = "n0.toml"\n'
GOOD = "[orchestrator]\nspares = 1\n[[nodes]]\n" + NODE

# (name, fleet file text, text the error must contain)
CASES = [
    ("unknown top-level key", GOOD + "\n", None),  # placeholder replaced below
    ("unknown orchestrator key", "[orchestrator]\nbogus = 1\n[[nodes]]\n" + NODE, "orchestrator.bogus"),
    ("orchestrator not a table", "orchestrator = 3\n", "orchestrator"),
    (
        "heartbeat interval a string",
        '[orchestrator]\nheartbeat_interval_s = "fast"\n',
        "orchestrator.heartbeat_interval_s",
    ),
    (
        "heartbeat interval negative",
        "[orchestrator]\nheartbeat_interval_s = -1\n",
        "orchestrator.heartbeat_interval_s",
    ),
    (
        "heartbeat timeout below interval",
        "[orchestrator]\nheartbeat_interval_s = 1.0\nheartbeat_timeout_s = 0.5\n",
        "heartbeat_timeout_s",
    ),
    ("spares negative", "[orchestrator]\nspares = -1\n", "spares"),
    ("node state unknown", '[orchestrator]\nnode_state = "fast"\n', "orchestrator.node_state"),
    ("spares a float", "[orchestrator]\nspares = 1.5\n", "orchestrator.spares"),
    ("stop timeout zero", "[orchestrator]\nstop_timeout_s = 0\n", "orchestrator.stop_timeout_s"),
    (
        "startup timeout a bool",
        "[orchestrator]\nstartup_timeout_s = true\n",
        "orchestrator.startup_timeout_s",
    ),
    ("log max bytes zero", "[orchestrator]\nlog_max_bytes = 0\n", "orchestrator.log_max_bytes"),
    ("log max bytes a string", '[orchestrator]\nlog_max_bytes = "10M"\n', "orchestrator.log_max_bytes"),
    ("log backups negative", "[orchestrator]\nlog_backups = -2\n", "orchestrator.log_backups"),
    ("log backups a float", "[orchestrator]\nlog_backups = 2.5\n", "orchestrator.log_backups"),
    ("runtime dir a number", "[orchestrator]\nruntime_dir = 5\n", "orchestrator.runtime_dir"),
    ("state dir a number", "[orchestrator]\nstate_dir = 5\n", "orchestrator.state_dir"),
    ("nodes not an array", 'nodes = "n0"\n', "nodes"),
    ("node id missing", '[[nodes]]\nconfig = "n0.toml"\n', "nodes[0].id"),
    ("node id a number", '[[nodes]]\nid = 5\nconfig = "n0.toml"\n', "nodes[0].id"),
    ("node id with whitespace", '[[nodes]]\nid = "my node"\nconfig = "n0.toml"\n', "nodes[0].id"),
    ("node id with a slash", '[[nodes]]\nid = "a/b"\nconfig = "n0.toml"\n', "nodes[0].id"),
    ("duplicate node ids", "[[nodes]]\n" + NODE + "[[nodes]]\n" + NODE, "nodes[1].id"),
    ("autostart a string", "[[nodes]]\n" + NODE + 'autostart = "yes"\n', "nodes[0].autostart"),
    ("missing node config file", '[[nodes]]\nid = "n0"\nconfig = "missing.toml"\n', "nodes[0].config"),
    ("node config not TOML", '[[nodes]]\nid = "n0"\nconfig = "broken.toml"\n', "nodes[0].config"),
    ("config and inline both", "[[nodes]]\n" + NODE + "[nodes.node]\ntrader_id = 'X'\n", "nodes[0].node"),
    ("restart not a table", "[[nodes]]\n" + NODE + "restart = 3\n", "nodes[0].restart"),
    ("restart unknown key", "[[nodes]]\n" + NODE + "[nodes.restart]\nbogus = 1\n", "nodes[0].restart.bogus"),
    (
        "restart type unknown",
        "[[nodes]]\n" + NODE + '[nodes.restart]\ntype = "sometimes"\n',
        "nodes[0].restart",
    ),
    ("max restarts negative", "[[nodes]]\n" + NODE + "[nodes.restart]\nmax_restarts = -1\n", "max_restarts"),
    ("restart window zero", "[[nodes]]\n" + NODE + "[nodes.restart]\nwindow_s = 0\n", "window_s"),
    (
        "backoff max below initial",
        "[[nodes]]\n" + NODE + "[nodes.restart]\nbackoff_initial_s = 5\nbackoff_max_s = 1\n",
        "backoff_max_s",
    ),
    (
        "backoff multiplier below 1",
        "[[nodes]]\n" + NODE + "[nodes.restart]\nbackoff_multiplier = 0.5\n",
        "backoff_multiplier",
    ),
    (
        "fault action unknown",
        "[[nodes]]\n" + NODE + '[nodes.restart]\nfault_action = "shrug"\n',
        "nodes[0].restart",
    ),
    ("bad strategy import path (inline)", None, "nodes[0].strategies[0].path"),
    (
        "bad strategy import path (file)",
        '[[nodes]]\nid = "n0"\nconfig = "badpath.toml"\n',
        "nodes[0].config -> strategies[0].path",
    ),
    ("unknown inline node key", None, "nodes[0].node.bogus"),
    ("bad log level (inline)", None, "nodes[0].node.log_level"),
    ("fleet file not TOML", "[orchestrator\n", "not valid TOML"),
]
CASES[0] = ("unknown top-level key", "extra = 1\n" + GOOD, "extra")


def _inline(**node_table) -> str:
    doc = fast_node_doc(1)
    doc["node"].update(node_table)
    return _fleet_inline(doc)


def _fleet_inline(doc: dict) -> str:
    body = _toml(doc)
    body = re.sub(r"^\[\[", "[[nodes.", body, flags=re.M)
    body = re.sub(r"^\[(?!\[)", "[nodes.", body, flags=re.M)
    return '[[nodes]]\nid = "n0"\n' + body


def _case_text(name: str, text: str | None) -> str:
    if text is not None:
        return text
    if name == "bad strategy import path (inline)":
        doc = fast_node_doc(1)
        doc["strategies"][0]["path"] = "node.strategies.nope:Missing"
        return _fleet_inline(doc)
    if name == "unknown inline node key":
        return _inline(bogus=1)
    if name == "bad log level (inline)":
        return _inline(log_level="LOUD")
    raise AssertionError(name)


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "n0.toml").write_text(_toml(fast_node_doc(1)))
    (tmp_path / "broken.toml").write_text("[node\n")
    bad = fast_node_doc(1)
    bad["strategies"][0]["path"] = "no_such_module:Strategy"
    (tmp_path / "badpath.toml").write_text(_toml(bad))
    return tmp_path


def test_there_are_at_least_20_kinds_of_invalid_config():
    assert len({name for name, _, _ in CASES}) >= 20


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_fleet_config_exits_2_naming_the_key(fleet_dir, capsys, name, text, expected):
    path = fleet_dir / "fleet.toml"
    path.write_text(_case_text(name, text))
    code = cli.main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(path) in err, err
    assert expected in err, err


def test_valid_fleet_files_pass(fleet_dir, capsys):
    path = fleet_dir / "fleet.toml"
    path.write_text(GOOD)
    assert cli.main(["validate", str(path)]) == 0
    assert cli.main(["validate", str(ROOT / "configs" / "example.toml")]) == 0
    path.write_text(_inline())
    assert cli.main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and f"state dir {default_state_dir()}" in out  # where the journals go


def test_validate_in_a_subprocess_starts_nothing(fleet_dir, tmp_path):
    runtime = tmp_path / "never-created"
    path = fleet_dir / "fleet.toml"
    path.write_text(f'[orchestrator]\nruntime_dir = "{runtime}"\nspares = -3\n')
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "orchestrator" in proc.stderr and "spares" in proc.stderr
    assert not runtime.exists()


# -- docs/configuration.md is checked against the loader ------------------------------------------


def _documented() -> dict[str, str]:
    """``key -> default`` from the docs' tables (the first and third columns)."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]  # '\|' inside a cell is text
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def _known_keys(doc: dict, tmp_path: Path) -> set[str]:
    """The keys the loader accepts at one level, from its own 'unknown key' message."""
    with pytest.raises(ConfigError) as info:
        fleet_from_dict(doc, tmp_path)
    m = re.search(r"known keys: ([^)]*)\)", info.value.reason)
    assert m, info.value
    return set(m.group(1).split(", "))


def test_docs_list_exactly_the_orchestrator_keys_with_their_defaults(tmp_path):
    documented = {k.split(".", 1)[1]: v for k, v in _documented().items() if k.startswith("orchestrator.")}
    assert set(documented) == _known_keys({"orchestrator": {"zz_unknown": 1}}, tmp_path)
    defaults = fleet_from_dict({}, tmp_path)
    for key, text in documented.items():
        if key == "runtime_dir":
            assert "XDG_RUNTIME_DIR" in text
            continue
        if key == "state_dir":
            assert "XDG_STATE_HOME" in text and "~/.local/state/orchestrator" in text
            assert defaults.state_dir == default_state_dir()
            continue
        value = getattr(defaults, key)
        shown = str(value).lower() if isinstance(value, bool) else value  # as TOML spells it
        assert text == f"`{shown}`", key


def test_docs_list_exactly_the_node_and_restart_keys_with_their_defaults():
    documented = _documented()
    node_keys = {
        k[len("nodes[].") :] for k in documented if k.startswith("nodes[].") and ".restart." not in k
    }
    assert node_keys == set(loader._NODE_KEYS)
    restart = {
        k[len("nodes[].restart.") :]: v for k, v in documented.items() if k.startswith("nodes[].restart.")
    }
    assert set(restart) == set(loader._RESTART_KEYS)
    policy = RestartPolicy()
    for key, field in loader._RESTART_KEYS.items():
        value = getattr(policy, field)
        value = getattr(value, "value", value)
        assert restart[key] == f"`{value}`", key
    assert documented["nodes[].autostart"] == "`true`"


def test_log_rotation_settings_are_read_from_the_fleet_file(tmp_path):
    config = fleet_from_dict({"orchestrator": {"log_max_bytes": 4096, "log_backups": 5}}, tmp_path)
    assert (config.log_max_bytes, config.log_backups) == (4096, 5)
    defaults = fleet_from_dict({}, tmp_path)
    assert (defaults.log_max_bytes, defaults.log_backups) == (10 * 1024 * 1024, 3)
