"""A program run on a real pseudo-terminal, as a person at a terminal runs it: the pty is
its controlling terminal, so it gets SIGWINCH when the window changes."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time


def _take_controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtySession:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None, rows: int = 24, cols: int = 80) -> None:
        self.master, slave = os.openpty()
        self.resize(rows, cols)
        self.initial_attributes = termios.tcgetattr(self.master)  # a pty's termios, seen from either side
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, preexec_fn=_take_controlling_terminal)
        os.close(slave)
        self.output = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        proc = getattr(self, "proc", None)
        if proc is not None:  # the kernel tells the foreground group only on a real change
            try:
                os.killpg(os.getpgid(proc.pid), signal.SIGWINCH)
            except ProcessLookupError:
                pass

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, needle: bytes, timeout: float = 30) -> bytes:
        """Everything read so far, once it contains ``needle``."""
        self.read_until_match(re.compile(re.escape(needle)), 0, timeout)
        return self.output

    def read_until_match(self, pattern, start: int = 0, timeout: float = 30):
        """The first match of ``pattern`` in what was read from offset ``start`` on."""
        deadline = time.monotonic() + timeout
        while (match := pattern.search(self.output, start)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{pattern.pattern!r} not seen; the terminal shows {self.output[-500:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the program closed the terminal
                    chunk = b""
                if not chunk:
                    raise TimeoutError(f"{pattern.pattern!r} not seen before the terminal closed: {self.output[-500:]!r}")
                self.output += chunk
        return match

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running; the terminal shows {self.output[-500:]!r}"
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:
                    pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
