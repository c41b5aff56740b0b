"""The stop sequence (a pure state machine, in the style of h11).

A stop request (SIGTERM/SIGINT to the shim, or ``systemctl stop``) turns into:
announce the stop (``STOPPING=1`` upstream), send the container's stop signal to its init,
wait up to the stop timeout, then SIGKILL every process of the container. A second request
while stopping kills at once. For a systemd payload whose manager has not yet said
``X_SYSTEMD_SIGNALS_LEVEL=2`` (before that, systemd may mishandle signals), the stop signal
waits for it, at most the stop timeout, and the grace period starts when it is sent.

Events in: ``request()``, ``signals_ready()``, ``deadline_passed()``. Actions out, which the
caller carries out in order:
- ``("announce",)``: tell the service manager the container is stopping;
- ``("send", signum)``: send signum to the container's init;
- ``("deadline", seconds)``: call ``deadline_passed`` after that long (replaces any earlier);
- ``("kill_all",)``: SIGKILL every process of the container.
"""

from __future__ import annotations

RUNNING = "running"
AWAITING_SIGNALS = "awaiting-signals"  # stop requested, systemd not ready for signals yet
STOPPING = "stopping"  # stop signal sent, grace period running
KILLING = "killing"  # SIGKILL sent; nothing left to do but wait


class StopSequence:
    def __init__(self, stop_signal: int, timeout: float, signals_ready: bool = True) -> None:
        self.stop_signal = stop_signal
        self.timeout = timeout
        self.state = RUNNING
        self._signals_ready = signals_ready

    @property
    def stopping(self) -> bool:
        return self.state != RUNNING

    def request(self) -> list[tuple]:
        if self.state == RUNNING:
            if self._signals_ready:
                self.state = STOPPING
                return [("announce",), ("send", self.stop_signal), ("deadline", self.timeout)]
            self.state = AWAITING_SIGNALS
            return [("announce",), ("deadline", self.timeout)]
        if self.state in (AWAITING_SIGNALS, STOPPING):
            self.state = KILLING
            return [("kill_all",)]
        return []

    def signals_ready(self) -> list[tuple]:
        self._signals_ready = True
        if self.state == AWAITING_SIGNALS:
            self.state = STOPPING
            return [("send", self.stop_signal), ("deadline", self.timeout)]
        return []

    def deadline_passed(self) -> list[tuple]:
        if self.state == AWAITING_SIGNALS:
            # systemd never said it was ready: signal anyway, then give it its grace period.
            self.state = STOPPING
            return [("send", self.stop_signal), ("deadline", self.timeout)]
        if self.state == STOPPING:
            self.state = KILLING
            return [("kill_all",)]
        return []
