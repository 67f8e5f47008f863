"""``orchestrator validate CONFIG``: check a fleet config without starting anything."""

from __future__ import annotations

from pathlib import Path

from orchestrator import exit_codes
from orchestrator.control.cli_support import raw_formatter

HELP = "check a fleet config (every node's config too) without starting anything"
DESCRIPTION = """\
Read a fleet TOML file the way `up` does and report the first problem: the file, the key
path and the reason (e.g. nodes[1].restart.max_restarts: must be an integer >= 0). Each
node's own config is checked with the node's parser (strategy import paths, instruments,
data sources), referenced node files included. Nothing is started, no socket is bound and
the runtime dir is not created. Every key and its default: docs/configuration.md.

example:
  orchestrator validate configs/example.toml

exit status: 0 valid, 2 invalid (the message names the file, key and reason).
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("validate", help=HELP, description=DESCRIPTION, formatter_class=raw_formatter())
    p.add_argument("config", help="path to the fleet TOML file")
    p.set_defaults(func=run)


def run(args) -> int:
    from orchestrator.configfile import load_or_report
    from orchestrator.fleet.loader import load_fleet

    path = Path(args.config)
    config = load_or_report(path, load_fleet)
    if config is None:
        return exit_codes.BAD_USAGE
    ids = ", ".join(n.node_id for n in config.nodes) or "none"
    print(
        f"{path}: valid; {len(config.nodes)} node(s): {ids}; runtime dir {config.runtime_dir}; "
        f"state dir {config.state_dir}"
    )
    return exit_codes.OK
