"""Signal sets and names (pure).

The shim receives every asynchronous signal meant for the container. Three kinds:
- stop requests (SIGTERM, SIGINT) start the stop sequence instead of being forwarded;
- SIGCHLD wakes the reaper;
- everything else that can be caught is forwarded to the container's init unchanged.
Never forwarded: SIGKILL and SIGSTOP (they cannot be caught) and the synchronous faults
(SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS), which concern the shim itself, as in tini.
"""

from __future__ import annotations

import signal

from shim.errors import UsageError

STOP_REQUESTS = frozenset({signal.SIGTERM, signal.SIGINT})

_UNCATCHABLE = frozenset({signal.SIGKILL, signal.SIGSTOP})
SYNCHRONOUS_FAULTS = frozenset({
    signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
    signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS,
})


def _usable_signals() -> frozenset[int]:
    # glibc reserves the two signals below SIGRTMIN for its threads; valid_signals() already
    # leaves them out, and SIGRTMIN here is glibc's, so RTMIN+n means the same as in podman.
    return frozenset(int(s) for s in signal.valid_signals())


def forwarded_signals() -> frozenset[int]:
    """Signals passed to the container's init exactly as received."""
    return _usable_signals() - _UNCATCHABLE - SYNCHRONOUS_FAULTS - STOP_REQUESTS - {signal.SIGCHLD}


def routed_signals() -> frozenset[int]:
    """Every signal the shim blocks and receives synchronously through its router."""
    return forwarded_signals() | STOP_REQUESTS | {signal.SIGCHLD}


def signal_name(signum: int) -> str:
    """``SIGTERM``, or ``SIGRTMIN+3`` for realtime signals (never a bare number)."""
    if signal.SIGRTMIN <= signum <= signal.SIGRTMAX:
        offset = signum - signal.SIGRTMIN
        return "SIGRTMIN" if offset == 0 else f"SIGRTMIN+{offset}"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def parse_signal(text: str) -> int:
    """Parse ``TERM``, ``SIGTERM``, ``sigterm``, ``15``, ``RTMIN+3``, ``SIGRTMAX-2``.

    Raises UsageError for anything that is not a signal the kernel can deliver.
    """
    word = text.strip().upper()
    if word.isdigit():
        signum = int(word)
    else:
        name = word if word.startswith("SIG") else "SIG" + word
        signum = _parse_realtime(name) if name.startswith("SIGRT") else _parse_named(name)
    if signum is None or signum not in _usable_signals():
        raise UsageError(f"{text!r} is not a signal (use a name such as TERM or RTMIN+3, or a number)")
    return signum


def _parse_named(name: str) -> int | None:
    member = signal.Signals.__members__.get(name)
    return int(member) if member is not None else None


def _parse_realtime(name: str) -> int | None:
    for base_name, base, sign in (("SIGRTMIN", signal.SIGRTMIN, 1), ("SIGRTMAX", signal.SIGRTMAX, -1)):
        if not name.startswith(base_name):
            continue
        rest = name[len(base_name):]
        if rest == "":
            return int(base)
        op, digits = rest[0], rest[1:]
        expected_op = "+" if sign > 0 else "-"
        if op != expected_op or not digits.isdigit():
            return None
        signum = int(base) + sign * int(digits)
        return signum if signal.SIGRTMIN <= signum <= signal.SIGRTMAX else None
    return None
