"""Fleet config files: ``[orchestrator]`` settings and one ``[[nodes]]`` table per node.

A node is given either by reference (``config = "sandbox.toml"``, relative to the fleet file)
or inline (the node's own tables under the ``[[nodes]]`` entry: ``[nodes.node]``,
``[[nodes.venues]]``, ...). Each node's config is validated here with the node's own parser,
so a bad strategy path or instrument fails ``up`` before anything starts.

Every error names the file's full TOML key path, then what is wanted and what was found, e.g.
``nodes[1].restart.max_restarts: must be an integer >= 0, got -1``. Every numeric key is checked
in one place (``_NUMBERS``, read by ``_number``): its type (a boolean is no number), that it is
finite (TOML has ``nan`` and ``inf``, and a ``nan`` timeout compares false with everything, so it
passes a ``<= 0`` check and then breaks the first deadline computed from it) and its bounds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from node.backtest.config import ConfigError, _Reader, _tables
from orchestrator.configfile import ConfigFileError, file_in_the_way, read_toml
from orchestrator.fleet.config import (
    DEFAULT_JOURNAL_FSYNC,
    DEFAULT_NODE_STATE,
    NODE_STATE_MODES,
    FleetConfigError,
    NodeSpec,
    OrchestratorConfig,
)
from orchestrator.fleet.state_dir import default_state_dir
from orchestrator.journal import journal_path
from orchestrator.supervision.policy import FaultAction, InvalidRestartPolicy, RestartPolicy, RestartType
from orchestrator.transport.runtime_dir import default_runtime_dir

_NODE_KEYS = ("id", "config", "autostart", "restart")
_RESTART_KEYS = {  # TOML key -> RestartPolicy field
    "type": "restart_type",
    "max_restarts": "max_restarts",
    "window_s": "window_s",
    "backoff_initial_s": "backoff_initial_s",
    "backoff_max_s": "backoff_max_s",
    "backoff_multiplier": "backoff_multiplier",
    "stable_after_s": "stable_after_s",
    "fault_action": "fault_action",
}
_CHOICES = {
    "type": tuple(t.value for t in RestartType),
    "fault_action": tuple(a.value for a in FaultAction),
}


class _Number(NamedTuple):
    """What one numeric key accepts: an integer or any number, within ``[low, high]``."""

    integer: bool
    low: float
    low_strict: bool = False  # ``> low`` rather than ``>= low``
    high: float = math.inf

    def accepts(self, value: object) -> bool:
        kinds = int if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_strict else value >= self.low
        return above and value <= self.high

    def wanted(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        low = f"{'>' if self.low_strict else '>='} {self.low:g}"
        return f"{kind} {low}" + ("" if self.high == math.inf else f" and <= {self.high:.0f}")


_YEAR_S = 365 * 24 * 3600  # a longer wait is a typo, and overflows some timeout APIs
_SECONDS = _Number(False, 0, low_strict=True, high=_YEAR_S)
_NUMBERS = {
    # [orchestrator]
    "heartbeat_interval_s": _SECONDS,
    "heartbeat_timeout_s": _SECONDS,
    "startup_timeout_s": _SECONDS,
    "stop_timeout_s": _SECONDS,
    "term_timeout_s": _SECONDS,
    "command_timeout_s": _SECONDS,
    "parent_timeout_s": _SECONDS,
    "spares": _Number(True, 0),
    "log_max_bytes": _Number(True, 1),
    "log_backups": _Number(True, 1, high=1000),  # rotation renames every backup, one by one
    # [nodes.restart]
    "max_restarts": _Number(True, 0),
    "window_s": _SECONDS,
    "backoff_initial_s": _Number(False, 0, high=_YEAR_S),
    "backoff_max_s": _Number(False, 0, high=_YEAR_S),
    "backoff_multiplier": _Number(False, 1, high=1000),
    "stable_after_s": _Number(False, 0, high=_YEAR_S),
}


def _number(r: _Reader, name: str, default):
    """The value of numeric key ``name`` of the table ``r`` reads, checked by its ``_NUMBERS`` rule."""
    r.used.add(name)
    if name not in r.table:
        return default
    value, rule = r.table[name], _NUMBERS[name]
    if not rule.accepts(value):
        raise ConfigError(r.key(name), f"must be {rule.wanted()}, got {_toml(value)}")
    return value


def _toml(value: object) -> str:
    """``value`` as it is spelled in the file (``true``, ``nan``, ``'fast'``), for messages."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return repr(value)  # as the node's own config errors quote them
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def load_fleet(path: str | Path) -> OrchestratorConfig:
    """Read and validate a fleet file; raises ConfigFileError or ConfigError (key path + reason)."""
    path = Path(path)
    doc = read_toml(path)
    return fleet_from_dict(doc, path.parent)


def runtime_dir_of(path: str | Path) -> Path:
    """The runtime dir a fleet file names (or the default), without loading its nodes.

    For the CLI commands that only need to find a running orchestrator (``status --config``):
    importing every node's strategies to learn one path would be slow and could fail for
    reasons that do not matter to them.
    """
    path = Path(path)
    o = _orchestrator_table(read_toml(path))
    return _directory(
        o.get("runtime_dir", str, str(default_runtime_dir())), path.parent, o.key("runtime_dir")
    )


def state_dir_of(path: str | Path) -> Path:
    """The state dir a fleet file names (or the default), without loading its nodes (``logs``)."""
    path = Path(path)
    o = _orchestrator_table(read_toml(path))
    value = o.get("state_dir", str, None)
    return default_state_dir() if value is None else _directory(value, path.parent, o.key("state_dir"))


def _orchestrator_table(doc: dict) -> _Reader:
    return _Reader(_Reader(doc, "").get("orchestrator", dict, {}), "orchestrator")


def _directory(value: str, base_dir: Path, key: str) -> Path:
    """A directory setting (runtime_dir, state_dir): ``~`` is the home; relative paths are relative
    to the fleet file. One that can never be a directory (it is a file, or lies under one) is an
    error here, naming the key, rather than an OSError from the first ``mkdir`` that trips on it."""
    directory = Path(value).expanduser()
    directory = directory if directory.is_absolute() else (base_dir / directory).resolve()
    blocker = file_in_the_way(directory)
    if blocker is not None:
        where = "is" if blocker == directory else f"is under {blocker}, which is"
        raise ConfigError(key, f"{directory} {where} a file, not a directory; choose another directory")
    return directory


_ORCHESTRATOR_NUMBERS = tuple(n for n in _NUMBERS if n in OrchestratorConfig.__dataclass_fields__)


def fleet_from_dict(doc: dict, base_dir: Path) -> OrchestratorConfig:
    from node.live.config import load_node_config

    root = _Reader(doc, "")
    o = _Reader(root.get("orchestrator", dict, {}), "orchestrator")
    defaults = OrchestratorConfig.__dataclass_fields__
    settings = {
        "runtime_dir": o.get("runtime_dir", str, str(default_runtime_dir())),
        **{name: _number(o, name, defaults[name].default) for name in _ORCHESTRATOR_NUMBERS},
        "zygote": o.get("zygote", bool, True),
        "journal_fsync": o.get("journal_fsync", str, DEFAULT_JOURNAL_FSYNC),
        "node_state": o.get("node_state", str, DEFAULT_NODE_STATE, choices=NODE_STATE_MODES),
        "state_dir": o.get("state_dir", str, None),  # None: default_state_dir() (OrchestratorConfig)
    }
    o.done()
    interval, timeout = settings["heartbeat_interval_s"], settings["heartbeat_timeout_s"]
    if timeout <= interval:
        raise ConfigError(
            o.key("heartbeat_timeout_s"),
            f"must be greater than orchestrator.heartbeat_interval_s ({interval:g}), got {timeout:g} "
            "(every node would look hung)",
        )
    settings["runtime_dir"] = _directory(settings["runtime_dir"], base_dir, o.key("runtime_dir"))
    if settings["state_dir"] is not None:
        settings["state_dir"] = _directory(settings["state_dir"], base_dir, o.key("state_dir"))
    specs = []
    for i, table in enumerate(_tables(root.get("nodes", list, []), "nodes")):
        spec = _node_spec(table, f"nodes[{i}]", base_dir, load_node_config)
        for j, other in enumerate(specs):  # named here, where the key path is known
            if other.node_id == spec.node_id:
                raise ConfigError(
                    f"nodes[{i}].id", f"duplicate node id {spec.node_id!r} (also nodes[{j}].id)"
                )
        specs.append(spec)
    root.done()
    try:
        return OrchestratorConfig(nodes=tuple(specs), **settings)
    except FleetConfigError as exc:  # what only the config itself checks (journal_fsync's syntax)
        raise ConfigError(o.key(exc.field) if exc.field else "orchestrator", exc.reason) from None


def _node_spec(table, key: str, base_dir: Path, load_node_config) -> NodeSpec:
    if not isinstance(table, dict):
        raise ConfigError(key, "must be a table")
    r = _Reader({k: v for k, v in table.items() if k in _NODE_KEYS}, key)
    node_id = r.get("id", str)
    try:
        journal_path("/", node_id)  # the id names the node's files
    except ValueError:
        raise ConfigError(
            r.key("id"),
            "must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit "
            f"(it names the node's journal, state and log files), got {_toml(node_id)}",
        ) from None
    ref = r.get("config", str, None)
    autostart = r.get("autostart", bool, True)
    restart = r.get("restart", dict, {})
    r.done()
    inline = {k: v for k, v in table.items() if k not in _NODE_KEYS}
    if ref is not None and inline:
        raise ConfigError(
            f"{key}.{sorted(inline)[0]}", "give the node either by 'config = <file>' or inline, not both"
        )
    if ref is not None:
        node_path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
        try:
            doc = read_toml(node_path)
        except ConfigFileError as exc:
            raise ConfigError(f"{key}.config", str(exc)) from None
        node_dir = node_path.parent
    else:
        doc, node_dir = inline, base_dir
    try:
        load_node_config(doc, node_dir)
    except ConfigError as exc:
        where = f"{key}.config -> {exc.key}" if ref is not None else f"{key}.{exc.key}"
        raise ConfigError(where, exc.reason) from None
    policy = _restart_policy(_Reader(restart, f"{key}.restart"))
    try:
        return NodeSpec(node_id, doc, str(node_dir.resolve()), policy, autostart)
    except FleetConfigError as exc:
        raise ConfigError(r.key("id"), exc.reason) from None


def _restart_policy(rr: _Reader) -> RestartPolicy:
    """A node's ``[nodes.restart]`` table, every error named by its TOML key (``type``, not the
    policy's ``restart_type``)."""
    kwargs = {}
    for name, field in _RESTART_KEYS.items():
        if name in _CHOICES:
            value = rr.get(name, str, None, choices=_CHOICES[name])
        else:
            value = _number(rr, name, None)
        if value is not None:
            kwargs[field] = value
    rr.done()
    default = RestartPolicy()
    initial = kwargs.get("backoff_initial_s", default.backoff_initial_s)
    maximum = kwargs.get("backoff_max_s", default.backoff_max_s)
    if maximum < initial:
        raise ConfigError(
            rr.key("backoff_max_s"),
            f"must be >= {rr.key('backoff_initial_s')} ({initial:g}), got {maximum:g}",
        )
    try:
        return RestartPolicy(**kwargs)
    except InvalidRestartPolicy as exc:  # a rule of the policy's own this loader does not know
        raise ConfigError(rr.path, str(exc)) from None
