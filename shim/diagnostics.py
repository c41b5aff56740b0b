"""The shim's own messages on stderr: one line each, prefixed ``shim: `` (``shim-conmon: ``
for the conmon-compatible front).

A small object passed to whoever needs it (no global logger): the level comes from
``--log-level``, and the failure that ends a run is printed by ``main``, not here.

While trio runs, a reader of stderr that stopped reading must not freeze the shim: the
supervisor switches the messages to a never-blocking writer (see shim.stdio.sink), and a
line that does not fit is dropped.

``timestamps``: at ``debug`` level, every line carries the time it was written, from
``CLOCK_MONOTONIC`` (the clock of the kernel's trace events and of the journal's
``__MONOTONIC_TIMESTAMP``), e.g. ``shim: [10379.077564] debug: ...``, so that a run can
be laid on one timeline with what else happened on the machine (``python -m bench.profiles
boot``). Below ``debug`` the lines stay as they are.
"""

from __future__ import annotations

import os

LEVELS = {"error": 0, "warning": 1, "info": 2, "debug": 3}


class Diagnostics:
    def __init__(self, level: str = "warning", fd: int = 2, name: str = "shim", timestamps: bool = False) -> None:
        self._threshold = LEVELS[level]
        self._stamped = timestamps and self._threshold >= LEVELS["debug"]
        self._fd = fd
        self.name = name
        self._writer = None  # a shim.stdio.sink.Writer while trio runs, or a journal writer
        self._also = None  # a second place for every message (conmon's --syslog)

    def use_writer(self, writer) -> None:
        """Write through ``writer`` (None: back to plain writes to the fd)."""
        self._writer = writer

    def also_to(self, sink) -> None:
        """Send every message to ``sink.send(level, message)`` too (the journal, syslog)."""
        self._also = sink

    def enabled(self, level: str) -> bool:
        return LEVELS[level] <= self._threshold

    def _emit(self, level: str, message: str) -> None:
        if LEVELS[level] > self._threshold:
            return
        text = " ".join(message.splitlines())
        if self._also is not None:
            self._also.send(level, text)
        prefix = f"{self.name}: " if level in ("error", "info") else f"{self.name}: {level}: "
        if self._stamped:
            import time  # built in: no file to load

            prefix = f"{self.name}: [{time.clock_gettime_ns(time.CLOCK_MONOTONIC) / 1e9:.6f}] {prefix[len(self.name) + 2:]}"
        line = (prefix + text + "\n").encode("utf-8", "replace")
        try:
            if self._writer is not None:
                self._writer.try_write(line)
            else:
                os.write(self._fd, line)
        except OSError:
            pass  # no room (dropped rather than block), or nowhere left to complain to

    def error(self, message: str) -> None:
        self._emit("error", message)

    def warning(self, message: str) -> None:
        self._emit("warning", message)

    def info(self, message: str) -> None:
        self._emit("info", message)

    def debug(self, message: str) -> None:
        self._emit("debug", message)
