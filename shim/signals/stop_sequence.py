"""The stop sequence (a pure state machine, in the style of h11).

A stop request (SIGTERM/SIGINT to ``shim run``, or ``systemctl stop``) turns into:
announce the stop (``STOPPING=1`` upstream), send the container's stop signal to its init,
wait up to the stop timeout, then SIGKILL every process of the container. A second request
while stopping kills at once. For a systemd payload whose manager has not yet said
``X_SYSTEMD_SIGNALS_LEVEL=2`` (before that, systemd may mishandle signals), the stop signal
waits for it, at most the stop timeout, and the grace period starts when it is sent.

Events in: ``request()``, ``signals_ready()``, ``deadline_passed()``. Actions out (small
typed records, like h11's events), which the caller carries out in order. A deadline can
only pass when one was asked for: anything else is a bug in the caller, and raises.
"""

from __future__ import annotations

from shim.record import Record

RUNNING = "running"
AWAITING_SIGNALS = "awaiting-signals"  # stop requested, systemd not ready for signals yet
STOPPING = "stopping"  # stop signal sent, grace period running
KILLING = "killing"  # SIGKILL sent; nothing left to do but wait


class Announce(Record):
    """Tell the service manager the container is stopping."""

    __slots__ = ()


class Send(Record):
    """Send ``signum`` to the container's init."""

    __slots__ = ("signum",)

    def __init__(self, signum: int) -> None:
        self.signum = signum


class Deadline(Record):
    """Call ``deadline_passed`` after ``seconds`` (replacing any earlier deadline)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class KillAll(Record):
    """SIGKILL every process of the container."""

    __slots__ = ()


class StopSequenceError(RuntimeError):
    """An event the state machine cannot receive in its state."""


class StopSequence:
    def __init__(self, stop_signal: int, timeout: float, signals_ready: bool = True) -> None:
        self.stop_signal = stop_signal
        self.timeout = timeout
        self.state = RUNNING
        self._signals_ready = signals_ready

    @property
    def stopping(self) -> bool:
        return self.state != RUNNING

    @property
    def deadline_pending(self) -> bool:
        """A ``Deadline`` is running, so ``deadline_passed`` may come."""
        return self.state in (AWAITING_SIGNALS, STOPPING)

    def request(self) -> list:
        if self.state == RUNNING:
            if self._signals_ready:
                self.state = STOPPING
                return [Announce(), Send(self.stop_signal), Deadline(self.timeout)]
            self.state = AWAITING_SIGNALS
            return [Announce(), Deadline(self.timeout)]
        if self.state in (AWAITING_SIGNALS, STOPPING):
            self.state = KILLING
            return [KillAll()]
        return []

    def signals_ready(self) -> list:
        self._signals_ready = True
        if self.state == AWAITING_SIGNALS:
            self.state = STOPPING
            return [Send(self.stop_signal), Deadline(self.timeout)]
        return []

    def deadline_passed(self) -> list:
        if self.state == AWAITING_SIGNALS:
            # systemd never said it was ready: signal anyway, then give it its grace period.
            self.state = STOPPING
            return [Send(self.stop_signal), Deadline(self.timeout)]
        if self.state == STOPPING:
            self.state = KILLING
            return [KillAll()]
        raise StopSequenceError(f"a deadline passed in state {self.state}, where none was set")
