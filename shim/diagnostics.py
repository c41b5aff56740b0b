"""The shim's own messages on stderr: one line each, prefixed ``shim: ``.

A small object passed to whoever needs it (no global logger): the level comes from
``--log-level``, and the failure that ends a run is printed by ``main``, never here, so a
failed run prints exactly one line.
"""

from __future__ import annotations

import os

LEVELS = {"error": 0, "warning": 1, "info": 2, "debug": 3}


class Diagnostics:
    def __init__(self, level: str = "warning", fd: int = 2) -> None:
        self._threshold = LEVELS[level]
        self._fd = fd

    def enabled(self, level: str) -> bool:
        return LEVELS[level] <= self._threshold

    def _emit(self, level: str, message: str) -> None:
        if LEVELS[level] > self._threshold:
            return
        prefix = "shim: " if level in ("error", "info") else f"shim: {level}: "
        line = (prefix + " ".join(message.splitlines()) + "\n").encode("utf-8", "replace")
        try:
            os.write(self._fd, line)
        except OSError:
            pass  # nowhere left to complain to

    def error(self, message: str) -> None:
        self._emit("error", message)

    def warning(self, message: str) -> None:
        self._emit("warning", message)

    def info(self, message: str) -> None:
        self._emit("info", message)

    def debug(self, message: str) -> None:
        self._emit("debug", message)
