"""Importing trio the way a subreaper must: without a child process, at idle priority, and
without the parts of the standard library it loads for features the shim never uses.

trio's thread cache calls ``ctypes.util.find_library("pthread")`` as it is imported, only
to give its worker threads OS-level names, and on Linux that runs ``/sbin/ldconfig -p``
through ``subprocess``. In the shim that child is a hazard, not a detail: the reaper
(``waitpid(-1)``, possibly from the signal router thread while the import runs) can take
its exit status from ``subprocess``, and the fork, the exec and the modules behind
``ctypes.util`` (shutil, subprocess) cost start-up time. So while trio is imported,
``ctypes.util`` is a stand-in that names glibc's libc, where ``pthread_setname_np`` lives
since glibc 2.34; the real module is not touched and can still be imported afterwards.

trio also imports, at import time, modules for TLS, international host names, IP
addresses, child processes and DTLS cookies (``ssl``, ``idna``, ``ipaddress``,
``subprocess``, ``hmac``, ``hashlib``), and uses them only inside functions the shim never
calls. Each would cost memory in every monitor for as long as it lives, ``ssl`` most of
all (libssl and libcrypto, several MB when no other process maps them). While trio is
imported they are lazy stand-ins (``LazyModule``): a name trio can bind, which imports the
real module the first time anything is looked up on it.
"""

from __future__ import annotations

import os
import sys

# glibc >= 2.34 has pthread_setname_np in libc itself; where that fails to load, trio
# only skips naming its threads.
_LIBC = "libc.so.6"


UNUSED_BY_THE_SHIM = ("ssl", "idna", "ipaddress", "subprocess", "hmac", "hashlib")


class LazyModule(type(sys)):
    """A module that is imported for real on first use."""

    def __getattr__(self, name: str):
        import importlib

        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        return getattr(real, name)


class _FindLibraryStandIn:
    """What trio reads off ``ctypes.util`` while it is imported."""

    __name__ = "ctypes.util"

    @staticmethod
    def find_library(name: str) -> str:
        return _LIBC


def import_trio(idle: bool = True):
    """``import trio`` without children; under SCHED_IDLE (see shim.process.scheduling)
    unless ``idle`` is false."""
    if not idle:
        return _import_without_children()
    from shim.process.scheduling import at_idle_priority

    return at_idle_priority(_import_without_children)


def already_imported():
    """The trio module when this process has it already (the fork server imported it)."""
    return sys.modules.get("trio")


def _import_without_children():
    if "trio" in sys.modules:
        return sys.modules["trio"]
    import ctypes

    had_util = "ctypes.util" in sys.modules
    if not had_util:
        sys.modules["ctypes.util"] = _FindLibraryStandIn  # type: ignore[assignment]
        ctypes.util = _FindLibraryStandIn  # type: ignore[attr-defined]
    for name in UNUSED_BY_THE_SHIM:
        sys.modules.setdefault(name, LazyModule(name))
    try:
        import trio
    finally:
        if not had_util:
            del sys.modules["ctypes.util"]
            del ctypes.util  # type: ignore[attr-defined]
    return trio


class TrioLoader:
    """``import trio`` in a thread of its own, started as early as the front can: it
    overlaps the runtime's create (the main thread only waits for children then), and the
    container's first output is read, and time-stamped, by the main thread meanwhile (see
    shim.stdio.early). The thread runs at idle priority; the main thread keeps its own.

    ``ready_fd`` becomes readable when the import is done, so the main thread can wait for
    it in the same poll as the container's output.

    ``idle``: import at idle priority, so that the container's own start-up goes first
    (``shim run``: a booting systemd). An engine's monitor must not: a thread that the
    kernel leaves waiting while it holds the interpreter lock holds up the main thread too,
    and there the main thread must answer at once (the engine's resize before start).

    ``gated``: the import waits until ``open_gate`` (from any thread), or ``gate_timeout``
    seconds. ``shim run`` gates it for a systemd payload until its boot is over: even at
    idle priority, the import beside a booting systemd made the boot some 30 ms longer on
    a 2-CPU machine (its generators ran alongside). Nothing waits for trio meanwhile: the
    main thread reads the output and relays sd_notify, the router thread forwards signals
    and reaps, and whatever does need trio opens the gate.
    """

    # While trio loads, the main thread must get the interpreter within a fraction of a
    # millisecond when the container's output or the engine's resize arrives; the import
    # thread would otherwise keep it for CPython's default 5 ms slices.
    EARLY_SWITCH_INTERVAL = 0.0002

    def __init__(self, idle: bool = True, gated: bool = False, gate_timeout: float | None = None) -> None:
        import threading

        self._idle = idle
        self._gate = threading.Event() if gated else None
        self._gate_timeout = gate_timeout
        self._switch_interval = sys.getswitchinterval()
        self._module = already_imported()
        self._error: BaseException | None = None
        self.ready_fd, self._ready_w = os.pipe2(os.O_CLOEXEC)
        self._thread = None
        if self._module is not None:
            # Already imported (a monitor forked by the fork server): no thread. One would
            # cost the monitor some 230 kB of its own for good (its stack, its thread
            # state, the malloc arena glibc gives every new thread) and a switch interval
            # to undo, for an import that is a dictionary lookup.
            self._gate = None
            os.write(self._ready_w, b"\n")
            return
        sys.setswitchinterval(self.EARLY_SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._load, name="shim-trio-import", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> bool:
        """The import is gated and the gate still closed."""
        return self._gate is not None and not self._gate.is_set()

    def open_gate(self, idle: bool = True) -> None:
        """Let a gated import begin (a no-op once it began, or when it is not gated).
        ``idle=False``: something waits for trio (a stop request, the container's exit, or
        a boot that is over): import at the shim's own priority, if it has not begun yet."""
        if self._gate is None or self._gate.is_set():
            return
        if not idle:
            self._idle = False
        self._gate.set()

    def _load(self) -> None:
        try:
            if self._gate is not None:
                self._gate.wait(self._gate_timeout)
            self._module = import_trio(self._idle)
        except BaseException as e:  # re-raised in the main thread by result()
            self._error = e
        finally:
            os.write(self._ready_w, b"\n")

    def result(self):
        """The trio module, once imported (blocks until then)."""
        if self._thread is not None:
            self._thread.join()
        sys.setswitchinterval(self._switch_interval)
        for fd in (self.ready_fd, self._ready_w):
            if fd >= 0:
                os.close(fd)
        self.ready_fd = self._ready_w = -1
        if self._error is not None:
            raise self._error
        return self._module
