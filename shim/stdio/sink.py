"""Writing to the shim's own stdout/stderr without blocking the event loop.

The shim's fds 1 and 2 are shared with whoever started it (a terminal and its shell, a
journal stream, a pipe to ``less``). Setting O_NONBLOCK on them would change the open file
description for everybody (a classic way to break the parent shell), yet a blocking write
to a consumer that stopped reading must not freeze the shim's stop timers. So:
- a pipe, FIFO or terminal is reopened through ``/proc/self/fd/N``: a new open file
  description of the same object, whose O_NONBLOCK is the shim's alone;
- a socket (systemd's journal stream) is written with ``MSG_DONTWAIT`` per call;
- a regular file or /dev/null is written as is (such writes do not wait on a reader).
"""

from __future__ import annotations

import errno
import os
import stat


class Sink:
    """A writer for one of the shim's stdio fds; ``await write_all(data)``."""

    def __init__(self, fd: int, owned: bool, send=None) -> None:
        self.fd = fd
        self._owned = owned
        self._send = send  # socket.send with MSG_DONTWAIT, for sockets
        self.broken = False  # the reader went away (EPIPE): further output is dropped

    @classmethod
    def open(cls, fd: int) -> "Sink":
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return cls(fd, owned=False)
        if stat.S_ISSOCK(mode):
            import socket

            sock = socket.socket(fileno=os.dup(fd))
            return cls(sock.fileno(), owned=False, send=_SocketSender(sock))
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            try:
                flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
                return cls(os.open(f"/proc/self/fd/{fd}", flags), owned=True)
            except OSError:
                pass
        return cls(fd, owned=False)

    async def write_all(self, data: bytes) -> None:
        import trio

        view = memoryview(data)
        while view and not self.broken:
            try:
                written = self._send(view) if self._send else os.write(self.fd, view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.fd)
                continue
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                    self.broken = True
                    return
                raise
            view = view[written:]

    def close(self) -> None:
        if self._send is not None:
            self._send.close()
        elif self._owned:
            os.close(self.fd)


class _SocketSender:
    def __init__(self, sock) -> None:
        import socket

        self._sock = sock
        self._flags = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL

    def __call__(self, view) -> int:
        return self._sock.send(view, self._flags)

    def close(self) -> None:
        self._sock.close()
