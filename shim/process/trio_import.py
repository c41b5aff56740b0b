"""Importing trio the way a subreaper must: without a child process, and at idle priority.

trio's thread cache calls ``ctypes.util.find_library("pthread")`` as it is imported, only
to give its worker threads OS-level names, and on Linux that runs ``/sbin/ldconfig -p``
through ``subprocess``. In the shim that child is a hazard, not a detail: the reaper
(``waitpid(-1)``, possibly from the signal router thread while the import runs) can take
its exit status from ``subprocess``, and the fork, the exec and the modules behind
``ctypes.util`` (shutil, subprocess) cost start-up time. So while trio is imported,
``ctypes.util`` is a stand-in that names glibc's libc, where ``pthread_setname_np`` lives
since glibc 2.34; the real module is not touched and can still be imported afterwards.
"""

from __future__ import annotations

import sys

# glibc >= 2.34 has pthread_setname_np in libc itself; where that fails to load, trio
# only skips naming its threads.
_LIBC = "libc.so.6"


class _FindLibraryStandIn:
    """What trio reads off ``ctypes.util`` while it is imported."""

    __name__ = "ctypes.util"

    @staticmethod
    def find_library(name: str) -> str:
        return _LIBC


def import_trio():
    """``import trio`` under SCHED_IDLE (see shim.process.scheduling), without children."""
    from shim.process.scheduling import at_idle_priority

    return at_idle_priority(_import_without_children)


def _import_without_children():
    if "trio" in sys.modules:
        return sys.modules["trio"]
    import ctypes

    had_util = "ctypes.util" in sys.modules
    if not had_util:
        sys.modules["ctypes.util"] = _FindLibraryStandIn  # type: ignore[assignment]
        ctypes.util = _FindLibraryStandIn  # type: ignore[attr-defined]
    try:
        import trio
    finally:
        if not had_util:
            del sys.modules["ctypes.util"]
            del ctypes.util  # type: ignore[attr-defined]
    return trio
