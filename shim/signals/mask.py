"""The shim's signal mask: every routed signal is blocked from the first line of
``shim run``, so that none kills the shim or is lost before the router thread runs; a stop
request that arrives before the container starts is taken from the pending set here.
(Kept apart from the router so that start-up does not import threading.)"""

from __future__ import annotations

import _signal  # not signal: see catalog.py

from shim.signals.catalog import STOP_REQUESTS, routed_signals


def block_routed_signals() -> None:
    """Block every routed signal in the calling thread (and the threads it will start)."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, routed_signals())


def take_pending_stop_request() -> int | None:
    """A stop request (SIGTERM/SIGINT) that arrived while signals were blocked, if any."""
    info = _signal.sigtimedwait(STOP_REQUESTS, 0)
    return info.si_signo if info is not None else None
