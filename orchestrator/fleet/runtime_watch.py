"""RuntimeDirWatch: put the runtime dir back when it is removed under a running orchestrator.

Why: the runtime dir's default places are not the orchestrator's to keep. logind removes
``$XDG_RUNTIME_DIR`` when the user's last session ends, so an ``up --detach`` started over ssh
runs on after the logout with its runtime dir gone; a tmp cleaner or a hasty ``rm -rf`` does
the same to ``/tmp/orchestrator-<uid>``. The nodes running then are not hurt (their connections
do not need the socket files), but nothing new can start: every child is started with its log,
its lifeline and its socket in that dir. Measured before this existed: a spare pool that started
a child every ~0.6 s, each exiting before its hello (no log file to write to), a node killed
afterwards left STARTING for good, and the CLI told there was no orchestrator (no control.sock).

What it does: once a second it checks that the dir is there and that each path registered with
:meth:`RuntimeDirWatch.keep` (socket files, subdirs, files) still exists. When one is missing it
makes the dir again (mode 0700, ``ensure_runtime_dir``) and runs the restore of every missing
path: a socket is bound again at its endpoint (libzmq lets a socket listen at an endpoint
again; connections made before go on), a subdir made again, a file written again. It logs a
warning saying what was restored and the likely cause. A restore that fails (the path taken by
someone else) is logged and tried again a second later. What was in the old dir is gone; the
logs, journals and state stores are not there (``orchestrator.fleet.state_dir``: ``logs`` is a
link into the state dir, made again here). Where the logs are in the runtime dir itself (a
state dir that is the runtime dir), each node's log is opened again by its child
(``orchestrator.child.logfile``) and the detached orchestrator's by ``up``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import trio

from orchestrator.transport.errors import TransportError
from orchestrator.transport.runtime_dir import ensure_runtime_dir

log = logging.getLogger("orchestrator")

CHECK_INTERVAL_S = 1.0
"""How often the runtime dir is checked: a few stats per second is nothing; a loss is seen within it."""


class RuntimeDirWatch:
    """Keeps ``runtime_dir`` and the paths registered in it (module docstring)."""

    def __init__(self, runtime_dir: Path, interval_s: float = CHECK_INTERVAL_S) -> None:
        self.runtime_dir = Path(runtime_dir)
        self._interval_s = interval_s
        self._kept: dict[Path, tuple[str, Callable[[], None]]] = {}
        self._failed: dict[Path, str] = {}  # the last failure of each path's restore (logged once)
        self.restored = 0
        """How many times the dir or a path in it was found missing and put back."""
        self.on_restored: Callable[[], None] | None = None  # told after each restore (a state change)

    def keep(self, path: Path, what: str, restore: Callable[[], None]) -> None:
        """Check that ``path`` (``what``, for the log) exists; ``restore()`` makes it again."""
        self._kept[Path(path)] = (what, restore)

    def forget(self, path: Path) -> None:
        self._kept.pop(Path(path), None)
        self._failed.pop(Path(path), None)

    async def run(self) -> None:
        while True:
            await trio.sleep(self._interval_s)
            self.check()

    def check(self) -> bool:
        """Restore what is missing now; True if everything is in place afterwards."""
        missing = [path for path in self._kept if not os.path.lexists(path)]
        dir_gone = not self.runtime_dir.is_dir()
        if not missing and not dir_gone:
            return True
        try:
            ensure_runtime_dir(self.runtime_dir)
        except (OSError, TransportError) as exc:  # RuntimeDirError: remade by someone else, not private
            self._log_failure(
                self.runtime_dir, f"cannot make the runtime dir {self.runtime_dir} again: {exc}"
            )
            return False
        restored, ok = [], True
        for path in missing:
            what, restore = self._kept[path]
            try:
                restore()
            except Exception as exc:  # noqa: BLE001 - one path's failure must not stop the others
                self._log_failure(path, f"cannot restore {what} at {path}: {type(exc).__name__}: {exc}")
                ok = False
                continue
            self._failed.pop(path, None)
            restored.append(what)
        if restored or dir_gone:
            self.restored += 1
            log.warning(
                "the runtime dir %s %s while the orchestrator ran (a logout empties "
                "$XDG_RUNTIME_DIR: `loginctl enable-linger` keeps it; or set "
                "orchestrator.runtime_dir elsewhere): made again: %s",
                self.runtime_dir,
                "was removed" if dir_gone else "lost files",
                ", ".join(restored) or "the dir",
            )
            if self.on_restored is not None:
                self.on_restored()
        return ok

    def _log_failure(self, path: Path, message: str) -> None:
        if self._failed.get(path) != message:  # once per distinct failure, not once a second
            self._failed[path] = message
            log.error("%s; trying again every %g s", message, self._interval_s)


__all__ = ["CHECK_INTERVAL_S", "RuntimeDirWatch"]
