"""Relaying one of the container's output pipes to a sink, byte for byte.

One task per stream keeps the order within the stream; reads take whatever the pipe holds
(up to 64 KiB), so binary data and a last line without a newline pass through unchanged.
"""

from __future__ import annotations

import os

from shim.stdio.sink import Sink

READ_SIZE = 65536


async def relay(pipe_fd: int, sink: Sink) -> int:
    """Copy ``pipe_fd`` to ``sink`` until EOF (every writer gone); return the byte count.

    The pipe fd is closed at the end. If the sink's reader went away, the pipe is still
    drained, so the container never blocks on a full pipe.
    """
    import trio

    total = 0
    os.set_blocking(pipe_fd, False)
    try:
        while True:
            try:
                data = os.read(pipe_fd, READ_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(pipe_fd)
                continue
            if not data:
                return total
            total += len(data)
            await sink.write_all(data)
            # A container that writes without pause must not starve the reaper and the
            # stop timers: yield to the scheduler once per chunk.
            await trio.lowlevel.checkpoint()
    finally:
        # notify_closing wakes nobody here (this task was the only waiter), but trio wants
        # to hear about every fd it may have registered before the fd goes away.
        trio.lowlevel.notify_closing(pipe_fd)
        os.close(pipe_fd)
