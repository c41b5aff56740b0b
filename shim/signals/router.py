"""The signal router: one thread that receives every asynchronous signal of the shim.

All routed signals are blocked in every thread from the first line of the shim on, so
none can kill the shim during start-up and none is lost: they stay pending until this
thread takes them with ``sigwaitinfo``. Forwarded signals go straight to the container's
init from here with ``pidfd_send_signal`` (a recycled pid can never be hit); stop requests
and SIGCHLD are handed to trio through a ``Handoff``. The router starts as soon as the
container exists, before trio is even imported: forwarded signals go out at once, children
are reaped at once (an engine polls ``kill(pid, 0)``, for which a zombie is alive), and
stop requests wait in the handoff until trio runs.

Why a thread and not trio's ``open_signal_receiver``: a Python-level handler coalesces
repeated signals (CPython keeps one "tripped" flag per signal number), so a burst of queued
realtime signals would reach the container as one; and trio's receiver costs a task switch
per signal (100-180 µs here, against 45 µs for tini). ``sigwaitinfo`` dequeues each queued
signal exactly once, and the thread sleeps in it, so an idle shim never wakes up.

A signal the kernel raises at one thread (SIGPIPE after a write to a closed pipe) stays
pending on that thread and never reaches the router, so only a SIGPIPE that somebody sent
to the shim is forwarded.
"""

from __future__ import annotations

import threading

# _signal, the C module behind signal: the same calls without signal.py's enums (enum
# costs some 5 ms to import, on the main thread right after runtime start, while the
# container starts up; trio brings it in later, at idle priority).
import _signal as signal

from shim.signals.catalog import STOP_REQUESTS, forwarded_signals, routed_signals

# The router is woken for shutdown with a thread-directed SIGCHLD: harmless if taken for a
# real one (reaping is idempotent), and always in the set it waits for.
_WAKE_SIGNAL = signal.SIGCHLD


class ChildExited:
    """SIGCHLD: some child of the shim may be reapable."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ChildExited()"


class StopRequested:
    """A signal the front handles itself arrived: a stop request (per the front's choice
    of signals), or another kept signal (SIGWINCH for a terminal the shim owns)."""

    __slots__ = ("signum",)

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __repr__(self) -> str:
        return f"StopRequested({self.signum})"


class Handoff:
    """Events from the router thread to trio's thread: kept until trio runs (``attach``),
    then passed on with ``run_sync_soon``, the one trio call that is safe from a thread.

    ``ChildExited`` is the exception: until trio runs, the router thread reaps itself
    (``reap_early``), so that a container which exits while trio is being imported is not
    left a zombie for that long. ``on_pending()`` is called (from the router thread) for
    each event kept for trio: trio's import may still have to begin.
    """

    def __init__(self, reap_early=None, on_pending=None) -> None:
        self._lock = threading.Lock()
        self._pending: list = []
        self._token = None
        self._deliver = None
        self._reap_early = reap_early
        self._on_pending = on_pending

    def post(self, event) -> None:
        """From the router thread."""
        with self._lock:
            if self._token is None:
                if isinstance(event, ChildExited) and self._reap_early is not None:
                    self._reap_early()
                else:
                    self._pending.append(event)
                    if self._on_pending is not None:
                        self._on_pending()
                return
            token, deliver = self._token, self._deliver
        try:
            token.run_sync_soon(deliver, event)
        except RuntimeError:  # trio.RunFinishedError: the run is over, nobody to tell
            pass

    def attach(self, token, deliver) -> None:
        """From trio's thread, once it runs: deliver what waited, then pass on."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._token, self._deliver = token, deliver
        for event in pending:
            deliver(event)

    def detach(self) -> None:
        with self._lock:
            self._token = self._deliver = None


class SignalRouter:
    """Owns the router thread between ``start`` and ``stop``."""

    def __init__(self, pidfd: int, handoff: Handoff, on_forward_error,
                 stop_requests: frozenset[int] = STOP_REQUESTS, kept: frozenset[int] = frozenset()) -> None:
        self._pidfd = pidfd
        self._handoff = handoff
        self._on_forward_error = on_forward_error
        self._forwarded = forwarded_signals(stop_requests | kept)
        self._routed = routed_signals()
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shim-signal-router", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; the pidfd may be closed afterwards."""
        if self._thread is None:
            return
        self._closing = True
        signal.pthread_kill(self._thread.ident, _WAKE_SIGNAL)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> "SignalRouter":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            signum = signal.sigwaitinfo(self._routed).si_signo
            if self._closing:
                return
            if signum in self._forwarded:
                self._forward(signum)
            elif signum == signal.SIGCHLD:
                self._handoff.post(ChildExited())
            else:
                self._handoff.post(StopRequested(signum))

    def _forward(self, signum: int) -> None:
        try:
            signal.pidfd_send_signal(self._pidfd, signum)
        except ProcessLookupError:
            pass  # the init is gone; the reaper will notice
        except OSError as e:
            self._on_forward_error(signum, e)
