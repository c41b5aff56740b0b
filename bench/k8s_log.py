"""Reading a k8s-file log back (pure): the bytes a CRI reader (kubelet, ``podman logs``)
shows for a stream, as a checksum, so that a log of hundreds of MB is checked without
being held in memory; and the checksum of what the logs scenario's payload wrote.

A record is ``<timestamp> <stream> <P|F> <content>\\n``: ``F`` ends a line of the
container's output, ``P`` is part of one, continued in the next record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DIGEST = "sha256"
CHUNK_LINES = 4096  # lines hashed at a time: a few hundred KB, however long the payload


class BadRecord(ValueError):
    pass


def stream_digest(records: Iterable[bytes], stream: bytes = b"stdout") -> tuple[str, int]:
    """The checksum of one stream's bytes, and how many bytes it had."""
    digest = hashlib.new(DIGEST)
    size = 0
    for record in records:
        parts = record.split(b" ", 3)
        if len(parts) != 4 or parts[2] not in (b"P", b"F") or not parts[3].endswith(b"\n"):
            raise BadRecord(record[:80])
        if parts[1] != stream:
            continue
        content = parts[3] if parts[2] == b"F" else parts[3][:-1]
        digest.update(content)
        size += len(content)
    return digest.hexdigest(), size


def payload_digest(count: int, length: int) -> tuple[str, int]:
    """The checksum and size of ``count`` lines of ``length`` bytes (``stamp lines``)."""
    digest = hashlib.new(DIGEST)
    line = b"x" * (length - 1) + b"\n"
    chunk = line * CHUNK_LINES
    whole, rest = divmod(count, CHUNK_LINES)
    for _ in range(whole):
        digest.update(chunk)
    digest.update(line * rest)
    return digest.hexdigest(), count * length
