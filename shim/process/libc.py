"""libc functions the standard library lacks, through ``_ctypes`` (the C module ctypes is
built on): ``import ctypes`` costs about 2 ms (its package pulls in ``types``, ``struct``
and byte-order helpers), on paths where every millisecond shows."""

from __future__ import annotations

import os


def function(name: str, result: str = "i"):
    """libc's ``name`` as a callable that sets errno (read it with ``errno()``); ``result``:
    the struct code of its return type ("i" int, "l" long)."""
    import _ctypes

    class Result(_ctypes._SimpleCData):
        _type_ = result

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = Result

    return Function(_ctypes.dlsym(_ctypes.dlopen(None, os.RTLD_NOW), name))


def long_type():
    """The C long type, for the arguments of a variadic function such as ``syscall`` (a
    plain int would leave the upper half of its register undefined)."""
    import _ctypes

    class Long(_ctypes._SimpleCData):
        _type_ = "l"

    return Long


def errno() -> int:
    import _ctypes

    return _ctypes.get_errno()
