"""CURVE keys for ``tcp://`` endpoints: generate, store, load, and configure sockets with them.

ipc endpoints are protected by the 0700 runtime dir; a tcp port is reachable by anyone who can
route to it, so tcp is only allowed with CURVE (encryption, and the client authenticates the
server by its public key).

What CURVE without a ZAP handler does *not* do: authenticate clients. libzmq accepts any client
that completes the handshake with the server's public key, so the public key file must be shared
only with trusted clients (it is written mode 0600 too). Allow-listing client keys needs a ZAP
handler and is not implemented here.

Key files are a small text format of our own, one ``key = value`` per line with Z85 keys: the secret
file holds ``public-key`` and ``secret-key``, the public file only ``public-key``. Loading a secret
file readable by group or others is refused, as ssh does.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

from .errors import CurveKeyError

SECRET_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


@dataclass(frozen=True, slots=True)
class CurveKeyPair:
    """A CURVE keypair as Z85 bytes (40 characters each)."""

    public: bytes
    secret: bytes

    def __repr__(self) -> str:  # never print a secret key into a log
        return f"CurveKeyPair(public={self.public!r}, secret=<hidden>)"


def _require_curve() -> None:
    if not zmq.has("curve"):
        raise CurveKeyError("this libzmq was built without CURVE; install a pyzmq wheel with libsodium/curve")


def _check_key(key: bytes, what: str, origin: str) -> bytes:
    try:
        decoded = z85.decode(key)
    except (ValueError, KeyError, IndexError, TypeError):
        decoded = b""
    if len(key) != 40 or len(decoded) != 32:
        raise CurveKeyError(f"{origin}: {what} is not a 40-character Z85 CURVE key")
    return key


def generate_keypair() -> CurveKeyPair:
    """A new random keypair (``zmq.curve_keypair``)."""
    _require_curve()
    public, secret = zmq.curve_keypair()
    return CurveKeyPair(public, secret)


def write_server_keys(directory: str | os.PathLike, name: str = "server") -> CurveKeyPair:
    """Generate a server keypair into ``<directory>/<name>.key`` (secret) and ``<name>.pub``.

    Both files are created mode 0600 and never overwritten: an existing file is an error, because
    replacing a server key silently locks every client out.
    """
    directory = Path(directory)
    pair = generate_keypair()
    secret_path = directory / f"{name}{SECRET_SUFFIX}"
    public_path = directory / f"{name}{PUBLIC_SUFFIX}"
    for path in (secret_path, public_path):
        if path.exists():
            raise CurveKeyError(f"{path} already exists; load it with load_server_keys() or remove it first")
    _write_private(secret_path, f"public-key = {pair.public.decode()}\nsecret-key = {pair.secret.decode()}\n")
    _write_private(public_path, f"public-key = {pair.public.decode()}\n")
    return pair


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _read_fields(path: Path) -> dict[str, bytes]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CurveKeyError(f"cannot read CURVE key file {path}: {exc.strerror}") from None
    fields: dict[str, bytes] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CurveKeyError(f"{path}: line {line!r} is not 'name = value'")
        fields[key.strip()] = value.strip().encode()
    return fields


def load_server_keys(path: str | os.PathLike) -> CurveKeyPair:
    """Load a secret key file written by ``write_server_keys`` (refused if group/other can read it)."""
    _require_curve()
    path = Path(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        raise CurveKeyError(
            f"cannot read CURVE key file {path}: {exc.strerror}; create one with write_server_keys()"
        ) from None
    if mode & 0o077:
        raise CurveKeyError(
            f"{path} has mode {mode:04o}; a secret key must not be readable by others: chmod 600 {path}"
        )
    fields = _read_fields(path)
    if "public-key" not in fields or "secret-key" not in fields:
        raise CurveKeyError(f"{path}: expected 'public-key' and 'secret-key' lines (is this the .pub file?)")
    return CurveKeyPair(
        _check_key(fields["public-key"], "public-key", str(path)),
        _check_key(fields["secret-key"], "secret-key", str(path)),
    )


def load_public_key(path: str | os.PathLike) -> bytes:
    """Load the server's public key (from either the ``.pub`` or the ``.key`` file)."""
    _require_curve()
    path = Path(path)
    fields = _read_fields(path)
    if "public-key" not in fields:
        raise CurveKeyError(f"{path}: expected a 'public-key = ...' line")
    return _check_key(fields["public-key"], "public-key", str(path))


def configure_server(sock: zmq.Socket, keys: CurveKeyPair) -> None:
    """Make ``sock`` a CURVE server; call before ``bind``."""
    _require_curve()
    _check_key(keys.secret, "secret key", "server keys")
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)


def configure_client(
    sock: zmq.Socket, server_public_key: bytes, client_keys: CurveKeyPair | None = None
) -> None:
    """Make ``sock`` a CURVE client of the server with ``server_public_key``; call before ``connect``.

    The client's own keypair is ephemeral unless given (the server does not check it; see module doc).
    A wrong server key makes the handshake fail: the client just never gets a connection.
    """
    _require_curve()
    _check_key(server_public_key, "server public key", "client configuration")
    client_keys = client_keys or generate_keypair()
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, client_keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, client_keys.secret)
