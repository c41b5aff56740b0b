"""The container's first output, read before trio is ready.

trio is imported while the container starts (shim.process.trio_import.TrioLoader). What
the container writes meanwhile must not wait in its pipe: a log record's timestamp is the
time its chunk was read (``podman logs --since`` compares against it), an attach client
should see output as it comes, and a container that writes more than a pipe holds would
stop. So the main thread reads the pipes itself until trio is imported, keeping each chunk
with the time it was read, and the output path replays them, in order, before it reads on.
Above ``EARLY_LIMIT`` bytes it stops reading: the container waits for trio.
"""

from __future__ import annotations

import os
import select
import time

EARLY_LIMIT = 4 * 1024 * 1024
READ_SIZE = 65536


class EarlyChunk:
    __slots__ = ("stream", "data", "received_ns")

    def __init__(self, stream: int, data: bytes, received_ns: int) -> None:
        self.stream = stream
        self.data = data
        self.received_ns = received_ns


def capture_until_ready(pipes: dict[int, int], ready_fd: int, before_read=None,
                        also: dict | None = None, on_output=None) -> tuple[list[EarlyChunk], set[int]]:
    """Read ``pipes`` ({fd: stream}) until ``ready_fd`` is readable; return the chunks read
    and the fds that reached EOF (already closed here). ``also`` ({fd: callback}): other
    fds that must be served meanwhile (the control fifos, the container's notify socket),
    each callback reads its own, and returns False to be left alone from then on (the
    fd stays open: trio takes it over). ``on_output()`` is called after each chunk read
    (not at EOF: a systemd payload closes its stdio as it starts)."""
    chunks: list[EarlyChunk] = []
    closed: set[int] = set()
    also = also or {}
    poller = select.poll()
    poller.register(ready_fd, select.POLLIN)
    for fd in list(pipes) + list(also):
        poller.register(fd, select.POLLIN)
    total = 0
    while True:
        events = poller.poll()
        if any(fd == ready_fd for fd, _ in events):
            return chunks, closed
        for fd, _ in events:
            if fd in also:
                if also[fd]() is False:
                    poller.unregister(fd)
                continue
            if before_read is not None:
                before_read()
            try:
                data = os.read(fd, READ_SIZE)
            except OSError:  # EIO: a pty whose other side is gone for good
                data = b""
            if not data:
                poller.unregister(fd)
                os.close(fd)
                closed.add(fd)
                continue
            chunks.append(EarlyChunk(pipes[fd], data, time.time_ns()))
            total += len(data)
            if on_output is not None:
                on_output()
        if total >= EARLY_LIMIT:
            for fd in pipes:
                if fd not in closed:
                    poller.unregister(fd)
            total = -1  # nothing more is read: the pipes fill up and the container waits
