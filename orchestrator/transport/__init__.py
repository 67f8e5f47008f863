"""ZeroMQ for the orchestrator: sockets, endpoints, keys, and trio access to them.

- ``sockets``: factories for the node ROUTER/DEALER, event PUB/SUB and control ROUTER/DEALER;
- ``trio_socket.TrioSocket``: one socket used from trio (non-blocking first, edge-trigger safe);
- ``sequencing``: per-topic sequence numbers on the PUB so subscribers detect drops;
- ``runtime_dir``: the 0700 runtime dir and ipc endpoints inside it;
- ``curve``: CURVE keys, mandatory for tcp endpoints;
- ``options``: the socket options (LINGER, HWM, MAXMSGSIZE) and ``new_context()``.
"""

from .curve import (
    CurveKeyPair,
    configure_client,
    configure_server,
    generate_keypair,
    load_public_key,
    load_server_keys,
    write_server_keys,
)
from .endpoints import bind, connect, scheme_of
from .errors import (
    CurveKeyError,
    EndpointError,
    EndpointInUseError,
    PeerUnreachableError,
    RuntimeDirError,
    TransportError,
)
from .options import DEFAULT_OPTIONS, SocketOptions, apply_options, new_context
from .runtime_dir import (
    IPC_PATH_MAX_BYTES,
    check_ipc_path,
    claim_ipc_path,
    default_runtime_dir,
    ensure_runtime_dir,
    ipc_endpoint,
    ipc_path,
    ipc_path_in_use,
    remove_ipc_file,
)
from .sequencing import GapDetector, SequencedPublisher, SequenceHeaderError, pack_header, unpack_header
from .sockets import (
    control_dealer,
    control_router,
    event_pub,
    event_sub,
    node_dealer,
    node_router,
    slot_identity,
)
from .trio_socket import CHECKPOINT_EVERY, TrioSocket

__all__ = [
    "CHECKPOINT_EVERY",
    "DEFAULT_OPTIONS",
    "IPC_PATH_MAX_BYTES",
    "CurveKeyError",
    "CurveKeyPair",
    "EndpointError",
    "EndpointInUseError",
    "GapDetector",
    "PeerUnreachableError",
    "RuntimeDirError",
    "SequenceHeaderError",
    "SequencedPublisher",
    "SocketOptions",
    "TransportError",
    "TrioSocket",
    "apply_options",
    "bind",
    "check_ipc_path",
    "claim_ipc_path",
    "configure_client",
    "configure_server",
    "connect",
    "control_dealer",
    "control_router",
    "default_runtime_dir",
    "ensure_runtime_dir",
    "event_pub",
    "event_sub",
    "generate_keypair",
    "ipc_endpoint",
    "ipc_path",
    "ipc_path_in_use",
    "load_public_key",
    "load_server_keys",
    "new_context",
    "node_dealer",
    "node_router",
    "pack_header",
    "remove_ipc_file",
    "scheme_of",
    "slot_identity",
    "unpack_header",
    "write_server_keys",
]
