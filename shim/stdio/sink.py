"""Writing to the shim's own stdout/stderr without blocking the event loop.

The shim's fds 1 and 2 are shared with whoever started it (a terminal and its shell, a
journal stream, a pipe to ``less``). Setting O_NONBLOCK on them would change the open file
description for everybody (a classic way to break the parent shell), yet a blocking write
to a consumer that stopped reading must not freeze the shim's stop timers. So:
- a pipe, FIFO or terminal is reopened through ``/proc/self/fd/N``: a new open file
  description of the same object, whose O_NONBLOCK is the shim's alone;
- a socket (systemd's journal stream) is written with ``MSG_DONTWAIT`` per call;
- a regular file or /dev/null is written as is (such writes do not wait on a reader);
- anything else (a terminal the shim may not reopen, say after ``sudo -u``) is written
  from a worker thread, so only that thread waits.
A write that fails for good (EPIPE, EIO from a hung-up terminal, ENOSPC...) marks the sink
broken: the container's output is still drained, and dropped, so the container never
blocks on a full pipe.
"""

from __future__ import annotations

import errno
import os
import stat

DIRECT, NONBLOCKING, SOCKET, THREAD = "direct", "nonblocking", "socket", "thread"


class Writer:
    """A never-blocking (or thread-written) way to one of the shim's stdio fds."""

    def __init__(self, fd: int, kind: str, owned: bool = False, sock=None) -> None:
        self.fd = fd
        self.kind = kind
        self._owned = owned
        self._sock = sock

    @classmethod
    def open(cls, fd: int) -> "Writer":
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return cls(fd, DIRECT)
        if stat.S_ISREG(mode) or stat.S_ISCHR(mode) and _is_devnull(fd):
            return cls(fd, DIRECT)
        if stat.S_ISSOCK(mode):
            import _socket

            sock = _socket.socket(fileno=os.dup(fd))
            return cls(sock.fileno(), SOCKET, sock=sock)
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            try:
                flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
                return cls(os.open(f"/proc/self/fd/{fd}", flags), NONBLOCKING, owned=True)
            except OSError:
                pass
        return cls(fd, THREAD)

    def try_write(self, data) -> int:
        """Write what fits now; raises BlockingIOError when nothing does (never blocks,
        except for DIRECT and THREAD kinds, whose writes are blocking by nature)."""
        if self._sock is not None:
            import _socket

            return self._sock.send(data, _socket.MSG_DONTWAIT | _socket.MSG_NOSIGNAL)
        return os.write(self.fd, data)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        elif self._owned:
            os.close(self.fd)


def _is_devnull(fd: int) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(os.devnull))
    except OSError:
        return False


class Sink:
    """Where one of the container's streams goes; ``await write_all(data)``."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.error: OSError | None = None  # set once a write failed for good

    @classmethod
    def open(cls, fd: int) -> "Sink":
        return cls(Writer.open(fd))

    @property
    def broken(self) -> bool:
        return self.error is not None

    async def write_all(self, data: bytes) -> None:
        import trio

        view = memoryview(data)
        while view and self.error is None:
            try:
                if self.writer.kind == THREAD:
                    written = await trio.to_thread.run_sync(os.write, self.writer.fd, view, abandon_on_cancel=True)
                else:
                    written = self.writer.try_write(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.writer.fd)
                continue
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                self.error = e
                return
            view = view[written:]

    def close(self) -> None:
        self.writer.close()


class OwnStdio:
    """``shim run``'s output: the container's stdout to the shim's stdout, its stderr to the
    shim's stderr (``stderr`` is the writer the shim's own messages share; its owner closes
    it). A destination of the output path (see shim.stdio.output)."""

    name = "passthrough"

    def __init__(self, stderr: Writer, diagnostics) -> None:
        from shim.stdio.output import STDERR, STDOUT

        self._diagnostics = diagnostics
        self._sinks = {STDOUT: Sink.open(1), STDERR: Sink(stderr)}

    async def write(self, stream: int, data: bytes, received_ns: int | None = None) -> None:
        await self._sinks[stream].write_all(data)

    async def finish(self) -> None:
        from shim.stdio.output import STREAM_NAMES

        for stream, sink in self._sinks.items():
            if sink.error is not None:
                self._diagnostics.warning(f"writing the container's {STREAM_NAMES[stream]} failed "
                                          f"({sink.error.strerror}); the rest of it was dropped")

    def close(self) -> None:
        from shim.stdio.output import STDOUT

        self._sinks[STDOUT].close()
