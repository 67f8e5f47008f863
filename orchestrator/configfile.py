"""Reading TOML config files with errors that name the file, the key and the reason.

Every command that reads a config file (fleet, backtest, sweep) goes through ``read_toml``, so an
unreadable file (missing, a directory, not UTF-8, not TOML) is one clear line and exit 2 for all
of them, never a traceback.
"""

from __future__ import annotations

import os
import stat
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
    except NotADirectoryError:
        raise ConfigFileError(f"{path}: no such file (a directory of its path is a file)") from None
    except PermissionError:
        raise ConfigFileError(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:  # tomllib decodes the whole file first
        raise ConfigFileError(
            f"{path}: not valid UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "a TOML file must be UTF-8 text: check that this is the right file, or re-save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None


def file_in_the_way(path: str | Path) -> Path | None:
    """The existing non-directory that ``path`` is, or lies under, or None.

    A directory setting (``runtime_dir``, ``state_dir``, ``--runtime-dir``) naming such a path can
    never be a directory: said at load, in one line, rather than as ``FileExistsError`` or
    ``NotADirectoryError`` from the first ``mkdir`` or ``stat`` that trips on it.
    """
    path = Path(path)
    for candidate in (path, *path.parents):
        try:
            st = os.stat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            continue  # not there (yet), or under a file found further up
        except OSError:
            return None  # unreadable: whoever uses it reports that
        return None if stat.S_ISDIR(st.st_mode) else candidate
    return None


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
