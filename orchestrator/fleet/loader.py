"""Fleet config files: ``[orchestrator]`` settings and one ``[[nodes]]`` table per node.

A node is given either by reference (``config = "sandbox.toml"``, relative to the fleet file)
or inline (the node's own tables under the ``[[nodes]]`` entry: ``[nodes.node]``,
``[[nodes.venues]]``, ...). Each node's config is validated here with the node's own parser,
so a bad strategy path or instrument fails ``up`` before anything starts. Errors name the
file's key path, e.g. ``nodes[1].restart.max_restarts: must be an int >= 0``.
"""

from __future__ import annotations

from pathlib import Path

from node.backtest.config import ConfigError, _Reader, _tables
from orchestrator.configfile import ConfigFileError, read_toml
from orchestrator.fleet.config import (
    DEFAULT_JOURNAL_FSYNC,
    DEFAULT_LOG_BACKUPS,
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_NODE_STATE,
    NODE_STATE_MODES,
    FleetConfigError,
    NodeSpec,
    OrchestratorConfig,
)
from orchestrator.fleet.state_dir import default_state_dir
from orchestrator.supervision.policy import InvalidRestartPolicy, RestartPolicy
from orchestrator.transport.runtime_dir import default_runtime_dir

_NODE_KEYS = ("id", "config", "autostart", "restart")
_RESTART_KEYS = {
    "type": "restart_type",
    "max_restarts": "max_restarts",
    "window_s": "window_s",
    "backoff_initial_s": "backoff_initial_s",
    "backoff_max_s": "backoff_max_s",
    "backoff_multiplier": "backoff_multiplier",
    "stable_after_s": "stable_after_s",
    "fault_action": "fault_action",
}


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
    root = _Reader(read_toml(path), "")
    o = _Reader(root.get("orchestrator", dict, {}), "orchestrator")
    return _resolve_runtime_dir(o.get("runtime_dir", str, str(default_runtime_dir())), path.parent)


def state_dir_of(path: str | Path) -> Path:
    """The state dir a fleet file names (or the default), without loading its nodes (``logs``)."""
    path = Path(path)
    root = _Reader(read_toml(path), "")
    o = _Reader(root.get("orchestrator", dict, {}), "orchestrator")
    value = o.get("state_dir", str, None)
    return default_state_dir() if value is None else _resolve_runtime_dir(value, path.parent)


def _resolve_runtime_dir(value: str, base_dir: Path) -> Path:
    """A directory setting (runtime_dir, state_dir): ``~`` is the home; relative paths are relative
    to the fleet file."""
    runtime_dir = Path(value).expanduser()
    return runtime_dir if runtime_dir.is_absolute() else (base_dir / runtime_dir).resolve()


def fleet_from_dict(doc: dict, base_dir: Path) -> OrchestratorConfig:
    from node.live.config import load_node_config

    root = _Reader(doc, "")
    o = _Reader(root.get("orchestrator", dict, {}), "orchestrator")
    settings = {
        "runtime_dir": Path(o.get("runtime_dir", str, str(default_runtime_dir()))),
        "heartbeat_interval_s": o.positive("heartbeat_interval_s", (int, float), 0.05),
        "heartbeat_timeout_s": o.positive("heartbeat_timeout_s", (int, float), 0.3),
        "startup_timeout_s": o.positive("startup_timeout_s", (int, float), 15.0),
        "spares": o.get("spares", int, 1),
        "zygote": o.get("zygote", bool, True),
        "stop_timeout_s": o.positive("stop_timeout_s", (int, float), 5.0),
        "term_timeout_s": o.positive("term_timeout_s", (int, float), 2.0),
        "command_timeout_s": o.positive("command_timeout_s", (int, float), 5.0),
        "parent_timeout_s": o.positive("parent_timeout_s", (int, float), 1.0),
        "log_max_bytes": o.positive("log_max_bytes", int, DEFAULT_LOG_MAX_BYTES),
        "log_backups": o.positive("log_backups", int, DEFAULT_LOG_BACKUPS),
        "journal_fsync": o.get("journal_fsync", str, DEFAULT_JOURNAL_FSYNC),
        "node_state": o.get("node_state", str, DEFAULT_NODE_STATE, choices=NODE_STATE_MODES),
        "state_dir": o.get("state_dir", str, None),  # None: default_state_dir() (OrchestratorConfig)
    }
    o.done()
    settings["runtime_dir"] = _resolve_runtime_dir(str(settings["runtime_dir"]), base_dir)
    if settings["state_dir"] is not None:
        settings["state_dir"] = _resolve_runtime_dir(settings["state_dir"], base_dir)
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
    except FleetConfigError as exc:
        raise ConfigError("orchestrator", str(exc)) from None


def _node_spec(table, key: str, base_dir: Path, load_node_config) -> NodeSpec:
    if not isinstance(table, dict):
        raise ConfigError(key, "must be a table")
    r = _Reader({k: v for k, v in table.items() if k in _NODE_KEYS}, key)
    node_id = r.get("id", str)
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
    rr = _Reader(restart, f"{key}.restart")
    kwargs = {}
    for name, field in _RESTART_KEYS.items():
        if name in restart:
            kwargs[field] = rr.get(name, (str, int, float))
    rr.used.update(_RESTART_KEYS)
    rr.done()
    try:
        policy = RestartPolicy(**kwargs)
    except InvalidRestartPolicy as exc:
        raise ConfigError(f"{key}.restart", str(exc)) from None
    try:
        return NodeSpec(node_id, doc, str(node_dir.resolve()), policy, autostart)
    except FleetConfigError as exc:
        raise ConfigError(f"{key}.id", str(exc)) from None
