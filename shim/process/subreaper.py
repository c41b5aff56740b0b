"""Becoming a child subreaper (``PR_SET_CHILD_SUBREAPER``).

The stdlib has no prctl: libc's, through shim.process.libc (no ctypes package on the path
to ``runtime create``). Orphans of the container (and the container's init
itself, once ``runtime create`` exits) are then re-parented to the shim instead of to PID
1, and the shim can reap them and learn the init's status.
"""

from __future__ import annotations

import os

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def set_subreaper(enabled: bool) -> None:
    from shim.process import libc

    if libc.function("prctl")(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        errno = libc.errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")
