"""Addressing one value inside a nested config by a dotted key path.

Why dotted strings with numeric segments (``strategies.0.config.fast_ema_period``): a sweep
names the values it varies as plain strings, and those strings become TOML keys, CSV column
names and JSON keys. The bracket form that config errors print (``strategies[0].config``) is
accepted too and normalised to the dotted form, so a path copied from an error message works.

Setting a value never creates containers: every table or array on the way must already be in
the base config, so a typo in the middle of a path is reported here, naming the segment. The
last segment may be a key the base config leaves at its default; whether it is a *known* key
is for the backtest config's own validation to say (it refuses unknown keys, naming them).
"""

from __future__ import annotations

import re

_BRACKET = re.compile(r"\[(\d+)\]")


class KeyPathError(ValueError):
    """A key path that is malformed or does not lead anywhere in the base config."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def normalise(path: str) -> str:
    """``strategies[0].config.x`` -> ``strategies.0.config.x``; refuses empty segments."""
    return ".".join(segments(path))


def segments(path: str) -> tuple[str, ...]:
    if not isinstance(path, str) or not path.strip():
        raise KeyPathError(str(path), "a key path must be a non-empty string like 'strategies.0.config.x'")
    parts = tuple(_BRACKET.sub(r".\1", path.strip()).split("."))
    if any(not p for p in parts):
        raise KeyPathError(path, "has an empty segment (two dots in a row, or a leading/trailing dot)")
    return parts


def set_value(doc: dict, path: str, value) -> None:
    """Set ``value`` at ``path`` inside ``doc`` (in place). Containers on the way must exist."""
    parts = segments(path)
    container = doc
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the base config"
        if isinstance(container, dict):
            if last:
                container[part] = value
                return
            if part not in container:
                known = ", ".join(sorted(map(str, container))) or "none"
                raise KeyPathError(path, f"unknown key path: {where} has no key {part!r} (keys: {known})")
            container = container[part]
        elif isinstance(container, list):
            if not part.isdigit():
                raise KeyPathError(path, f"{where} is an array: use an index like '{where}.0', not {part!r}")
            index = int(part)
            if index >= len(container):
                raise KeyPathError(
                    path, f"unknown key path: {where} has {len(container)} item(s), no index {index}"
                )
            if last:
                container[index] = value
                return
            container = container[index]
        else:
            raise KeyPathError(
                path, f"unknown key path: {where} is a value ({type(container).__name__}), not a table"
            )
