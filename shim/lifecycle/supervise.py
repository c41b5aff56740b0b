"""Supervision: the container runs; forward, relay and reap until it is gone.

This is the only part of a run that needs trio. One nursery owns every task of the
container: the output relays, the stop sequence, and the wait for the init; the signal
router thread lives exactly as long as that nursery.
"""

from __future__ import annotations

import math
import signal
import time

import trio

from shim.lifecycle.container import Container
from shim.runtime.invoke import Runtime
from shim.signals.catalog import signal_name
from shim.signals.router import CHILD_EXITED, STOP_REQUESTED, Handoff
from shim.signals.stop_sequence import StopSequence
from shim.stdio.relay import relay
from shim.stdio.sink import Sink, Writer

# After the init exits, how long the rest of the output may take to arrive. Output only
# stays open this long if a process outside the container holds the pipe, or if whoever
# reads the shim's stdout stopped reading.
DRAIN_TIMEOUT = 5.0
# After `runtime delete`, how long its killed leftovers may take to become reapable.
LEFTOVER_REAP_TIMEOUT = 5.0


class Supervisor:
    """Everything one container's supervision needs, and the tasks that use it."""

    def __init__(self, runtime: Runtime, container: Container, stop: StopSequence, diagnostics,
                 handoff: Handoff, stderr: Writer, notify=None) -> None:
        self.runtime = runtime
        self.container = container
        self.stop = stop
        self.diagnostics = diagnostics
        self.handoff = handoff
        self.stderr = stderr  # the shim's stderr, shared with its own messages; the caller closes it
        self.notify = notify
        self._events_tx, self._events_rx = trio.open_memory_channel(math.inf)
        self.ran_for = 0.0  # seconds from `runtime start` to the init's exit
        self.cleanup_took = 0.0  # seconds from the init's exit to nothing left

    async def run(self) -> int:
        """Supervise until the container is gone; return its init's wait status.

        The signal router already runs (it started with the container); its events reach
        this run through the handoff from now on.
        """
        self.handoff.attach(trio.lowlevel.current_trio_token(), self._on_router_event)
        try:
            async with trio.open_nursery() as nursery:
                output_done = trio.Event()
                nursery.start_soon(self._relay_output, output_done)
                nursery.start_soon(self._run_stop_sequence)
                if self.notify is not None:
                    nursery.start_soon(self.notify.run, self.signals_ready)
                self.runtime.reaper.reap()  # children that exited before trio ran
                status = await self.runtime.reaper.wait(self.container.init_pid)
                exited = time.monotonic()
                with trio.CancelScope(shield=True):
                    await self._finish(output_done)
                nursery.cancel_scope.cancel()
                self.ran_for = exited - self.container.running_since
                self.cleanup_took = time.monotonic() - exited
        finally:
            self.handoff.detach()
        return status

    def _on_router_event(self, event: tuple) -> None:
        if event[0] == CHILD_EXITED:
            self.runtime.reaper.reap()
        elif event[0] == STOP_REQUESTED:
            self._events_tx.send_nowait(("request", event[1]))

    def signals_ready(self) -> None:
        """The payload's systemd accepts signals now (``X_SYSTEMD_SIGNALS_LEVEL=2``)."""
        self._events_tx.send_nowait(("signals_ready",))

    async def _relay_output(self, done: trio.Event) -> None:
        sinks = [Sink.open(1), Sink(self.stderr)]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(relay, self.container.stdout_fd, sinks[0])
                nursery.start_soon(relay, self.container.stderr_fd, sinks[1])
        finally:
            for name, sink in zip(("stdout", "stderr"), sinks):
                if sink.error is not None:
                    self.diagnostics.warning(f"writing the container's {name} failed ({sink.error.strerror}); "
                                             "the rest of it was dropped")
            sinks[0].close()
            done.set()

    async def _run_stop_sequence(self) -> None:
        deadline = math.inf
        while True:
            with trio.move_on_at(deadline) as scope:
                event = await self._events_rx.receive()
            if scope.cancelled_caught:
                deadline = math.inf
                actions = self.stop.deadline_passed()
            elif event[0] == "request":
                self.diagnostics.info(f"{signal_name(event[1])} received: stopping container {self.container.id}")
                actions = self.stop.request()
            else:
                actions = self.stop.signals_ready()
            for action in actions:
                if action[0] == "deadline":
                    deadline = trio.current_time() + action[1]
                else:
                    await self._carry_out(action)

    async def _carry_out(self, action: tuple) -> None:
        kind = action[0]
        if kind == "announce":
            if self.notify is not None:
                self.notify.stopping()
        elif kind == "send":
            self.container.signal(action[1])
        elif kind == "kill_all":
            self.diagnostics.info(f"killing every process of container {self.container.id}")
            self.container.signal(signal.SIGKILL)
            if not self.container.own_pid_namespace:
                await self._kill_leftovers()

    async def _kill_leftovers(self) -> None:
        # Without its own pid namespace, the container's other processes outlive its init
        # (and hold its output pipes open); the runtime finds them through the cgroup.
        result = await self.runtime.run(self.runtime.command.kill(self.container.id, signal.SIGKILL, all_processes=True))
        if not result.ok:
            self.diagnostics.debug(f"{self.runtime.name} kill --all: {result.error_text()}")

    async def _finish(self, output_done: trio.Event) -> None:
        """The init is gone: end its leftovers, drain the output, delete, reap."""
        if not self.container.own_pid_namespace:
            await self._kill_leftovers()
        with trio.move_on_after(DRAIN_TIMEOUT) as drain:
            await output_done.wait()
        if drain.cancelled_caught:
            self.diagnostics.warning(
                f"the container's output was still open {DRAIN_TIMEOUT:g} s after it exited; the rest is dropped")
        result = await self.runtime.run(self.runtime.command.delete(self.container.id))
        if not result.ok:
            self.diagnostics.warning(f"{self.runtime.name} could not delete container {self.container.id}: "
                                     f"{result.error_text()}")
        with trio.move_on_after(LEFTOVER_REAP_TIMEOUT) as reaping:
            await self.runtime.reaper.wait_until_childless()
        if reaping.cancelled_caught:
            self.diagnostics.warning("some of the container's processes were still alive after it was deleted")
