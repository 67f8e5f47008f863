"""The per-node event journal (orchestrator.journal): format, recovery, policies, failures."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.journal import (
    FsyncMode,
    FsyncPolicy,
    Journal,
    JournalClosedError,
    JournalCorruptError,
    JournalError,
    JournalFailedError,
    JournalLockedError,
    JournalRecord,
    JournalVersionError,
    JournalWriteError,
    RecordTooLargeError,
    SequenceError,
    journal_path,
    read_journal,
    scan,
)
from orchestrator.journal import record as fmt

H = fmt.HEADER_SIZE


def event(seq: int, data: str = "x") -> bytes:
    """A payload shaped like a relayed event: msgpack ``[seq, ts, topic, type, data]``."""
    return msgpack.packb([seq, 1_700_000_000_000_000_000 + seq, "events.order", "OrderFilled", {"d": data}])


THREE = [(1, event(1)), (2, event(2, "yy")), (3, event(3, "last record"))]
LAST_RECORD_SIZE = H + len(THREE[-1][1])
FIVE = [(seq, event(seq, "m" * seq)) for seq in range(1, 6)]
MIDDLE = 2  # index in FIVE of the record damaged in the middle tests (seq 3)


def write(path: Path, records, fsync: str = "never") -> None:
    with Journal(path, fsync=fsync) as j:
        j.append_batch(records)


def offsets(records) -> list[int]:
    """Byte offset of each record, and the file size last."""
    out = [0]
    for _, payload in records:
        out.append(out[-1] + H + len(payload))
    return out


def flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return journal_path(tmp_path, "node-1")


# -- round trip and the basic API -----------------------------------------------------------------


def test_round_trip_single_and_batch_appends(path):
    with Journal(path) as j:
        assert (j.last_seq, j.record_count, j.size) == (0, 0, 0)
        assert j.append(1, event(1)) == 1
        assert j.append_batch([(2, bytearray(event(2))), (7, memoryview(event(7)))]) == 7
        assert j.append_batch([]) == 7  # an empty batch writes nothing
        assert (j.last_seq, j.durable_seq, j.record_count) == (7, 7, 3)
        got = list(j.read_from())
    assert got == [JournalRecord(1, event(1)), JournalRecord(2, event(2)), JournalRecord(7, event(7))]
    assert all(type(r.payload) is bytes for r in got)
    assert list(read_journal(path)) == got
    assert msgpack.unpackb(got[2].payload)[0] == 7
    assert path.stat().st_size == offsets([(s, p) for s, p in got])[-1]


def test_record_format_is_the_documented_layout(path):
    write(path, [(258, b"abc")])
    raw = path.read_bytes()
    assert raw == fmt.encode_record(258, b"abc")
    assert raw[:4] == b"\xc1J\x01\x00"
    assert int.from_bytes(raw[4:8], "little") == 3
    assert int.from_bytes(raw[8:16], "little") == 258
    import zlib

    assert int.from_bytes(raw[16:20], "little") == zlib.crc32(raw[:16] + b"abc")
    assert raw[20:] == b"abc"


def test_reopen_preserves_last_seq_and_refuses_older_seqs(path):
    write(path, THREE)
    with Journal(path) as j:
        assert (j.last_seq, j.durable_seq, j.record_count) == (3, 3, 3)
        assert j.recovery.truncated_bytes == 0
        with pytest.raises(SequenceError):
            j.append(3, b"dup")
        j.append(10, b"ten")
    with Journal(path) as j:
        assert j.last_seq == 10
        assert [r.seq for r in j.read_from()] == [1, 2, 3, 10]


def test_empty_journal_reopens_empty(path):
    Journal(path).close()
    with Journal(path) as j:
        assert j.last_seq == 0 and list(j.read_from()) == []


# -- sequence numbers -----------------------------------------------------------------------------


def test_seq_must_strictly_increase(path):
    with Journal(path) as j:
        with pytest.raises(SequenceError) as info:
            j.append(0, b"zero")  # seqs start at 1
        assert (info.value.seq, info.value.last_seq) == (0, 0)
        j.append(5, b"five")
        for bad in (5, 4, 1):
            with pytest.raises(SequenceError, match=f"seq {bad} refused, it must be greater than 5"):
                j.append(bad, b"again")
        assert str(path) in str(info.value)
        assert (j.last_seq, j.record_count, j.size) == (5, 1, H + 4)
    assert [r.seq for r in read_journal(path)] == [5]


def test_a_batch_with_a_bad_seq_writes_nothing(path):
    with Journal(path) as j:
        j.append(1, b"a")
        size = j.size
        with pytest.raises(SequenceError) as info:
            j.append_batch([(2, b"b"), (3, b"c"), (3, b"c again"), (4, b"d")])
        assert (info.value.seq, info.value.last_seq) == (3, 3)
        with pytest.raises(RecordTooLargeError):
            j.append_batch([(2, b"b"), (3, b"x" * (fmt.MAX_PAYLOAD_BYTES + 1))])
        assert (j.last_seq, j.size, path.stat().st_size) == (1, size, size)
        j.append_batch([(2, b"b"), (3, b"c")])
    assert [r.seq for r in read_journal(path)] == [1, 2, 3]


@pytest.mark.parametrize("seq", [True, 2.0, "3", None])
def test_seq_must_be_an_int(path, seq):
    with Journal(path) as j, pytest.raises(TypeError):
        j.append(seq, b"x")


def test_seq_and_payload_limits(path):
    with Journal(path, max_payload_bytes=8) as j:
        with pytest.raises(ValueError, match="64 bits"):
            j.append(2**64, b"x")
        with pytest.raises(RecordTooLargeError, match="9 bytes, over the 8-byte limit"):
            j.append_batch([(1, b"123456789")])
        with pytest.raises(TypeError, match="bytes-like"):
            j.append(1, "text")  # type: ignore[arg-type]
        j.append(2**64 - 1, b"12345678")  # the largest seq, a payload at the limit
    assert [r.seq for r in read_journal(path)] == [2**64 - 1]


# -- torn tails -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kept", range(LAST_RECORD_SIZE))
def test_torn_tail_at_every_byte_of_the_last_record_is_truncated(path, kept):
    write(path, THREE)
    boundary = offsets(THREE)[2]
    os.truncate(path, boundary + kept)
    with Journal(path) as j:
        assert (j.last_seq, j.record_count, j.size) == (2, 2, boundary)
        assert j.recovery.truncated_bytes == kept
        assert path.stat().st_size == boundary
        j.append(3, b"after recovery")
    assert list(read_journal(path)) == [
        *(JournalRecord(*r) for r in THREE[:2]),
        JournalRecord(3, b"after recovery"),
    ]


@pytest.mark.parametrize("index", range(LAST_RECORD_SIZE))
def test_last_record_with_a_bad_checksum_is_a_torn_tail(path, index):
    write(path, THREE)
    boundary = offsets(THREE)[2]
    flip(path, boundary + index)
    if index == 2:  # the version byte: 0x01 -> 0xFE reads as a newer format, never truncated
        with pytest.raises(JournalVersionError, match="newer orchestrator"):
            Journal(path)
        assert path.stat().st_size == offsets(THREE)[-1]
        return
    with Journal(path) as j:
        assert j.last_seq == 2 and j.recovery.truncated_bytes == LAST_RECORD_SIZE
        j.append(3, b"again")
    assert [r.seq for r in read_journal(path)] == [1, 2, 3]


@pytest.mark.parametrize("size", [1, 19, 20, 4096])
def test_zero_filled_tail_is_truncated(path, size):
    """A crash can leave the file longer than what reached the disk, the rest reading as zeros."""
    write(path, THREE)
    with open(path, "ab") as fh:
        fh.write(b"\0" * size)
    with Journal(path) as j:
        assert j.last_seq == 3 and j.recovery.truncated_bytes == size


def test_a_file_of_zeros_recovers_empty(path):
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"\0" * 100)
    with Journal(path) as j:
        assert j.last_seq == 0 and j.size == 0 and path.stat().st_size == 0


def test_impossible_length_at_the_tail_is_truncated(path):
    write(path, THREE)
    boundary = offsets(THREE)[2]
    data = bytearray(path.read_bytes())
    data[boundary + 4 : boundary + 8] = (fmt.MAX_PAYLOAD_BYTES + 1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with Journal(path) as j:
        assert j.last_seq == 2 and "impossible length" in j.recovery.reason


# -- corruption in the middle ---------------------------------------------------------------------


@pytest.mark.parametrize("index", range(H + len(FIVE[MIDDLE][1])))
def test_damage_in_the_middle_is_corruption_naming_file_and_offset(path, index):
    write(path, FIVE)
    at = offsets(FIVE)[MIDDLE]
    flip(path, at + index)
    before = path.read_bytes()
    with pytest.raises(JournalCorruptError) as info:
        Journal(path)
    err = info.value
    assert (err.path, err.offset, err.last_good_seq) == (str(path), at, 2)
    message = str(err)
    assert str(path) in message and f"byte offset {at}" in message
    if index != 2:  # (the version byte says "newer orchestrator" instead)
        assert err.next_valid_offset == offsets(FIVE)[MIDDLE + 1]
        assert "events after seq 2 are in doubt" in message and "backup" in message
        assert f"truncate -s {at} {path}" in message
    assert path.read_bytes() == before, "corruption must never be 'repaired' by truncation"
    with pytest.raises(JournalCorruptError):
        list(read_journal(path))


def test_impossible_length_in_the_middle_is_corruption(path):
    write(path, FIVE)
    at = offsets(FIVE)[MIDDLE]
    data = bytearray(path.read_bytes())
    data[at + 4 : at + 8] = (2**32 - 1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=f"corrupt at byte offset {at}: impossible length"):
        Journal(path)


def test_a_repeated_seq_in_the_file_is_corruption(path):
    path.parent.mkdir(mode=0o700)
    path.write_bytes(fmt.encode_record(1, b"a") + fmt.encode_record(2, b"b") + fmt.encode_record(2, b"b"))
    with pytest.raises(JournalCorruptError, match="seq 2 does not follow seq 2") as info:
        Journal(path)
    assert info.value.offset == 2 * (H + 1)


def test_a_file_that_is_not_a_journal_is_refused_not_wiped(path):
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"[fleet]\nname = 'oops, wrong file'\n")
    with pytest.raises(JournalCorruptError, match="does not start with a journal record"):
        Journal(path)
    assert path.read_bytes().startswith(b"[fleet]")


def test_a_reader_refuses_a_file_that_is_not_a_journal_like_its_owner_does(path):
    """``read_journal`` (``events`` with no orchestrator) said nothing and read nothing from a file
    that ``Journal`` (``up``) refuses: a reader must say it is no journal."""
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"[fleet]\nname = 'oops, wrong file'\n")
    with pytest.raises(
        JournalCorruptError, match="byte offset 0: the file does not start with a journal record"
    ):
        list(read_journal(path))
    path.write_bytes(b"\0" * 100)  # what a crash can leave: a torn first record, no corruption
    assert list(read_journal(path)) == []
    path.write_bytes(fmt.encode_record(1, b"first one being written")[:9])  # a first write in progress
    assert list(read_journal(path)) == []


def test_a_newer_format_version_is_refused_not_wiped(path):
    write(path, THREE)
    size = path.stat().st_size
    with open(path, "ab") as fh:  # a newer orchestrator appended a version-2 record
        fh.write(b"\xc1J\x02\x00" + bytes(40))
    with pytest.raises(JournalVersionError, match="format version 2") as info:
        Journal(path)
    assert (info.value.offset, info.value.last_good_seq) == (size, 3)
    assert path.stat().st_size == size + 44


# -- reading --------------------------------------------------------------------------------------


def test_read_from_returns_seqs_at_or_after_since(path):
    seqs = list(range(2, 2 * (3 * scan.INDEX_STRIDE + 7), 2))  # several index strides, gaps of 2
    with Journal(path) as j:
        j.append_batch((s, event(s)) for s in seqs)
        for since in (0, 1, 2, 3, 1000, 2048, 2049, seqs[-1], seqs[-1] + 1, 10**9):
            got = list(j.read_from(since))
            assert [r.seq for r in got] == [s for s in seqs if s >= since], since
            assert all(r.payload == event(r.seq) for r in got)
    assert [r.seq for r in read_journal(path, since=2049)] == [s for s in seqs if s >= 2049]


def test_read_from_across_read_windows_and_large_payloads(path):
    big = [(s, bytes([s]) * (300_000 * s)) for s in range(1, 6)]  # 0.3..1.5 MB, past the 1 MiB window
    with Journal(path, fsync="never") as j:
        j.append_batch(big)
        assert list(j.read_from(1)) == [JournalRecord(*r) for r in big]
    with Journal(path) as j:
        assert j.last_seq == 5 and list(j.read_from(4)) == [JournalRecord(*r) for r in big[3:]]


def test_read_from_is_a_snapshot_and_refuses_use_after_close(path):
    j = Journal(path)
    j.append_batch(THREE)
    it = j.read_from(1)
    assert next(it).seq == 1
    j.append(4, b"later")
    assert [r.seq for r in it] == [2, 3]  # what was there when read_from was called
    it = j.read_from(1)
    j.close()
    with pytest.raises(JournalClosedError):
        next(it)
    with pytest.raises(JournalClosedError):
        j.read_from(1)
    with pytest.raises(JournalClosedError):
        j.append(5, b"x")
    j.close()  # idempotent


def test_read_from_verifies_checksums_again(path):
    with Journal(path) as j:
        j.append_batch(FIVE)
        flip(path, offsets(FIVE)[3] + H)  # damage after open: found by the read, not hidden
        with pytest.raises(JournalCorruptError) as info:
            list(j.read_from(1))
        assert (info.value.offset, info.value.last_good_seq) == (offsets(FIVE)[3], 3)


def test_read_journal_while_a_write_is_in_progress(path):
    write(path, THREE)
    with open(path, "ab") as fh:
        fh.write(fmt.encode_record(4, b"half written")[:25])
    assert [r.seq for r in read_journal(path)] == [1, 2, 3]
    assert path.stat().st_size == offsets(THREE)[-1] + 25, "a reader never truncates"
    with pytest.raises(FileNotFoundError):
        read_journal(path.with_name("other.journal"))


# -- ownership and permissions --------------------------------------------------------------------


def test_only_one_owner_at_a_time(path):
    with Journal(path):
        with pytest.raises(JournalLockedError, match="already open"):
            Journal(path)
    with Journal(path) as j:
        assert j.last_seq == 0


def test_files_are_0600_in_a_0700_directory(tmp_path):
    p = journal_path(tmp_path / "run", "n")
    with Journal(p):
        pass
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    os.chmod(p.parent, 0o755)
    os.chmod(p, 0o644)
    with Journal(p):
        pass
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("node", ["", "../x", "a/b", ".hidden", "a..b", "x" * 129, 7])
def test_journal_path_refuses_unsafe_node_ids(tmp_path, node):
    with pytest.raises(ValueError, match="cannot name a journal file"):
        journal_path(tmp_path, node)


def test_journal_path_layout(tmp_path):
    assert journal_path(tmp_path, "btc-mm.1") == tmp_path / "journal" / "btc-mm.1.journal"


def test_a_directory_is_not_a_journal(tmp_path):
    (tmp_path / "journal" / "n.journal").mkdir(parents=True)
    with pytest.raises((JournalError, IsADirectoryError)):
        Journal(journal_path(tmp_path, "n"))


# -- fsync policies -------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["always", "batch", "batch:1", "never", FsyncPolicy.batch(1000)])
def test_every_policy_is_durable_across_a_clean_close(path, policy):
    with Journal(path, fsync=policy) as j:
        j.append(1, b"one")
        j.append_batch([(2, b"two"), (3, b"three")])
    with Journal(path) as j:
        assert j.last_seq == 3
        assert [r.payload for r in j.read_from()] == [b"one", b"two", b"three"]


class Syncs:
    """Counts fdatasync calls (and can make them fail)."""

    def __init__(self, monkeypatch, fail: bool = False) -> None:
        self.count = 0
        self.fail = fail
        real = os.fdatasync

        def fake(fd):
            self.count += 1
            if self.fail:
                raise OSError(errno.EIO, "injected I/O error")
            real(fd)

        monkeypatch.setattr(os, "fdatasync", fake)


def test_always_syncs_once_per_append_call(path, monkeypatch):
    with Journal(path, fsync="always") as j:
        syncs = Syncs(monkeypatch)
        j.append(1, b"a")
        j.append_batch([(2, b"b"), (3, b"c"), (4, b"d")])
        assert syncs.count == 2 and j.durable_seq == 4
    assert syncs.count == 2  # nothing left to sync on close


def test_never_does_not_sync(path, monkeypatch):
    syncs = Syncs(monkeypatch)
    with Journal(path, fsync="never") as j:
        j.append_batch(THREE)
        j.append(4, b"d")
        assert j.durable_seq == 0 and j.last_seq == 4
    assert syncs.count == 0


def test_batch_syncs_at_most_every_interval(path, monkeypatch):
    now = [100.0]
    with Journal(path, fsync="batch:10", clock=lambda: now[0]) as j:
        syncs = Syncs(monkeypatch)
        j.append(1, b"a")  # opened at t=100: the interval has not passed
        now[0] += 0.005
        j.append(2, b"b")
        assert (syncs.count, j.durable_seq, j.last_seq) == (0, 0, 2)
        assert j.sync_if_due() is False
        now[0] += 0.006  # 11 ms since the last sync
        j.append(3, b"c")
        assert (syncs.count, j.durable_seq) == (1, 3)
        j.append(4, b"d")
        now[0] += 0.010
        assert j.sync_if_due() is True and (syncs.count, j.durable_seq) == (2, 4)
        now[0] += 1
        assert j.sync_if_due() is False  # nothing pending
        j.append(5, b"e")  # long idle: synced at once
        assert (syncs.count, j.durable_seq) == (3, 5)
        now[0] += 0.001
        j.append(6, b"f")
        j.sync()
        assert (syncs.count, j.durable_seq) == (4, 6)
        j.append(7, b"g")
    assert syncs.count == 5  # close syncs what is pending


def test_policy_parsing():
    assert FsyncPolicy.parse("always") == FsyncPolicy.always() == FsyncPolicy()
    assert FsyncPolicy.parse(" Never ") == FsyncPolicy.never()
    assert FsyncPolicy.parse("batch") == FsyncPolicy.batch()
    assert FsyncPolicy.parse("batch:5") == FsyncPolicy.parse("batch:5ms") == FsyncPolicy(FsyncMode.BATCH, 5)
    assert str(FsyncPolicy.batch(2.5)) == "batch:2.5" and str(FsyncPolicy.always()) == "always"
    for bad in ("sometimes", "always:5", "batch:", "batch:0", "batch:-1", "batch:nan", "batch:x"):
        with pytest.raises(ValueError):
            FsyncPolicy.parse(bad)
    with pytest.raises(TypeError):
        FsyncPolicy.parse(5)  # type: ignore[arg-type]


# -- write and sync failures ----------------------------------------------------------------------


def test_a_failed_write_is_undone_and_the_journal_stays_usable(path, monkeypatch):
    real_write = os.write
    with Journal(path) as j:
        j.append(1, b"first")

        def half_then_enospc(fd, data):
            monkeypatch.setattr(os, "write", real_write)
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", half_then_enospc)
        with pytest.raises(JournalWriteError, match="nothing of this append was stored"):
            j.append_batch([(2, b"second" * 10), (3, b"third" * 10)])
        assert (j.last_seq, j.size, path.stat().st_size) == (1, H + 5, H + 5)
        j.append(2, b"second")
    assert [r.seq for r in read_journal(path)] == [1, 2]


def test_a_write_that_cannot_be_undone_fails_the_journal_until_reopened(path, monkeypatch):
    real_write = os.write
    j = Journal(path)
    j.append(1, b"first")

    def half_then_eio(fd, data):
        monkeypatch.setattr(os, "write", real_write)
        real_write(fd, bytes(data)[:7])
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(os, "write", half_then_eio)
    monkeypatch.setattr(os, "ftruncate", lambda fd, n: (_ for _ in ()).throw(OSError(errno.EIO, "no")))
    with pytest.raises(JournalFailedError, match="could not be undone"):
        j.append(2, b"second")
    monkeypatch.undo()
    with pytest.raises(JournalFailedError, match="refusing to append"):
        j.append(3, b"third")
    j.close()
    with Journal(path) as j:  # recovery cuts the 7 torn bytes
        assert j.last_seq == 1 and j.recovery.truncated_bytes == 7


def test_a_failed_fsync_fails_the_journal(path, monkeypatch):
    j = Journal(path)
    j.append(1, b"first")
    syncs = Syncs(monkeypatch, fail=True)
    with pytest.raises(JournalFailedError, match="fdatasync failed"):
        j.append(2, b"second")
    assert (j.last_seq, j.durable_seq) == (2, 1)
    with pytest.raises(JournalFailedError):
        j.append(3, b"third")
    with pytest.raises(JournalFailedError):
        j.sync()
    j.close()  # does not try to sync again
    assert syncs.count == 1 and j.closed


# -- property: recovery after any cut is a prefix -------------------------------------------------

appends = st.lists(  # append calls, each a batch of (seq step, payload)
    st.lists(st.tuples(st.integers(1, 3), st.binary(max_size=40)), min_size=1, max_size=6),
    min_size=1,
    max_size=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=appends, data=st.data())
def test_recovery_after_any_cut_is_exactly_a_prefix(calls, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = journal_path(tmp, "prop")
        appended: list[tuple[int, bytes]] = []
        seq = 0
        with Journal(path, fsync="never") as j:
            for call in calls:
                batch = []
                for step, payload in call:
                    seq += step
                    batch.append((seq, payload))
                j.append_batch(batch)
                appended.extend(batch)
        ends = offsets(appended)[1:]
        cut = data.draw(st.integers(0, ends[-1]), label="cut")
        tail = data.draw(
            st.one_of(st.just(b""), st.binary(min_size=1, max_size=64).map(lambda b: b"\0" * len(b)))
            if cut < len(fmt.START)  # garbage there is "not a journal", tested on its own
            else st.one_of(st.just(b""), st.binary(max_size=64)),
            label="tail",
        )
        os.truncate(path, cut)
        with open(path, "ab") as fh:
            fh.write(tail)
        whole = sum(1 for end in ends if end <= cut)

        try:
            j = Journal(path, fsync="never")
        except JournalVersionError as err:
            # Garbage that reads as a header of another format version, right where a record
            # starts, is refused by design (a newer orchestrator's records are never cut off).
            raw = path.read_bytes()
            assert err.offset == ([0, *ends][whole]) and raw[err.offset : err.offset + 2] == fmt.MAGIC
            assert raw[err.offset + 2] not in (0, fmt.VERSION) and len(raw) == cut + len(tail)
            return
        with j:
            got = [tuple(r) for r in j.read_from(0)]
            assert got == appended[: len(got)], "recovered records must be a prefix of what was appended"
            if not tail:
                assert len(got) == whole
            else:  # garbage may by chance complete a cut record exactly; never more than that
                assert whole <= len(got) <= whole + 1
            assert j.last_seq == (got[-1][0] if got else 0)
            assert j.size == path.stat().st_size == (ends[len(got) - 1] if got else 0)
            j.append(j.last_seq + 1, b"next")
        assert [tuple(r) for r in read_journal(path)] == [*got, (got[-1][0] + 1 if got else 1, b"next")]
