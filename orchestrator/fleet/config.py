"""What the orchestrator runs: its own settings and one NodeSpec per managed node.

This is the Python-level config behind ``Orchestrator(config)``; the TOML front end (with
key-path errors and documented defaults) is built on it. Defaults here are the supported ones:
heartbeat every 50 ms, hang declared after 300 ms without one. The log rotation defaults are the
child's own (``orchestrator.child.logfile``), so a fleet file that says nothing changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.child.logfile import DEFAULT_BACKUPS as DEFAULT_LOG_BACKUPS
from orchestrator.child.logfile import DEFAULT_MAX_BYTES as DEFAULT_LOG_MAX_BYTES
from orchestrator.fleet.state_dir import StateDirError, default_state_dir, state_path
from orchestrator.journal import FsyncPolicy
from orchestrator.journal.journal import journal_path
from orchestrator.supervision.policy import RestartPolicy, RestartType

DEFAULT_JOURNAL_FSYNC = "batch"  # fdatasync every 20 ms at most; acks wait for it
NODE_STATE_MODES = ("full", "normal", "off")
DEFAULT_NODE_STATE = "full"


class FleetConfigError(ValueError):
    """An orchestrator setting that cannot work: ``field`` (None: no single one) and ``reason``.

    The fleet file's loader turns ``field`` into the TOML key path (``orchestrator.<field>``).
    """

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class NodeSpec:
    """One managed node: its id, its node config document and how it is supervised."""

    node_id: str
    doc: dict  # the node's TOML document (what node.live.config.load_node_config reads)
    base_dir: str = "."
    policy: RestartPolicy = field(default_factory=lambda: RestartPolicy(restart_type=RestartType.PERMANENT))
    autostart: bool = True

    def __post_init__(self) -> None:
        # The id names the node's journal and log files, so it must be a plain file name.
        try:
            journal_path("/", self.node_id)
        except ValueError as exc:
            raise FleetConfigError("id", str(exc)) from None


@dataclass(frozen=True)
class OrchestratorConfig:
    runtime_dir: Path
    nodes: tuple[NodeSpec, ...] = ()
    heartbeat_interval_s: float = 0.05
    heartbeat_timeout_s: float = 0.3
    startup_timeout_s: float = 15.0  # assign -> node reports RUNNING
    spares: int = 1
    # Children are forked by a zygote that has imported everything (orchestrator.child.zygote);
    # False: every child is started by fork+exec (an interpreter start and all imports each).
    zygote: bool = True
    stop_timeout_s: float = 5.0  # after a protocol stop, before SIGTERM
    term_timeout_s: float = 2.0  # after SIGTERM, before SIGKILL
    command_timeout_s: float = 5.0
    parent_timeout_s: float = 1.0  # a child stops itself when our heartbeat is missing this long
    python: str | None = None  # interpreter for children (default: this one)
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES  # each node's log is rotated at this size
    log_backups: int = DEFAULT_LOG_BACKUPS  # ... keeping this many rotated files
    # When each node's event journal is fdatasync'ed: "always" | "batch" | "batch:<ms>" | "never"
    # (see orchestrator.journal.policy and docs/configuration.md for what each risks).
    journal_fsync: str = DEFAULT_JOURNAL_FSYNC
    # Each node's state store: "full" (fsync per commit), "normal" (survives kill -9 only) or "off".
    node_state: str = DEFAULT_NODE_STATE
    # The journals and state stores (orchestrator.fleet.state_dir); None: default_state_dir().
    state_dir: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "runtime_dir", Path(self.runtime_dir))
        try:
            # Absolute: children are given paths in it, and runtime_dir/logs links to it.
            state_dir = default_state_dir() if self.state_dir is None else Path(self.state_dir).absolute()
        except StateDirError as exc:
            raise FleetConfigError("state_dir", str(exc)) from None
        object.__setattr__(self, "state_dir", state_dir)
        object.__setattr__(self, "nodes", tuple(self.nodes))
        for name in (
            "heartbeat_interval_s",
            "heartbeat_timeout_s",
            "startup_timeout_s",
            "stop_timeout_s",
            "term_timeout_s",
            "command_timeout_s",
            "parent_timeout_s",
        ):
            value = getattr(self, name)
            # Finite: a nan passes "<= 0" (every comparison with it is false) and then breaks the
            # first deadline computed from it.
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise FleetConfigError(name, f"must be a finite number of seconds > 0, got {value!r}")
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise FleetConfigError(
                "heartbeat_timeout_s",
                f"must be greater than heartbeat_interval_s ({self.heartbeat_interval_s}), got "
                f"{self.heartbeat_timeout_s} (every node would look hung)",
            )
        if not isinstance(self.zygote, bool):
            raise FleetConfigError("zygote", f"must be true or false, got {self.zygote!r}")
        for name, low in (("spares", 0), ("log_max_bytes", 1), ("log_backups", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise FleetConfigError(name, f"must be an integer >= {low}, got {value!r}")
        try:
            FsyncPolicy.parse(self.journal_fsync)
        except (TypeError, ValueError) as exc:
            raise FleetConfigError("journal_fsync", str(exc)) from None
        if self.node_state not in NODE_STATE_MODES:
            raise FleetConfigError(
                "node_state", f"must be one of {', '.join(NODE_STATE_MODES)}, got {self.node_state!r}"
            )
        ids = [n.node_id for n in self.nodes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise FleetConfigError(None, f"duplicate node ids: {', '.join(duplicates)}")

    def node_doc(self, spec: NodeSpec) -> dict:
        """The node's document as assigned: with a ``[state]`` table unless it has one or state is off."""
        if self.node_state == "off" or "state" in spec.doc:
            return spec.doc
        state = {"path": str(state_path(self.state_dir, spec.node_id)), "synchronous": self.node_state}
        return {**spec.doc, "state": state}

    def assign_config(self, spec: NodeSpec) -> dict:
        """The node's ``assign.config``: its document as assigned and where its paths are resolved."""
        return {"doc": self.node_doc(spec), "base_dir": str(spec.base_dir)}

    def node(self, node_id: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.node_id == node_id:
                return spec
        known = ", ".join(n.node_id for n in self.nodes) or "none"
        raise KeyError(f"unknown node {node_id!r} (known: {known})")
