"""The control fifos in the bundle: ``ctl`` (the engine's requests) and ``winsz``.

``ctl`` takes lines ``<type> <rows> <cols>``: type 1 resizes the container's terminal,
type 2 reopens the log files (CRI-O's log rotation). ``winsz`` takes ``<rows> <cols>``
lines (conmon forwards resizes through it; anyone may write it). Parsing is pure; a line
that does not parse is skipped with a warning, as with conmon.

The monitor holds a writer of each fifo itself: a fifo whose last writer closed reports
EOF (or HUP) to its reader forever after, and engines open and close it per message. The
engine's resize path opens ``ctl`` with ``O_NONBLOCK`` and fails at once without a reader
(ENXIO), so the reader is open for as long as the container lives.
"""

from __future__ import annotations

from shim.record import Record

import os

RESIZE, REOPEN_LOGS = 1, 2
LINE_MAX = 200  # conmon's control buffer


class Resize(Record):
    __slots__ = ("rows", "cols")

    def __init__(self, rows: int, cols: int) -> None:
        self.rows = rows
        self.cols = cols


class ReopenLogs(Record):
    __slots__ = ()


class Malformed(Record):
    __slots__ = ("line",)

    def __init__(self, line: bytes) -> None:
        self.line = line


def _numbers(line: bytes, count: int) -> list[int] | None:
    words = line.split()
    if len(words) < count:
        return None
    try:
        return [int(w) for w in words[:count]]
    except ValueError:
        return None


def parse_ctl_line(line: bytes):
    numbers = _numbers(line, 3)
    if numbers is None:
        return Malformed(line)
    kind, rows, cols = numbers
    if kind == RESIZE:
        return Resize(rows, cols) if 0 <= rows <= 0xFFFF and 0 <= cols <= 0xFFFF else Malformed(line)
    if kind == REOPEN_LOGS:
        return ReopenLogs()
    return Malformed(line)


def parse_winsz_line(line: bytes):
    numbers = _numbers(line, 2)
    if numbers is None or not all(0 <= n <= 0xFFFF for n in numbers):
        return Malformed(line)
    return Resize(*numbers)


class LineBuffer:
    """Bytes in, complete lines out (pure); a line longer than LINE_MAX is dropped."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > LINE_MAX:
            lines.append(self._pending)  # reported as malformed
            self._pending = b""
        return lines


class ControlFifo:
    """One fifo of the bundle, made before the container exists."""

    def __init__(self, path: str, parse_line) -> None:
        self.path = path
        self._parse_line = parse_line
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.mkfifo(path, 0o660)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._keeper = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # see the module's docstring
        self._lines = LineBuffer()

    def read_available(self, handle) -> None:
        """Handle every complete message waiting in the fifo (also before trio runs: a
        resize must reach the terminal before the container looks at its size)."""
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return
            for line in self._lines.feed(data):
                if line.strip():
                    handle(self._parse_line(line))

    async def serve(self, handle) -> None:
        """Read messages until cancelled; ``handle(message)`` for each one."""
        import trio

        while True:
            self.read_available(handle)
            await trio.lowlevel.wait_readable(self.fd)

    def close(self) -> None:
        """Close both ends and remove the fifo: an engine that writes it after the monitor
        is gone gets ENOENT at once instead of blocking in open()."""
        import trio

        for fd in (self.fd, self._keeper):
            if fd < 0:
                continue
            try:
                trio.lowlevel.notify_closing(fd)
            except RuntimeError:
                pass
            os.close(fd)
        self.fd = self._keeper = -1
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def open_control_fifos(bundle: str) -> tuple[ControlFifo, ControlFifo]:
    ctl = ControlFifo(os.path.join(bundle, "ctl"), parse_ctl_line)
    try:
        winsz = ControlFifo(os.path.join(bundle, "winsz"), parse_winsz_line)
    except BaseException:
        ctl.close()
        raise
    return ctl, winsz
