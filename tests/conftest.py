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
