"""Reading TOML config files with errors that name the file, the key and the reason."""

from __future__ import annotations

import tomllib
from pathlib import Path


class ConfigFileError(Exception):
    """A config file that cannot be used; the message starts with the file's path."""


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a directory, expected a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None


def load_or_report(path: str | Path, load):
    """``load(path)``, or None after printing ``error: <file>: <key>: <reason>`` to stderr.

    Every command that reads a config reports a bad one the same way and exits 2; this is that
    one place. ``load`` raises ConfigFileError (unreadable file) or ConfigError (bad value).
    """
    import sys

    from node.backtest.config import ConfigError

    try:
        return load(Path(path))
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except ConfigError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
    return None
