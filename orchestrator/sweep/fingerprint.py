"""Fingerprints of the data files a sweep reads, so that ``--resume`` sees one that changed.

Why: a run's id hashes its resolved config, and the config names a data file by its path, not
by its contents. Fix a bad row in a CSV and resume, and the runs done before the fix would be
ranked with the ones done after, with nothing to tell them apart. So each data file gets a
fingerprint (size, mtime_ns, a digest of its contents), each run row records one digest of
the contents of the files it read (``run_digest``), and a resume compares.

The content digest is what decides: a file touched, or copied back unchanged, is not a change.
Size and mtime_ns only let a resume skip reading a file again when both are what they were
(hashing a multi-GB file on every resume would be slow); a rewrite that keeps both the size and
the nanosecond mtime (``rsync -t`` of an equal-sized file) is the one change this misses.
BLAKE2b reads at roughly 1 GB/s here, so a fresh sweep pays about a second per GB of data.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

Print = tuple[int, int, str]  # (size, mtime_ns, content digest)
RACY_NS = 2_000_000_000


def data_files(doc: dict, base_dir: Path | str) -> tuple[str, ...]:
    """The absolute paths of the data files a run's config reads, in config order."""
    out = []
    for table in doc.get("data") or ():
        if isinstance(table, dict) and isinstance(table.get("path"), str):
            path = Path(table["path"])
            out.append(os.path.abspath(path if path.is_absolute() else Path(base_dir) / path))
    return tuple(out)


def fingerprint(path: str, known: Print | None = None) -> Print:
    """The file's fingerprint; ``known`` is reused when size and mtime_ns are unchanged.

    The stat is taken before the read: a file written during the read gets a newer mtime than
    the one recorded here, so the next resume reads it again rather than trusting this digest.
    """
    st = os.stat(path)
    if known is not None and (known[0], known[1]) == (st.st_size, st.st_mtime_ns):
        return known
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    # A file modified within the last RACY_NS may be modified again with the same mtime (the
    # kernel stamps files with a coarse clock): record no mtime, so the next check reads it.
    racy = time.time_ns() - st.st_mtime_ns < RACY_NS
    return (st.st_size, -1 if racy else st.st_mtime_ns, digest)


def fingerprints(paths, known: dict[str, Print], on_progress=None) -> dict[str, Print]:
    """path -> fingerprint for every distinct path; ``on_progress(done, total)`` after each."""
    unique = sorted(set(paths))
    out = {}
    for i, path in enumerate(unique, start=1):
        out[path] = fingerprint(path, known.get(path))
        if on_progress is not None:
            on_progress(i, len(unique))
    return out


def run_digest(files: tuple[str, ...], prints: dict[str, Print]) -> str:
    """One digest of the contents a run reads ("" for a run on generated data only).

    Contents only, not paths: a sweep directory moved elsewhere as a whole is the same data.
    """
    if not files:
        return ""
    h = hashlib.blake2b(digest_size=8)
    for path in files:
        h.update(prints[path][2].encode() + b"\n")
    return h.hexdigest()
