"""The engine's pipes: ``_OCI_SYNCPIPE``, ``_OCI_STARTPIPE`` and ``_OCI_ATTACHPIPE``.

The engine passes them as fd numbers in the environment. podman makes them SEQPACKET
socketpairs, CRI-O stream sockets and plain pipes; reads and writes here work on all
three (one ``read`` of the start pipe, whole messages written in one ``write``).

Messages on the sync pipe are conmon's, byte for byte: one JSON object per line,
``{"data": N}`` or ``{"data": N, "message": "..."}`` (``pid`` or ``exit_code`` for the
legacy API), the message escaped the way conmon escapes it. ``encode`` is pure.
"""

from __future__ import annotations

import errno
import os

from shim.conmon.options import MonitorError

SYNC_PIPE, START_PIPE, ATTACH_PIPE = "_OCI_SYNCPIPE", "_OCI_STARTPIPE", "_OCI_ATTACHPIPE"
START_READ_SIZE = 8192  # conmon's BUF_SIZE
MESSAGE_MAX = START_READ_SIZE - 1  # conmon reads the runtime's stderr into a buffer of that size


def escape(text: str) -> str:
    """conmon's JSON string escaping: backslash, quote, \\n and \\t, other controls as
    \\u00XX, and the text ends at a NUL (conmon's message is a C string). conmon leaves 0x1f
    raw, which no JSON decoder accepts; here it is escaped like the other controls."""
    out = []
    for c in text:
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif "\x00" < c < "\x20" or c == "\x7f":
            out.append(f"\\u00{ord(c):02x}")
        elif c == "\x00":
            break  # conmon's message is a C string
        else:
            out.append(c)
    return "".join(out)


def encode(key: str, value: int, message: str | None = None) -> bytes:
    """One sync-pipe message (pure)."""
    if message is None:
        return f'{{"{key}": {value}}}\n'.encode()
    return f'{{"{key}": {value}, "message": "{escape(message[:MESSAGE_MAX])}"}}\n'.encode("utf-8", "replace")


def fd_from_env(env: dict[str, str], name: str) -> int | None:
    """The fd number in ``$name``, made close-on-exec, or None when the engine passed none."""
    text = env.get(name)
    if text is None:
        return None
    word = text.strip()
    if not word.isascii() or not word.isdigit():
        raise MonitorError(f"unable to parse {name}={text!r}")
    fd = int(word)
    try:
        os.set_inheritable(fd, False)
    except OSError as e:
        raise MonitorError(f"{name}={fd}: {e.strerror}") from None
    return fd


class EnginePipe:
    """One of the engine's pipes, written by the monitor. A reader that went away costs
    the message, never the monitor (conmon closes the fd silently on EPIPE too)."""

    def __init__(self, fd: int | None, key: str) -> None:
        self.fd = fd
        self.key = key
        self.gone = False  # the engine closed its end: nobody is listening any more

    def send(self, value: int, message: str | None = None) -> bool:
        """Write one message; False when nobody could read it."""
        if self.fd is None:
            return False
        data = encode(self.key, value, message)
        try:
            while data:
                data = data[os.write(self.fd, data):]
            return True
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
                raise
            self.gone = True
            self.close()
            return False

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def wait_for_start(fd: int, what: str = "start") -> bool:
    """Block until the engine writes to the start pipe; False if it closed it unwritten
    (the engine is gone: nothing may be started on its behalf)."""
    while True:
        try:
            return len(os.read(fd, START_READ_SIZE)) > 0
        except InterruptedError:
            continue
        except OSError as e:
            raise MonitorError(f"{what} pipe: read failed: {e.strerror}") from None
