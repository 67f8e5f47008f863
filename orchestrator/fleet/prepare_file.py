"""The file from which every spare builds the fleet's nodes ahead (``orchestrator.child.prepared``).

One ``prepare`` message (node id -> ``assign.config``, exactly what an ``assign`` of the node
carries) in ``<runtime_dir>/prepare.msgpack``, mode 0600, written once when the orchestrator
starts (the fleet's configs do not change while it runs) and removed when it ends. Each spare is
given its path (``--prepare``) and reads it before its hello, so a spare that is ready has also
prepared. A file rather than a message on the socket: the parent cannot send to a child before
its hello, and a hello that arrives before the nodes are built would make a spare "ready" that
then keeps an assign waiting behind that work.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from orchestrator.fleet.config import OrchestratorConfig
from orchestrator.protocol import codec, messages
from orchestrator.protocol.limits import MAX_FRAME_BYTES, MAX_PREPARED_NODES

log = logging.getLogger("orchestrator")

PREPARE_FILE = "prepare.msgpack"


def write_prepare_file(config: OrchestratorConfig, runtime_dir: Path) -> Path | None:
    """Write the file for ``config``'s nodes (the first ``MAX_PREPARED_NODES``); its path, or None.

    None, and spares build each node at its assign as before, for a fleet with no node, one whose
    configs would fill a good part of a frame (never in practice), or a file that cannot be
    written (an optimisation: the fleet runs without it).
    """
    specs = config.nodes[:MAX_PREPARED_NODES]
    if not specs:
        return None
    frame = codec.encode(messages.prepare({spec.node_id: config.assign_config(spec) for spec in specs}))
    if len(frame) > MAX_FRAME_BYTES // 4:
        log.info("the fleet's configs are too large to prepare spares with (%d bytes)", len(frame))
        return None
    path = runtime_dir / PREPARE_FILE
    try:
        with open(path, "wb", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
            fh.write(frame)  # buffered: all of it, or an OSError
    except OSError as exc:
        log.warning("cannot write %s (spares will not build the nodes ahead): %s", path, exc)
        return None
    return path


def remove_prepare_file(runtime_dir: Path) -> None:
    (runtime_dir / PREPARE_FILE).unlink(missing_ok=True)


__all__ = ["PREPARE_FILE", "remove_prepare_file", "write_prepare_file"]
