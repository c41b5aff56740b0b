"""The CRI log format (``k8s-file``), and a log file that rotates without losing a byte.

Format (what podman's and kubelet's readers parse): one record per line,
``<timestamp> <stdout|stderr> <F|P> <bytes>\\n``, the timestamp in local time with a
numeric offset and nine fractional digits (``2026-11-30T21:04:05.123456789+01:00``), one
timestamp per chunk read from the container. ``F`` closes a line (its newline is not in
the bytes); ``P`` is part of a line that goes on, and a line longer than a chunk becomes
``P ... P F``. A container that ends in the middle of a line gets a closing, empty ``F``
record, so that readers that wait for ``F`` show the line at all (conmon before 2.1.13
left it open, conmon#252); like any ``F``, it reads as the end of a line.

Formatting is pure (``RecordFormatter``); ``K8sFileLog`` writes the records of one chunk
with one ``write`` (a reader following the file never sees half a record), and at
``max_size`` renames the file to ``<path>.1`` (older backups shift to ``.2``... up to
``max_files``) and starts a new one: the file is never truncated, so ``--log-size-max``
costs old files, never the lines being written. A full disk is reported once; the bytes
that could not be written are counted and reported when the container is gone.
"""

from __future__ import annotations

import os
import time

from shim.stdio.output import STDERR, STDOUT, Destination

_STREAM_WORDS = {STDOUT: b"stdout", STDERR: b"stderr"}


def timestamp(ns: int, utc_offset: int, tm: tuple) -> bytes:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+HH:MM`` (pure): ``tm`` is the local broken-down
    time of ``ns``, ``utc_offset`` its offset from UTC in seconds."""
    sign = "+" if utc_offset >= 0 else "-"
    hours, minutes = divmod(abs(utc_offset) // 60, 60)
    return (f"{tm[0]:04d}-{tm[1]:02d}-{tm[2]:02d}T{tm[3]:02d}:{tm[4]:02d}:{tm[5]:02d}."
            f"{ns % 1_000_000_000:09d}{sign}{hours:02d}:{minutes:02d}").encode()


def now_timestamp(ns: int | None = None) -> bytes:
    """The timestamp of ``ns`` (time.time_ns()), or of now."""
    if ns is None:
        ns = time.time_ns()
    local = time.localtime(ns // 1_000_000_000)
    return timestamp(ns, local.tm_gmtoff, tuple(local))


class RecordFormatter:
    """Chunks of a stream in, records out (pure); remembers, per stream, whether the last
    record left a line open."""

    def __init__(self) -> None:
        self._open_line = {STDOUT: False, STDERR: False}

    def joined(self, stream: int, data: bytes, stamp: bytes) -> bytes:
        """The records of ``data``, one per line (or part of a line), joined: built by one
        ``replace`` in C, not a bytes object per line (for 100-byte lines, that was most
        of the CPU a gigabyte of output cost the shim)."""
        prefix = stamp + b" " + _STREAM_WORDS[stream]
        end = data.rfind(b"\n")
        tail = data[end + 1:]
        parts = []
        if end >= 0:
            full = prefix + b" F "
            parts += (full, data[:end].replace(b"\n", b"\n" + full), b"\n")
        if tail:
            parts += (prefix, b" P ", tail, b"\n")
        self._open_line[stream] = bool(tail)
        return b"".join(parts)

    def close(self, stream: int, stamp: bytes) -> list[bytes]:
        """The closing ``F`` of a line left open, if any."""
        if not self._open_line[stream]:
            return []
        self._open_line[stream] = False
        return [stamp + b" " + _STREAM_WORDS[stream] + b" F \n"]


def split_records(joined: bytes) -> list[bytes]:
    """Joined records apart again (pure), for a rotation that must fall between two of
    them: no record holds a newline but its last byte."""
    return [record + b"\n" for record in joined.split(b"\n")[:-1]]


def plan_writes(records: list[bytes], written: int, max_size: int) -> list[list[bytes]]:
    """Split records into the groups each file gets (pure): a new file starts before the
    record that would take the current one over ``max_size`` (never before the first
    record of a file, so an oversized record still gets written). ``max_size <= 0``: one
    file."""
    if max_size <= 0:
        return [records]
    groups: list[list[bytes]] = [[]]
    for record in records:
        if written > 0 and written + len(record) > max_size:
            groups.append([])
            written = 0
        groups[-1].append(record)
        written += len(record)
    return groups


def backup_names(path: str, max_files: int) -> list[tuple[str, str]]:
    """The renames of one rotation, oldest first (pure): ``path.N-1`` -> ``path.N`` ...
    ``path`` -> ``path.1``. With ``max_files == 0`` nothing is kept."""
    if max_files <= 0:
        return []
    names = [path] + [f"{path}.{i}" for i in range(1, max_files + 1)]
    return [(names[i], names[i + 1]) for i in reversed(range(max_files))]


class K8sFileLog(Destination):
    """A k8s-file log (a destination of the output path)."""

    name = "k8s-file"

    def __init__(self, path: str, diagnostics, max_size: int = -1, max_files: int = 1,
                 global_max_size: int = -1, sync_at_end: bool = True) -> None:
        self.path = path
        self._diagnostics = diagnostics
        self._max_size = max_size
        self._max_files = max_files
        self._global_max = global_max_size
        self._sync_at_end = sync_at_end
        self._formatter = RecordFormatter()
        self._fd = -1
        self._written = 0  # bytes in the current file
        self.total = 0  # bytes written over the whole run
        self.lost = 0  # bytes that could not be written (full disk, I/O errors)
        self._warned = False
        self._open()

    def _open(self) -> None:
        # O_APPEND: a restarted container's log goes on where the last run ended.
        # O_NOFOLLOW: the log's directory may be one the container can write to (a bind
        # mount); a symlink it planted at the path must not have its output appended to
        # whatever file it names.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        self._written = os.fstat(self._fd).st_size

    def _open_again(self, after: str) -> None:
        """A new file at the path; if none can be opened, the rest of the output is not
        logged (counted, and said once) rather than the supervision failing."""
        try:
            self._open()
        except OSError as e:
            self._fd = -1
            self._fail(0, f"cannot reopen the log {self.path} after {after} ({e.strerror}); "
                          "the rest of the output is not logged")

    async def write(self, stream: int, data: bytes, received_ns: int | None = None) -> None:
        stamp = now_timestamp(received_ns)
        records = self._formatter.joined(stream, data, stamp)
        if self._max_size > 0 and self._written + len(records) > self._max_size:
            self.write_records(split_records(records))  # a rotation falls between two of them
        else:
            self._write(records)

    def write_records(self, records: list[bytes]) -> None:
        for i, group in enumerate(plan_writes(records, self._written, self._max_size)):
            if i > 0:
                self.rotate()
            self._write(b"".join(group))

    def _write(self, data: bytes) -> None:
        if self._fd < 0:  # no file could be opened again (said once already)
            self.lost += len(data)
            return
        if self._global_max >= 0 and self.total + len(data) > self._global_max:
            self._fail(len(data), f"the log reached --log-global-size-max ({self._global_max} bytes); "
                                  "the rest of the output is not logged")
            return
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                self._written += n
                self.total += n
        except OSError as e:
            self._fail(len(view), f"writing the log {self.path} failed ({e.strerror})")

    def _fail(self, count: int, message: str) -> None:
        self.lost += count
        if not self._warned:
            self._warned = True
            self._diagnostics.warning(message + "; the container keeps running")

    def rotate(self) -> None:
        """Start a new file; the full one becomes the first backup (never truncated)."""
        if self._fd < 0:
            return
        try:
            if self._sync_at_end:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            if self._max_files <= 0:
                os.unlink(self.path)
            for old, new in backup_names(self.path, self._max_files):
                try:
                    os.rename(old, new)
                except FileNotFoundError:
                    pass
        except OSError as e:
            self._diagnostics.warning(f"rotating the log {self.path} failed ({e.strerror}); writing on")
        if self._fd < 0:
            self._open_again("a rotation")

    def reopen(self) -> None:
        """Another program renamed the file (an engine's own rotation): start a new one."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._open_again("the engine's rotation")

    async def finish(self) -> None:
        stamp = now_timestamp()
        self.write_records(self._formatter.close(STDOUT, stamp) + self._formatter.close(STDERR, stamp))
        if self._sync_at_end and self._fd >= 0:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
        if self.lost:
            self._diagnostics.warning(f"{self.lost} bytes of the container's output could not be written "
                                      f"to {self.path}")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
