"""Reading logs back, byte-exact: the CRI (k8s-file) format and journalctl's export format."""

from __future__ import annotations

import os
import subprocess


def decode_k8s(text: bytes) -> dict[bytes, bytes]:
    """The bytes of each stream, as a CRI reader (kubelet, podman logs) shows them: ``P``
    records join, an ``F`` record ends a line."""
    streams = {b"stdout": b"", b"stderr": b""}
    for record in text.split(b"\n")[:-1]:
        stamp, stream, tag, content = record.split(b" ", 3)
        assert tag in (b"P", b"F"), record[:80]
        streams[stream] += content + (b"\n" if tag == b"F" else b"")
    return streams


def k8s_files(path: str) -> list[str]:
    """The log and its backups, oldest first."""
    backups = sorted((int(name.rsplit(".", 1)[1]), name) for name in os.listdir(os.path.dirname(path))
                     if name.startswith(os.path.basename(path) + ".") and name.rsplit(".", 1)[1].isdigit())
    return [os.path.join(os.path.dirname(path), name) for _, name in reversed(backups)] + [path]


def parse_export(data: bytes) -> list[dict[str, bytes]]:
    """journalctl -o export: fields ``KEY=value`` or ``KEY\\n<le64 size><bytes>``, entries
    separated by an empty line."""
    entries: list[dict[str, bytes]] = []
    entry: dict[str, bytes] = {}
    i = 0
    while i < len(data):
        end = data.index(b"\n", i)
        line = data[i:end]
        if not line:
            entries.append(entry)
            entry = {}
            i = end + 1
            continue
        key, eq, value = line.partition(b"=")
        if eq:
            entry[key.decode()] = value
            i = end + 1
        else:
            size = int.from_bytes(data[end + 1:end + 9], "little")
            entry[line.decode()] = data[end + 9:end + 9 + size]
            i = end + 9 + size + 1
    if entry:
        entries.append(entry)
    return entries


def journal_streams(journal, *matches: str, size: int = 0, timeout: float = 120) -> dict[bytes, bytes]:
    """The container's output from the journal: every MESSAGE, in order, by PRIORITY; once
    it holds ``size`` bytes in all (journald writes a big backlog a while after it got it)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(journal.argv("journalctl", "-D", "/run/log/journal", "-o", "export", *matches),
                             capture_output=True, check=True).stdout
        streams = {b"stdout": b"", b"stderr": b""}
        for entry in parse_export(out):
            streams[b"stdout" if entry["PRIORITY"] == b"6" else b"stderr"] += entry["MESSAGE"]
        if sum(map(len, streams.values())) >= size or time.monotonic() > deadline:
            return streams
        time.sleep(0.2)


def payload_data(size: int, line: int, seed: int) -> bytes:
    """Random bytes (NULs, invalid UTF-8, carriage returns) with a newline every ``line``
    bytes and none at the end: deterministic for a seed."""
    import random

    data = bytearray(random.Random(seed).randbytes(size).replace(b"\n", b"\r"))
    for i in range(line - 1, size - 1, line):
        data[i] = 0x0A
    return bytes(data)
