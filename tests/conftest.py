"""Suite-wide fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _remove_fleet_runtime_dirs():
    """Fleet tests put their runtime dirs (sockets, journals, state stores) in short paths under
    /tmp (ipc paths are limited to 107 bytes), named with this process's pid; remove them at the end."""
    yield
    for path in Path("/tmp").glob(f"orch-*-{os.getpid()}-*"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def _state_home_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xdg-state")


@pytest.fixture(autouse=True)
def _own_state_home(request, _state_home_root, monkeypatch):
    """Every test gets its own ``$XDG_STATE_HOME`` (inherited by the processes it starts): a fleet
    that uses the default state dir never writes to the real home, nor finds another test's
    journals and state stores. The directory is made by whoever first writes in it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(_state_home_root / f"t{id(request.node):x}"))
