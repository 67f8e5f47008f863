"""The private runtime directory that holds the ipc socket files, and endpoints inside it.

Policy for the directory (mode 0700, owned by us, a real directory):

- If it does not exist it is created (parents too) and then ``chmod``-ed to exactly 0700, whatever
  the umask.
- If it exists with looser permissions, another owner, or as a symlink, it is **refused**, not
  fixed. Whoever could enter it while it was open may already have planted a socket file or a
  symlink in it, and tightening the mode afterwards would hide that; the error says how to fix it
  (``chmod 700`` after checking its content, or choose another directory).

ipc socket files are not removed by libzmq when a bound socket closes (measured with 4.3.5) and a
killed process leaves them behind, so ``remove_ipc_file`` is called on shutdown and
``claim_ipc_path`` before binding: libzmq would otherwise silently unlink and take over the path
of another *live* orchestrator.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
from pathlib import Path

from .errors import EndpointError, EndpointInUseError, RuntimeDirError

IPC_PATH_MAX_BYTES = 107
"""``sizeof(sockaddr_un.sun_path) - 1`` on Linux: the longest ipc socket path libzmq can bind."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def default_runtime_dir(name: str = "orchestrator") -> Path:
    """``$XDG_RUNTIME_DIR/<name>`` if the session has one, else ``<tmp>/<name>-<uid>``.

    Both are short enough for ipc paths, unlike a deep project directory.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / name
    return Path(tempfile.gettempdir()) / f"{name}-{os.geteuid()}"


def ensure_runtime_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` with mode 0700, or check that an existing one is private; return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        _check_private(path)
        return path
    os.chmod(path, 0o700)  # the umask may have removed bits; it can never have added any
    return path


def _check_private(path: Path) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise RuntimeDirError(f"runtime dir {path} is a symlink; use a real directory (or remove the link)")
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(
            f"runtime dir {path} exists and is not a directory; remove it or choose another"
        )
    if st.st_uid != os.geteuid():
        raise RuntimeDirError(
            f"runtime dir {path} is owned by uid {st.st_uid}, not by this user ({os.geteuid()}); "
            "choose another directory"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode != 0o700:
        raise RuntimeDirError(
            f"runtime dir {path} has mode {mode:04o}, expected 0700: others may have placed files in it. "
            f"Check its content, then run `chmod 700 {path}`, or choose another directory"
        )


def check_ipc_path(path: str | os.PathLike) -> None:
    """Raise ``EndpointError`` if ``path`` is too long to be a unix socket path."""
    size = len(os.fsencode(path))
    if size > IPC_PATH_MAX_BYTES:
        raise EndpointError(
            f"ipc path {os.fspath(path)!r} is {size} bytes; unix socket paths are limited to "
            f"{IPC_PATH_MAX_BYTES} bytes: use a shorter runtime dir (e.g. default_runtime_dir())"
        )


def ipc_endpoint(runtime_dir: str | os.PathLike, name: str) -> str:
    """``ipc://<runtime_dir>/<name>.sock``, with ``name`` restricted to ``[A-Za-z0-9_.-]``."""
    if not _NAME.fullmatch(name):
        raise EndpointError(f"ipc endpoint name {name!r} must match [A-Za-z0-9][A-Za-z0-9_.-]*")
    path = Path(runtime_dir) / f"{name}.sock"
    check_ipc_path(path)
    return f"ipc://{path}"


def ipc_path(endpoint: str) -> Path | None:
    """The filesystem path of an ``ipc://`` endpoint, or None for any other scheme."""
    if endpoint.startswith("ipc://"):
        return Path(endpoint[len("ipc://") :])
    return None


def claim_ipc_path(path: str | os.PathLike) -> None:
    """Make ``path`` free for a bind: remove a stale socket file, refuse one that is alive.

    A unix-socket ``connect`` tells the two apart: a live listener accepts, a file left by a dead
    process gives ``ECONNREFUSED``. Anything that is not a socket is never deleted.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise EndpointError(f"{path} exists and is not a socket; remove it or choose another endpoint name")
    if not ipc_path_in_use(path):
        path.unlink(missing_ok=True)
        return
    raise EndpointInUseError(
        f"{path} is in use by another live process (another orchestrator on the same runtime dir?); "
        "stop it or use another runtime dir"
    )


def ipc_path_in_use(path: str | os.PathLike) -> bool:
    """True if a live process listens on the unix socket ``path`` (False: none, or a stale file).

    A ``connect`` tells the two apart: a live listener accepts, a file left by a dead process gives
    ``ECONNREFUSED``. Raises :class:`EndpointError` if it cannot tell.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        raise EndpointError(f"cannot check whether {path} is in use: {exc}") from None
    finally:
        probe.close()
    return True


def remove_ipc_file(endpoint: str) -> None:
    """Delete the socket file of an ``ipc://`` endpoint after its socket is closed (no-op otherwise)."""
    path = ipc_path(endpoint)
    if path is not None:
        path.unlink(missing_ok=True)
