"""Becoming a child subreaper (``PR_SET_CHILD_SUBREAPER``).

The stdlib has no prctl. ctypes has, but ``import ctypes`` costs about 2 ms (its package
pulls in ``types``, ``struct`` and byte-order helpers) on the path to ``runtime create``,
so this calls libc's ``prctl`` through ``_ctypes``, the C module ctypes is built on, with
the two small types the call needs. Orphans of the container (and the container's init
itself, once ``runtime create`` exits) are then re-parented to the shim instead of to PID
1, and the shim can reap them and learn the init's status.
"""

from __future__ import annotations

import os

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def _prctl():
    import _ctypes

    class CInt(_ctypes._SimpleCData):
        _type_ = "i"  # ctypes.c_int

    class Prctl(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    libc = _ctypes.dlopen(None, os.RTLD_NOW)
    return _ctypes, Prctl(_ctypes.dlsym(libc, "prctl"))


def set_subreaper(enabled: bool) -> None:
    _ctypes, prctl = _prctl()
    if prctl(PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) != 0:
        errno = _ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")
