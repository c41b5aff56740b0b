"""Signal sets and names (pure).

The shim receives every asynchronous signal meant for the container. Three kinds:
- stop requests (SIGTERM, SIGINT for ``shim run``) start the stop sequence instead of
  being forwarded;
- SIGCHLD wakes the reaper;
- everything else that can be caught is forwarded to the container's init unchanged.
Never forwarded: SIGKILL and SIGSTOP (they cannot be caught) and the synchronous faults
(SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS), which concern the shim itself, as in tini.

Start-up code imports ``_signal``, the C module behind ``signal``: the same functions and
numbers, without the enums, whose import (``enum``) costs about 2.7 ms here. This module
is where signal names come from instead.
"""

from __future__ import annotations

import _signal

from shim.errors import UsageError

SIGCHLD, SIGINT, SIGKILL, SIGSTOP, SIGTERM, SIGWINCH = (_signal.SIGCHLD, _signal.SIGINT, _signal.SIGKILL,
                                                        _signal.SIGSTOP, _signal.SIGTERM, _signal.SIGWINCH)
SIGRTMIN, SIGRTMAX = _signal.SIGRTMIN, _signal.SIGRTMAX
SIGUSR1, SIGUSR2 = _signal.SIGUSR1, _signal.SIGUSR2

STOP_REQUESTS = frozenset({SIGTERM, SIGINT})

_UNCATCHABLE = frozenset({SIGKILL, SIGSTOP})
SYNCHRONOUS_FAULTS = frozenset({
    _signal.SIGSEGV, _signal.SIGBUS, _signal.SIGFPE, _signal.SIGILL,
    _signal.SIGABRT, _signal.SIGTRAP, _signal.SIGSYS,
})
_ALIASES = frozenset({"SIGIOT", "SIGCLD", "SIGPOLL"})  # other names of ABRT, CHLD, IO
_NUMBERS = {name: getattr(_signal, name) for name in dir(_signal)
            if name.startswith("SIG") and not name.startswith("SIG_") and not name.startswith("SIGRT")}
_NAMES = {number: name for name, number in _NUMBERS.items() if name not in _ALIASES}


def usable_signals() -> frozenset[int]:
    # glibc reserves the two signals below SIGRTMIN for its threads; valid_signals() already
    # leaves them out, and SIGRTMIN here is glibc's, so RTMIN+n means the same as in podman.
    return frozenset(_signal.valid_signals())


def routed_signals() -> frozenset[int]:
    """Every signal the shim blocks and receives synchronously through its router."""
    return usable_signals() - _UNCATCHABLE - SYNCHRONOUS_FAULTS


def forwarded_signals(stop_requests: frozenset[int] = STOP_REQUESTS) -> frozenset[int]:
    """Signals passed to the container's init exactly as received. Which signals ask for
    a stop instead is the front's choice: ``shim run`` stops on SIGTERM and SIGINT, the
    conmon-compatible front forwards them (the engine stops containers itself)."""
    return routed_signals() - stop_requests - {SIGCHLD}


def signal_name(signum: int) -> str:
    """``SIGTERM``, or ``SIGRTMIN+3`` for realtime signals (never a bare number)."""
    if SIGRTMIN <= signum <= SIGRTMAX:
        offset = signum - SIGRTMIN
        return "SIGRTMIN" if offset == 0 else f"SIGRTMIN+{offset}"
    return _NAMES.get(signum, f"signal {signum}")


def parse_signal(text: str) -> int:
    """Parse ``TERM``, ``SIGTERM``, ``sigterm``, ``15``, ``RTMIN+3``, ``SIGRTMAX-2``.

    Raises UsageError for anything that is not a signal the kernel can deliver.
    """
    word = text.strip().upper()
    if word.isdigit():
        signum = int(word)
    else:
        name = word if word.startswith("SIG") else "SIG" + word
        signum = _parse_realtime(name) if name.startswith("SIGRT") else _NUMBERS.get(name)
    if signum is None or signum not in usable_signals():
        raise UsageError(f"{text!r} is not a signal (use a name such as TERM or RTMIN+3, or a number)")
    return signum


def _parse_realtime(name: str) -> int | None:
    for base_name, base, sign in (("SIGRTMIN", SIGRTMIN, 1), ("SIGRTMAX", SIGRTMAX, -1)):
        if not name.startswith(base_name):
            continue
        rest = name[len(base_name):]
        if rest == "":
            return base
        op, digits = rest[0], rest[1:]
        expected_op = "+" if sign > 0 else "-"
        if op != expected_op or not digits.isdigit():
            return None
        signum = base + sign * int(digits)
        return signum if SIGRTMIN <= signum <= SIGRTMAX else None
    return None
