"""Bad input reaches the user as one line naming what to fix, exit status 2: never a traceback.

Config values (every numeric key, nan and inf included; the key path as the TOML file spells it),
files that are not UTF-8, and runtime/state dirs that can never be directories. They run the CLI's
``main`` in-process (the code a subprocess runs, without an interpreter start per case).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.fleet import loader
from tests.fleet_support import fast_node_doc
from tests.test_orchestrator_process import _toml

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
NODE = '[[nodes]]\nid = "n0"\nconfig = "n0.toml"\n'


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "n0.toml").write_text(_toml(fast_node_doc(1)))
    return tmp_path


def _validate(path: Path, text: str, capsys) -> str:
    path.write_text(text)
    code = cli.main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
    return err[len(f"error: {path}: ") :].strip()


def _numeric_settings() -> tuple[set[str], set[str]]:
    """The numeric ``[orchestrator]`` keys and ``[nodes.restart]`` keys: those whose default is a number."""
    from orchestrator.fleet.config import OrchestratorConfig
    from orchestrator.supervision.policy import RestartPolicy

    def numeric(value) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    defaults = OrchestratorConfig(runtime_dir="/x")
    policy = RestartPolicy()
    return (
        {name for name in OrchestratorConfig.__dataclass_fields__ if numeric(getattr(defaults, name))},
        {key for key, field in loader._RESTART_KEYS.items() if numeric(getattr(policy, field))},
    )


def _numeric_keys() -> list[tuple[str, str]]:
    """(TOML key path, fleet file text before the key's line) of every numeric key."""
    orchestrator, restart = _numeric_settings()
    return [(f"orchestrator.{name}", "[orchestrator]\n") for name in sorted(orchestrator)] + [
        (f"nodes[0].restart.{name}", NODE + "[nodes.restart]\n") for name in sorted(restart)
    ]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "true", '"5"'])
@pytest.mark.parametrize(("key", "before"), _numeric_keys(), ids=[k for k, _ in _numeric_keys()])
def test_every_numeric_key_refuses_non_finite_and_non_numbers(fleet_dir, capsys, key, before, value):
    text = before + f"{key.rsplit('.', 1)[1]} = {value}\n"
    message = _validate(fleet_dir / "fleet.toml", text, capsys)
    shown = value.replace('"', "'")
    assert re.fullmatch(
        rf"{re.escape(key)}: must be (an integer|a finite number) .*, got {re.escape(shown)}", message
    )


def test_the_numeric_keys_are_all_checked_by_one_rule_table():
    orchestrator, restart = _numeric_settings()
    assert len(orchestrator) == 10 and len(restart) == 6
    assert set(loader._NUMBERS) == orchestrator | restart


def test_nan_stop_timeout_is_refused_by_up_before_anything_starts(fleet_dir, tmp_path, capsys):
    runtime = tmp_path / "rt"
    path = fleet_dir / "fleet.toml"
    path.write_text(f'[orchestrator]\nruntime_dir = "{runtime}"\nstop_timeout_s = nan\n' + NODE)
    assert cli.main(["up", str(path)]) == 2
    err = capsys.readouterr().err
    assert "orchestrator.stop_timeout_s: must be a finite number > 0" in err and "got nan" in err
    assert not runtime.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[orchestrator]\nspares = true\n", "orchestrator.spares: must be an integer >= 0, got true"),
        ("[orchestrator]\nspares = -1\n", "orchestrator.spares: must be an integer >= 0, got -1"),
        (
            NODE + '[nodes.restart]\ntype = "sometimes"\n',
            "nodes[0].restart.type: must be one of permanent, transient, temporary, got 'sometimes'",
        ),
        (
            NODE + '[nodes.restart]\nfault_action = "shrug"\n',
            "nodes[0].restart.fault_action: must be one of fail, restart, got 'shrug'",
        ),
        (
            NODE + "[nodes.restart]\nmax_restarts = -1\n",
            "nodes[0].restart.max_restarts: must be an integer >= 0, got -1",
        ),
        (
            NODE + "[nodes.restart]\nbackoff_initial_s = 5\nbackoff_max_s = 1\n",
            "nodes[0].restart.backoff_max_s: must be >= nodes[0].restart.backoff_initial_s (5), got 1",
        ),
        (
            "[orchestrator]\nheartbeat_interval_s = 1.0\nheartbeat_timeout_s = 0.5\n",
            "orchestrator.heartbeat_timeout_s: must be greater than orchestrator.heartbeat_interval_s (1), "
            "got 0.5 (every node would look hung)",
        ),
        ('[orchestrator]\njournal_fsync = "batch:nan"\n', "orchestrator.journal_fsync: "),
        (
            "[orchestrator]\nlog_backups = 100000000\n",
            "orchestrator.log_backups: must be an integer >= 1 and <= 1000",
        ),
    ],
    ids=[
        "spares bool",
        "spares negative",
        "restart type",
        "fault action",
        "max restarts",
        "backoff",
        "hb",
        "fsync",
        "backups",
    ],
)
def test_messages_name_the_full_toml_key_in_one_style(fleet_dir, capsys, text, expected):
    assert _validate(fleet_dir / "fleet.toml", text, capsys).startswith(expected)


def test_node_ids_are_what_the_docs_say(fleet_dir, capsys):
    row = next(line for line in DOCS.read_text().splitlines() if line.startswith("| `nodes[].id`"))
    assert "1..128 letters, digits, `.`, `_`, `-`, starting with a letter or digit, no `..`" in row
    path = fleet_dir / "fleet.toml"
    for good in ("a" * 128, "9.x_y-z"):
        path.write_text(NODE.replace('"n0"', f'"{good}"'))
        assert cli.main(["validate", str(path)]) == 0, capsys.readouterr().err
    for bad in ("a" * 129, "ema btc", "-a", "a..b", "a/b", "é"):
        message = _validate(path, NODE.replace('"n0"', f'"{bad}"'), capsys)
        assert message.startswith("nodes[0].id: must be 1 to 128 letters, digits,"), message


# -- files that are not UTF-8 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["validate"], ["up"], ["status", "--config"], ["events", "--config"], ["backtest"], ["sweep"]],
    ids=lambda a: " ".join(a),
)
def test_a_config_that_is_not_utf8_is_one_line_exit_2(tmp_path, capsys, argv):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[orch")
    extra = ["--out", str(tmp_path / "out")] if argv == ["sweep"] else []
    assert cli.main([*argv, str(bad), *extra]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: {bad}: not valid UTF-8 (byte 0xff at offset 0); a TOML file must be UTF-8 "
        "text: check that this is the right file, or re-save it as UTF-8\n"
    )


def test_a_referenced_node_file_that_is_not_utf8_names_its_key(fleet_dir, capsys):
    (fleet_dir / "n0.toml").write_bytes(b'trader_id = "\xe9"\n')
    message = _validate(fleet_dir / "fleet.toml", NODE, capsys)
    assert message.startswith(
        f"nodes[0].config: {fleet_dir / 'n0.toml'}: not valid UTF-8 (byte 0xe9 at offset 13)"
    )


# -- runtime and state dirs that can never be directories ------------------------------------------


@pytest.mark.parametrize("key", ["runtime_dir", "state_dir"])
@pytest.mark.parametrize("under", [False, True], ids=["is a file", "under a file"])
def test_a_dir_setting_that_is_a_file_is_refused_naming_the_key(fleet_dir, capsys, key, under):
    afile = fleet_dir / "afile"
    afile.write_text("")
    target = afile / "rt" if under else afile
    text = f'[orchestrator]\n{key} = "{target}"\n' + NODE
    if key == "state_dir":  # not the default runtime dir: another fleet may be running there
        text = text.replace("\n", f'\nruntime_dir = "{fleet_dir / "rt"}"\n', 1)
    why = f"is under {afile}, which is" if under else "is"
    expected = f"orchestrator.{key}: {target} {why} a file, not a directory; choose another directory"
    assert _validate(fleet_dir / "fleet.toml", text, capsys) == expected
    command = ["status"] if key == "runtime_dir" else ["events"]  # events: read from the journals
    assert cli.main([*command, "--config", str(fleet_dir / "fleet.toml")]) == 2
    assert capsys.readouterr().err == f"error: {fleet_dir / 'fleet.toml'}: {expected}\n"
    assert cli.main(["up", str(fleet_dir / "fleet.toml")]) == 2
    assert capsys.readouterr().err == f"error: {fleet_dir / 'fleet.toml'}: {expected}\n"


@pytest.mark.parametrize(
    "command", [["status"], ["events"], ["events", "--follow"], ["logs", "n0"], ["down"]]
)
def test_a_runtime_dir_option_that_is_a_file_is_one_line_exit_2(tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("")
    for given, why in ((afile, "is"), (afile / "rt", f"is under {afile}, which is")):
        assert cli.main([*command, "--runtime-dir", str(given)]) == 2
        assert capsys.readouterr().err == f"error: --runtime-dir {given} {why} a file, not a directory\n"


# -- a damaged journal read with no orchestrator running -----------------------------------------


def _journal_fleet(tmp_path: Path, node: str, frames: int) -> tuple[Path, Path, list[int]]:
    """A fleet file whose state dir holds ``node``'s journal of ``frames`` one-event frames;
    returns (fleet file, journal, each record's byte offset)."""
    import msgpack

    from orchestrator.journal import Journal, journal_path

    state = tmp_path / "state"
    path = journal_path(state, node)
    offsets = []
    with Journal(path, fsync="never") as journal:
        for seq in range(1, frames + 1):
            offsets.append(journal.size)
            event = [seq, 1_700_000_000_000_000_000 + seq, "events.order.S-1", "OrderFilled", {"n": seq}]
            journal.append(seq, msgpack.packb({"node": node, "events": [event]}))
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(f'[orchestrator]\nruntime_dir = "{tmp_path / "rt"}"\nstate_dir = "{state}"\n')
    return fleet, path, offsets


def test_events_from_a_journal_damaged_mid_file_prints_the_good_ones_then_one_error(tmp_path, capsys):
    fleet, path, offsets = _journal_fleet(tmp_path, "n0", 6)
    data = bytearray(path.read_bytes())
    data[offsets[2] : offsets[2] + 64] = bytes(64)  # 64 zeroed bytes in the third record, good ones after
    path.write_bytes(bytes(data))
    assert cli.main(["events", "--node", "n0", "--config", str(fleet)]) == 1
    out, err = capsys.readouterr()
    assert [line.split()[1] for line in out.splitlines()] == ["#1", "#2"]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith(f"error: journal {path} is corrupt at byte offset {offsets[2]}: ")


def test_events_from_a_file_that_is_no_journal_says_so_exit_1(tmp_path, capsys):
    fleet, path, _ = _journal_fleet(tmp_path, "n0", 2)
    path.write_bytes(b"garbage from byte 0, not a journal at all\n")
    assert cli.main(["events", "--node", "n0", "--config", str(fleet)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        f"error: journal {path} is corrupt at byte offset 0: the file does not start with a journal record"
        in err
    )
