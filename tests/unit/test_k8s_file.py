"""The CRI log format and rotation (pure parts, and the file writer on a temp dir)."""

import os
import re

import pytest
import trio
from hypothesis import given, strategies as st

from shim.diagnostics import Diagnostics
from shim.logs.k8s_file import K8sFileLog, RecordFormatter, backup_names, plan_writes, split_records, timestamp
from shim.stdio.output import STDERR, STDOUT

STAMP = b"2026-11-30T21:04:05.000000001+01:00"
# podman 4.3.1's parser (libpod/logs/log.go): split on spaces, >= 4 fields, this time layout.
PODMAN_TIME = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")


def podman_reads(records: list[bytes]) -> dict[bytes, bytes]:
    """What `podman logs` prints, per stream: P without a newline, F with one."""
    out = {b"stdout": b"", b"stderr": b""}
    for record in records:
        assert record.endswith(b"\n") and record.count(b"\n") == 1
        fields = record[:-1].split(b" ")
        assert len(fields) >= 4 and PODMAN_TIME.match(fields[0]), record
        assert fields[2] in (b"P", b"F")
        out[fields[1]] += b" ".join(fields[3:]) + (b"\n" if fields[2] == b"F" else b"")
    return out


def test_timestamp_is_local_time_with_offset_and_nine_digits():
    tm = (2026, 11, 30, 21, 4, 5)
    assert timestamp(1_000_000_000 * 10 + 1, 3600, tm) == STAMP
    assert timestamp(5, -5 * 3600 - 30 * 60, tm).endswith(b".000000005-05:30")


def test_lines_partials_and_the_closing_record():
    f = RecordFormatter()
    assert split_records(f.joined(STDOUT, b"one\ntwo\nthr", STAMP)) == [
        STAMP + b" stdout F one\n", STAMP + b" stdout F two\n", STAMP + b" stdout P thr\n"]
    assert split_records(f.joined(STDOUT, b"ee\n", STAMP)) == [STAMP + b" stdout F ee\n"]
    assert f.close(STDOUT, STAMP) == []
    assert split_records(f.joined(STDERR, b"no newline", STAMP)) == [STAMP + b" stderr P no newline\n"]
    assert f.close(STDERR, STAMP) == [STAMP + b" stderr F \n"]  # four fields: podman parses it
    assert f.close(STDERR, STAMP) == []


@given(st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"")), max_size=20))
def test_podman_reads_back_every_byte(chunks):
    f = RecordFormatter()
    records = [r for chunk in chunks if chunk for r in split_records(f.joined(STDOUT, chunk, STAMP))]
    records += f.close(STDOUT, STAMP)
    data = b"".join(chunks)
    expected = data if data.endswith(b"\n") or not data else data + b"\n"  # CRI: F ends a line
    assert podman_reads(records)[b"stdout"] == expected


def records_one_by_one(stream: int, data: bytes, stamp: bytes) -> list[bytes]:
    """The CRI records of a chunk, the obvious way: a record per line, a P for the rest."""
    prefix = stamp + (b" stdout" if stream == STDOUT else b" stderr")
    lines = data.split(b"\n")
    return [prefix + b" F " + line + b"\n" for line in lines[:-1]] + ([prefix + b" P " + lines[-1] + b"\n"]
                                                                     if lines[-1] else [])


@given(st.lists(st.tuples(st.sampled_from([STDOUT, STDERR]), st.binary(max_size=200)), max_size=20))
def test_joined_records_are_the_records_one_by_one(chunks):
    f = RecordFormatter()
    for stream, chunk in chunks:
        joined = f.joined(stream, chunk, STAMP)
        assert joined == b"".join(records_one_by_one(stream, chunk, STAMP))
        assert split_records(joined) == records_one_by_one(stream, chunk, STAMP)
        # a line left open is closed, and only then
        assert f.close(stream, STAMP) == ([STAMP + b" " + (b"stdout" if stream == STDOUT else b"stderr") + b" F \n"]
                                          if chunk and not chunk.endswith(b"\n") else [])


def test_a_rotation_inside_a_chunk_falls_between_its_records(tmp_path):
    log = K8sFileLog(str(tmp_path / "ctr.log"), Diagnostics(), max_size=100, max_files=2)
    trio.run(log.write, STDOUT, b"x" * 40 + b"\n" + b"y" * 40 + b"\n")  # two records of over 50 bytes
    log.close()
    first, second = (tmp_path / "ctr.log.1").read_bytes(), (tmp_path / "ctr.log").read_bytes()
    assert first.endswith(b"F " + b"x" * 40 + b"\n") and second.endswith(b"F " + b"y" * 40 + b"\n")


@given(st.lists(st.integers(min_value=1, max_value=50), max_size=30), st.integers(min_value=0, max_value=80),
       st.integers(min_value=-1, max_value=120))
def test_rotation_groups(sizes, written, max_size):
    records = [b"x" * n for n in sizes]
    groups = plan_writes(records, written, max_size)
    assert [r for g in groups for r in g] == records  # nothing lost, order kept
    if max_size > 0:
        for i, group in enumerate(groups):
            start = written if i == 0 else 0
            total = start + sum(map(len, group))
            assert total <= max_size or len(group) <= 1 or (i == 0 and start == 0 and len(group) == 1)


def test_backup_names_shift_oldest_first():
    assert backup_names("/l", 3) == [("/l.2", "/l.3"), ("/l.1", "/l.2"), ("/l", "/l.1")]
    assert backup_names("/l", 1) == [("/l", "/l.1")]
    assert backup_names("/l", 0) == []


def test_the_file_rotates_by_renaming_never_truncating(tmp_path):
    path = str(tmp_path / "ctr.log")
    log = K8sFileLog(path, Diagnostics(), max_size=200, max_files=2)
    for i in range(20):
        log.write_records(split_records(RecordFormatter().joined(STDOUT, f"line {i:02d}\n".encode(), STAMP)))
    log.close()
    files = [path + s for s in ("", ".1", ".2")]
    assert all(os.path.exists(f) for f in files) and not os.path.exists(path + ".3")
    texts = [open(f, "rb").read() for f in reversed(files)]
    lines = [l for t in texts for l in t.splitlines()]
    numbers = [int(l.split()[-1]) for l in lines]
    assert numbers == sorted(numbers) and numbers[-1] == 19  # the newest lines, in order
    assert all(len(t) <= 200 for t in texts)
    assert all(t.startswith(STAMP) for t in texts)  # every file starts with a whole record


def test_the_log_appends_across_runs(tmp_path):
    path = str(tmp_path / "ctr.log")
    for i in range(2):
        log = K8sFileLog(path, Diagnostics())
        log.write_records([STAMP + b" stdout F run%d\n" % i])
        log.close()
    assert open(path, "rb").read().count(b"\n") == 2
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_global_limit_stops_logging_once_and_counts_the_rest(tmp_path, capfd):
    path = str(tmp_path / "ctr.log")
    log = K8sFileLog(path, Diagnostics(), global_max_size=100)
    for _ in range(5):
        log.write_records([b"x" * 39 + b"\n"])
    log.close()
    assert os.path.getsize(path) == 80 and log.lost == 120
    assert capfd.readouterr().err.count("log-global-size-max") == 1


# The log's directory may be one the container can write to (a bind mount): a symlink
# planted at the log's path must never be followed, or the container's output would be
# appended to whatever file it names.

def test_a_symlink_at_the_log_path_is_not_opened(tmp_path):
    target = tmp_path / "precious"
    target.write_bytes(b"keep\n")
    os.symlink(target, tmp_path / "ctr.log")
    with pytest.raises(OSError):
        K8sFileLog(str(tmp_path / "ctr.log"), Diagnostics())
    assert target.read_bytes() == b"keep\n"


def write_line(log, data: bytes) -> None:
    log.write_records(split_records(log._formatter.joined(STDOUT, data, STAMP)))


def test_a_symlink_planted_before_a_reopen_is_not_followed(tmp_path, capfd):
    path, target = tmp_path / "ctr.log", tmp_path / "precious"
    target.write_bytes(b"keep\n")
    log = K8sFileLog(str(path), Diagnostics())
    os.rename(path, tmp_path / "ctr.log.old")  # the engine's own rotation...
    os.symlink(target, path)  # ...and the container's symlink in its place
    log.reopen()
    write_line(log, b"after\n")
    log.close()
    assert target.read_bytes() == b"keep\n"
    assert log.lost > 0
    warnings = [l for l in capfd.readouterr().err.splitlines() if "ctr.log" in l]
    assert len(warnings) == 1 and "cannot reopen" in warnings[0], warnings


def test_a_symlink_planted_during_a_rotation_is_not_followed(tmp_path, monkeypatch, capfd):
    path, target = tmp_path / "ctr.log", tmp_path / "precious"
    target.write_bytes(b"keep\n")
    log = K8sFileLog(str(path), Diagnostics(), max_size=100, max_files=1)
    real_rename = os.rename

    def rename_and_plant(old, new):  # the container wins the race between rename and open
        real_rename(old, new)
        if old == str(path):
            os.symlink(target, path)

    monkeypatch.setattr(os, "rename", rename_and_plant)
    for i in range(10):
        write_line(log, b"line %d of the container's output\n" % i)
    log.close()
    assert target.read_bytes() == b"keep\n"
    assert log.lost > 0 and log.total > 0
