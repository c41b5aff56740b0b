"""Relaying one of the container's output pipes into the output path, byte for byte.

One task per stream keeps the order within the stream; reads take whatever the pipe holds
(up to 64 KiB), so binary data and a last line without a newline pass through unchanged.
"""

from __future__ import annotations

import os

READ_SIZE = 65536


async def relay(pipe_fd: int, stream: int, output) -> int:
    """Copy ``pipe_fd`` into ``output`` as ``stream`` until EOF (every writer gone);
    return the byte count. The pipe fd is closed at the end."""
    import trio

    total = 0
    os.set_blocking(pipe_fd, False)
    try:
        while True:
            output.before_read()
            try:
                data = os.read(pipe_fd, READ_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(pipe_fd)
                continue
            except OSError:  # EIO: a terminal whose other side is gone for good
                return total
            if not data:
                return total
            total += len(data)
            await output.write(stream, data)
            # A container that writes without pause must not starve the reaper and the
            # stop timers: yield to the scheduler once per chunk.
            await trio.lowlevel.checkpoint()
    finally:
        # notify_closing wakes nobody here (this task was the only waiter), but trio wants
        # to hear about every fd it may have registered before the fd goes away.
        trio.lowlevel.notify_closing(pipe_fd)
        os.close(pipe_fd)
