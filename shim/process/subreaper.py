"""Becoming a child subreaper (``PR_SET_CHILD_SUBREAPER``).

The stdlib has no prctl, so this goes through ctypes. Orphans of the container (and the
container's init itself, once ``runtime create`` exits) are then re-parented to the shim
instead of to PID 1, and the shim can reap them and learn the init's status.
"""

from __future__ import annotations

import os

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def _prctl():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.restype = ctypes.c_int
    return ctypes, prctl


def set_subreaper(enabled: bool) -> None:
    ctypes, prctl = _prctl()
    if prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")

