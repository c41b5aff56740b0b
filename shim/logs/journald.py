"""The journald log driver: each line of the container's output is a journal entry, sent
from the monitor's own pid over the native protocol (shim.logs.journal_protocol).

Fields (conmon's, which podman's reader expects): ``MESSAGE`` (the line with its newline;
podman trims one), ``PRIORITY`` (6 for stdout, 3 for stderr: podman 4.3 accepts nothing
else), ``CONTAINER_ID`` (12 characters), ``CONTAINER_ID_FULL``, ``CONTAINER_NAME``,
``CONTAINER_TAG``, ``SYSLOG_IDENTIFIER`` (the tag, else the name, else the short ID), the
``--log-label`` pairs, and ``CONTAINER_PARTIAL_MESSAGE=true`` on a piece of a line.

Lines stay whole: a partial line waits for its end across reads, up to ``LINE_MAX`` bytes
(conmon splits at 8 KiB, which breaks JSON logs: conmon#335); a longer line goes out in
``LINE_MAX`` pieces marked partial, and a line still open when the container ends goes out
as a partial piece, so its missing newline is not invented. An entry too big for one
datagram travels in a memfd. A journal that has no room slows the output down (the socket
is connected, so the monitor can wait for room); no journal at all is reported once, and
the output still reaches the other drivers.
"""

from __future__ import annotations

import errno

from shim.logs.journal_protocol import JOURNAL_SOCKET, JournalSocket, encode_entry
from shim.stdio.output import STDERR, STDOUT, Destination

LINE_MAX = 4 * 1024 * 1024
STDOUT_PRIORITY, STDERR_PRIORITY = b"6", b"3"
SHORT_ID = 12


def fixed_fields(container_id: str, name: str | None, tag: str | None, labels: list[str]) -> list[tuple[str, bytes]]:
    """The fields every entry of a container carries (pure)."""
    fields = [("CONTAINER_ID_FULL", container_id.encode()), ("CONTAINER_ID", container_id[:SHORT_ID].encode())]
    if tag:
        fields.append(("CONTAINER_TAG", tag.encode()))
    if name:
        fields.append(("CONTAINER_NAME", name.encode()))
    fields.append(("SYSLOG_IDENTIFIER", (tag or name or container_id[:SHORT_ID]).encode()))
    for label in labels:
        key, _, value = label.partition("=")
        fields.append((key, value.encode()))
    return fields


class LineAssembler:
    """Chunks of one stream in, journal messages out (pure): ``(message, partial)`` pairs,
    where a whole line's message keeps its newline."""

    def __init__(self, line_max: int = LINE_MAX) -> None:
        self._pending = b""
        self._line_max = line_max

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        buffer = self._pending + data
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end + 1]
            while len(line) > self._line_max + 1:
                out.append((line[:self._line_max], True))
                line = line[self._line_max:]
            out.append((line, False))
            start = end + 1
        rest = buffer[start:]
        while len(rest) >= self._line_max:
            out.append((rest[:self._line_max], True))
            rest = rest[self._line_max:]
        self._pending = rest
        return out

    def flush(self) -> list[tuple[bytes, bool]]:
        """The line still open at the end, as a partial message."""
        rest, self._pending = self._pending, b""
        return [(rest, True)] if rest else []


class JournaldLog(Destination):
    name = "journald"

    def __init__(self, container_id: str, name: str | None, tag: str | None, labels: list[str], diagnostics,
                 partial_marker: bool = True, path: str = JOURNAL_SOCKET) -> None:
        self._fixed = fixed_fields(container_id, name, tag, labels)
        self._diagnostics = diagnostics
        self._partial_marker = partial_marker
        self._lines = {STDOUT: LineAssembler(), STDERR: LineAssembler()}
        self._socket = JournalSocket(path)
        self._path = path
        self._broken = False
        self._room = None  # a trio.Lock: stdout's and stderr's relays share the socket
        self.lost = 0
        try:
            self._socket.sock.connect(path)
        except OSError as e:
            self._give_up(f"no journal at {path} ({e.strerror}): the journald log driver writes nothing")

    def entry(self, stream: int, message: bytes, partial: bool) -> bytes:
        fields = [("MESSAGE", message), ("PRIORITY", STDOUT_PRIORITY if stream == STDOUT else STDERR_PRIORITY)]
        fields += self._fixed
        if partial and self._partial_marker:
            fields.append(("CONTAINER_PARTIAL_MESSAGE", b"true"))
        return encode_entry(fields)

    async def write(self, stream: int, data: bytes, received_ns: int | None = None) -> None:
        for message, partial in self._lines[stream].feed(data):
            await self._send(self.entry(stream, message, partial), len(message))

    async def finish(self) -> None:
        for stream, lines in self._lines.items():
            for message, partial in lines.flush():
                await self._send(self.entry(stream, message, partial), len(message))
        if self.lost and not self._broken:
            self._diagnostics.warning(f"{self.lost} bytes of the container's output could not be sent to the journal")

    async def _send(self, entry: bytes, size: int) -> None:
        import trio

        while not self._broken:
            try:
                self._socket.send(entry, connected=True)
                return
            except BlockingIOError:
                # Both streams' relays write here, and trio lets one task at a time wait
                # on an fd (a second one raised BusyResourceError, which ended supervision).
                if self._room is None:
                    self._room = trio.Lock()
                async with self._room:
                    await trio.lowlevel.wait_writable(self._socket.sock)
            except OSError as e:
                if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    self._give_up(f"the journal at {self._path} went away ({e.strerror})")
                else:  # this entry cannot go (too big even in a memfd, ...); the next may
                    self.lost += size
                    return
        self.lost += size

    def _give_up(self, message: str) -> None:
        if not self._broken:
            self._broken = True
            self._diagnostics.warning(message)

    def close(self) -> None:
        self._socket.close()

