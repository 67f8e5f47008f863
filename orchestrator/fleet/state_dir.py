"""Where a fleet's durable files live: the *state dir*, apart from the runtime dir.

Why apart: the runtime dir holds what matters only while the orchestrator runs (its ipc
sockets, the children's lifelines, the prepare file, the logs), and its default is volatile:
``$XDG_RUNTIME_DIR`` is a tmpfs that logind empties when the user's last session ends, and
``/tmp`` is a tmpfs on many systems and aged by systemd-tmpfiles. The journals (every event
relayed) and the nodes' state stores (orders, positions, accounts, the event sequence) are what
crash-only recovery rests on. In a tmpfs a reboot, or a logout, takes them away, and with
them everything their fsyncs were for: a fleet started again would start every node from
nothing. So they live in the state dir (DESIGN: "SQLite in the node's state dir"):
``orchestrator.state_dir``, by default ``$XDG_STATE_HOME/orchestrator``, else
``~/.local/state/orchestrator`` (the XDG base directory spec's place for state that must outlive
a restart)::

    <state_dir>/journal/<node>.journal
    <state_dir>/state/<node>.sqlite
    <state_dir>/logs/<node>.log, orchestrator.log, ...

The logs too: what happened before a machine's crash is what its operator reads after the
reboot. They are reached, as before, as ``<runtime_dir>/logs``, now a symbolic link to
``<state_dir>/logs`` (:func:`link_logs`), so every path the CLI and the messages give stays the
same, and a runtime dir that is lost loses only the link, which the next start (or the
``RuntimeDirWatch``) makes again.

Two checks when an orchestrator is made (:func:`check_state_dir`):

- files of a configured node at the old place (``<runtime_dir>/journal``,
  ``<runtime_dir>/state``, where fleets kept them before the state dir existed), with none of
  that node's in the state dir, refuse the start (:class:`StateDirError`, saying what to move
  where): starting the node would forget its orders and positions;
- a state dir on a memory file system (tmpfs, ramfs) is warned about: it survives a process's
  crash, not the machine's.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from orchestrator.journal.journal import journal_path
from orchestrator.process.pid_lock import HeldElsewhere, PidLock
from orchestrator.transport import EndpointError, ipc_path_in_use

log = logging.getLogger("orchestrator")

MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs"})


class StateDirError(Exception):
    """The state dir cannot be used as configured; the message says what to do."""


def default_state_dir(name: str = "orchestrator") -> Path:
    """``$XDG_STATE_HOME/<name>`` if set to an absolute path (the spec ignores a relative one),
    else ``~/.local/state/<name>``. Raises :class:`StateDirError` if there is no home to use."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / name
    try:
        return Path.home() / ".local" / "state" / name
    except RuntimeError:
        raise StateDirError(
            "no home directory to put the default state dir in ($HOME unset, $XDG_STATE_HOME "
            "unset): set orchestrator.state_dir to a directory on disk"
        ) from None


def state_path(state_dir: str | Path, node_id: str) -> Path:
    """``<state_dir>/state/<node_id>.sqlite``: the node's durable state store."""
    journal_path("/", node_id)  # the same file-name rules as the journal (raises ValueError)
    return Path(state_dir) / "state" / f"{node_id}.sqlite"


def link_logs(runtime_dir: Path, state_dir: Path) -> Path:
    """Make ``<runtime_dir>/logs`` a link to ``<state_dir>/logs`` (made, mode 0700); return the link.

    A state dir that is the runtime dir (the old layout, chosen on purpose) keeps a plain
    directory. A plain directory left there by an older version is moved into the state dir's
    (a name taken there gets the suffix ``.from-runtime-dir``), then replaced by the link.
    Raises :class:`StateDirError` if that cannot be done.
    """
    try:
        return _link_logs(runtime_dir / "logs", Path(state_dir).absolute() / "logs")
    except OSError as exc:
        raise StateDirError(
            f"cannot make the logs dir {state_dir / 'logs'} and its link {runtime_dir / 'logs'}: "
            f"{exc}. Set orchestrator.state_dir to a directory this user can write"
        ) from None


def _link_logs(link: Path, target: Path) -> Path:
    if os.path.realpath(link.parent) == os.path.realpath(target.parent):
        link.mkdir(mode=0o700, exist_ok=True)
        return link
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return link
        _refuse_if_in_use(link)
        link.unlink()
    elif link.is_dir():
        _refuse_if_in_use(link)  # a running orchestrator's own logs dir (state dir = runtime dir)
        for item in link.iterdir():
            dest = target / item.name
            if dest.exists():
                dest = target / f"{item.name}.from-runtime-dir"
            shutil.move(item, dest)
        link.rmdir()
    link.symlink_to(target, target_is_directory=True)
    return link


def _refuse_if_in_use(link: Path) -> None:
    """Never re-point the logs link of a runtime dir whose orchestrator runs: its fleet's ``logs``
    would then read another state dir's. A second orchestrator on that runtime dir is refused at
    its bind anyway; this keeps it from changing anything before."""
    sock = link.parent / "nodes.sock"
    try:
        in_use = stat.S_ISSOCK(os.lstat(sock).st_mode) and ipc_path_in_use(sock)
    except (OSError, EndpointError):
        in_use = False  # nothing there, or nothing we can tell: the bind decides
    if in_use:
        where = os.readlink(link) if link.is_symlink() else link
        raise StateDirError(
            f"the runtime dir {link.parent} is in use by a running orchestrator (its logs are in "
            f"{where}); stop it (`orchestrator down`) or give this fleet its own runtime_dir"
        )


LOCK_FILE = ".lock"
"""In the state dir: flock'ed by the orchestrator that uses it; says its pid and runtime dir."""


class StateDirLock:
    """An orchestrator's hold on its state dir, for as long as it runs: one fleet per state dir.

    Why: the fleet-wide files in it (``logs/orchestrator.log``, ``zygote.log``, each child's
    ``s<N>.log``, which a fleet removes when its child ends) are named alike in every fleet, so
    two fleets on one state dir would write into and remove each other's logs, whatever their
    node ids. The lock is an ``flock``: the kernel frees it when the process ends, however it
    ends, so no stale lock is ever left behind.
    """

    def __init__(self, lock: PidLock) -> None:
        self._lock = lock
        self.path = lock.path

    @classmethod
    def acquire(cls, state_dir: Path, runtime_dir: Path) -> StateDirLock:
        """Hold ``state_dir`` (made if needed); :class:`StateDirError` if another orchestrator does."""
        path = Path(state_dir) / LOCK_FILE
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = PidLock.acquire(path, f"pid {os.getpid()}, runtime dir {runtime_dir}")
        except HeldElsewhere as exc:
            raise StateDirError(
                f"the state dir {state_dir} is in use by another orchestrator ({exc.holder}): each fleet "
                "needs a state dir of its own. Set orchestrator.state_dir for this fleet, or stop "
                "the other one"
            ) from None
        except OSError as exc:
            raise StateDirError(f"cannot use the state dir {state_dir}: {exc}") from None
        return cls(lock)

    def release(self) -> None:
        self._lock.release()


def file_system_type(path: str | Path) -> str | None:
    """The type of the file system ``path`` is on (from ``/proc/self/mounts``), None if unknown."""
    target = os.path.realpath(path)
    best, best_type = "", None
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):  # the last of equal mounts is on top
                    best, best_type = point, fields[2]
    except OSError:
        return None
    return best_type


def check_state_dir(runtime_dir: Path, state_dir: Path, node_ids: Iterable[str]) -> None:
    """The start-up checks of the module docstring: raise, or warn, or pass."""
    if os.path.realpath(runtime_dir) != os.path.realpath(state_dir):
        _refuse_files_left_behind(runtime_dir, state_dir, node_ids)
    fs_type = file_system_type(state_dir if state_dir.exists() else state_dir.parent)
    if fs_type in MEMORY_FILE_SYSTEMS:
        log.warning(
            "the state dir %s is on a %s: the nodes' journals and state stores survive a crash of "
            "a process, not of the machine (nor, under $XDG_RUNTIME_DIR, a logout). Set "
            "orchestrator.state_dir to a directory on disk",
            state_dir,
            fs_type,
        )


def _refuse_files_left_behind(runtime_dir: Path, state_dir: Path, node_ids: Iterable[str]) -> None:
    stranded = []
    for node_id in node_ids:
        old = [journal_path(runtime_dir, node_id), state_path(runtime_dir, node_id)]
        new = [journal_path(state_dir, node_id), state_path(state_dir, node_id)]
        if any(p.exists() for p in old) and not any(p.exists() for p in new):
            stranded.append(node_id)
    if not stranded:
        return
    q_state = shlex.quote(str(state_dir))
    found = " ".join(
        shlex.quote(str(runtime_dir / d)) for d in ("journal", "state") if (runtime_dir / d).is_dir()
    )
    raise StateDirError(
        f"node(s) {', '.join(repr(n) for n in stranded)}: journal or state store found in the "
        f"runtime dir {runtime_dir} (journal/, state/: where fleets kept them before the state dir "
        f"existed) and none in the state dir {state_dir}. Started now, they would start from "
        "nothing, their orders, positions and event sequence forgotten. Move them (with the "
        f"orchestrator stopped): mkdir -p {q_state} && mv {found} {q_state}/ "
        f"(if {state_dir} has no journal/ or state/ yet), or keep them where they are with "
        f'orchestrator.state_dir = "{runtime_dir}" (a tmpfs loses them at reboot)'
    )


__all__ = [
    "LOCK_FILE",
    "MEMORY_FILE_SYSTEMS",
    "StateDirError",
    "StateDirLock",
    "check_state_dir",
    "default_state_dir",
    "file_system_type",
    "link_logs",
    "state_path",
]
