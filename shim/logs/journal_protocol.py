"""systemd's native journal protocol (encoding is pure; ``JournalSocket`` sends).

An entry is one datagram to ``/run/systemd/journal/socket``: fields ``KEY=value\\n``, or,
for a value that holds a newline (or any byte a text field cannot), ``KEY\\n`` followed by
the value's length as a 64-bit little-endian number, the value, and ``\\n``. An entry too
big for a datagram goes in a sealed memfd passed with ``SCM_RIGHTS`` (journald reads it from
there). Keys are upper-case letters, digits and underscores, not starting with ``_`` (the
journal adds those fields itself, from the sender's credentials: ``_PID`` is the sender's).
"""

from __future__ import annotations

import errno
import os
import sys

import _socket as socket

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"
# syslog priorities, as journald's PRIORITY field takes them
PRIORITIES = {"error": 3, "warning": 4, "info": 6, "debug": 7}
_KEY_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_KEY_CHARS = _KEY_FIRST | {"_"}


def valid_key(key: str) -> bool:
    return 0 < len(key) <= 64 and key[0] in _KEY_FIRST and all(c in _KEY_CHARS for c in key)


def encode_field(key: str, value: bytes) -> bytes:
    """One field (pure)."""
    if b"\n" in value:
        return key.encode() + b"\n" + len(value).to_bytes(8, "little") + value + b"\n"
    return key.encode() + b"=" + value + b"\n"


def encode_entry(fields: list[tuple[str, bytes]]) -> bytes:
    """A whole entry (pure); ValueError for a key the journal would reject."""
    for key, _ in fields:
        if not valid_key(key):
            raise ValueError(f"not a journal field name: {key!r}")
    return b"".join(encode_field(key, value) for key, value in fields)


def syslog_line(priority: int, identifier: str, pid: int, message: str) -> bytes:
    """An RFC 3164 datagram for /dev/log (facility daemon), without a timestamp: the
    receiver adds its own (pure)."""
    facility_daemon = 3
    return f"<{facility_daemon * 8 + priority}>{identifier}[{pid}]: {message}".encode("utf-8", "replace")


class JournalSocket:
    """A datagram socket to the journal; ``send`` never blocks (EAGAIN goes to the caller)."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)

    def send(self, entry: bytes, connected: bool = False) -> None:
        """Send one entry; raises BlockingIOError when the journal has no room now, and
        OSError when there is no journal. ``connected``: the socket was connected to the
        journal (so that poll() can tell when it has room)."""
        try:
            if connected:
                self.sock.send(entry)
            else:
                self.sock.sendto(entry, self.path)
        except OSError as e:
            if e.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            self._send_in_memfd(entry, connected)

    def _send_in_memfd(self, entry: bytes, connected: bool) -> None:
        fd = os.memfd_create("journal-entry", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(entry)
            while view:
                view = view[os.write(fd, view):]
            import fcntl

            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            rights = fd.to_bytes(4, sys.byteorder, signed=True)
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)]
            if connected:
                self.sock.sendmsg([], ancillary)
            else:
                self.sock.sendmsg([], ancillary, 0, self.path)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.sock.close()


class SystemLog:
    """The monitor's own messages, to the journal (or to syslog where there is no journal):
    conmon's ``--syslog``. Best effort: a message that does not fit now is dropped."""

    def __init__(self, identifier: str, container_id: str) -> None:
        self._identifier = identifier
        self._container_id = container_id
        self._journal = JournalSocket()
        self._use_syslog = not os.path.exists(JOURNAL_SOCKET)

    def send(self, level: str, message: str) -> None:
        priority = PRIORITIES.get(level, PRIORITIES["info"])
        try:
            if self._use_syslog:
                self._journal.sock.sendto(syslog_line(priority, self._identifier, os.getpid(),
                                                      f"{self._container_id[:20]} {message}"), SYSLOG_SOCKET)
            else:
                self._journal.send(encode_entry([
                    ("MESSAGE", message.encode("utf-8", "replace")), ("PRIORITY", str(priority).encode()),
                    ("SYSLOG_IDENTIFIER", self._identifier.encode()),
                    ("CONTAINER_ID_FULL", self._container_id.encode()),
                ]))
        except OSError:
            pass

    def close(self) -> None:
        self._journal.close()
