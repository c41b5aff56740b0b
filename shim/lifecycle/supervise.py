"""Supervision: the container runs; forward, relay and reap until it is gone.

This is the only part of a container's life that needs trio, and both fronts share it.
One nursery owns every task of the container: the output relays, the stop sequence, the
notify relay, and whatever services the front adds (the attach socket, the control fifos);
the signal router thread lives exactly as long as the supervision. What differs between
fronts is data (``Ending``, the stop sequence or none, the destinations), never code.
"""

from __future__ import annotations

import math
import os
import time

from shim.lifecycle.container import Container
from shim.process.trio_import import TrioLoader
from shim.runtime.invoke import Runtime
from shim.signals.catalog import SIGKILL, STOP_REQUESTS, signal_name
from shim.signals.router import ChildExited, Handoff, SignalRouter, StopRequested
from shim.signals.stop_sequence import Announce, Deadline, KillAll, Send, StopSequence
from shim.stdio.early import capture_until_ready
from shim.stdio.output import STDERR, STDOUT


class Ending:
    """What a front decides about the end of its container (pure data).

    ``kill_leftovers``: SIGKILL the container's other processes when its init is gone and
    it shares the host's pid namespace (nothing else would end them). ``delete``: run
    ``runtime delete`` (an engine deletes its containers itself). ``drain_timeout``: how
    long the output may take to reach EOF after the init's exit. ``reap_all``: wait until
    the shim has no child left, else only reap what already exited.
    """

    __slots__ = ("kill_leftovers", "delete", "drain_timeout", "reap_all")

    def __init__(self, kill_leftovers: bool, delete: bool, drain_timeout: float, reap_all: bool) -> None:
        self.kill_leftovers = kill_leftovers
        self.delete = delete
        self.drain_timeout = drain_timeout
        self.reap_all = reap_all


# After the init exits, how long the rest of the output may take to arrive in `shim run`.
# Output only stays open this long if a process outside the container holds the pipe, or if
# whoever reads the shim's stdout stopped reading.
RUN_DRAIN_TIMEOUT = 5.0
# After `runtime delete`, how long its killed leftovers may take to become reapable.
LEFTOVER_REAP_TIMEOUT = 5.0


class Outcome:
    """How supervision ended."""

    __slots__ = ("status", "timed_out", "ran_for", "cleanup_took")

    def __init__(self, status: int, timed_out: bool, ran_for: float, cleanup_took: float) -> None:
        self.status = status  # the init's wait status
        self.timed_out = timed_out  # killed by the front's timeout (conmon's --timeout)
        self.ran_for = ran_for  # seconds from supervision's start to the init's exit
        self.cleanup_took = cleanup_took  # seconds from the init's exit to the end


class Supervisor:
    """Everything one container's supervision needs, and the tasks that use it."""

    def __init__(self, runtime: Runtime, container: Container, diagnostics, handoff: Handoff, output,
                 ending: Ending, stop: StopSequence | None = None, notify=None, services=(),
                 timeout: float | None = None, signal_handlers: dict | None = None) -> None:
        import trio

        self.runtime = runtime
        self.container = container
        self.diagnostics = diagnostics
        self.handoff = handoff
        self.output = output
        self.ending = ending
        self.stop = stop
        self.notify = notify
        self.services = list(services)  # async callables run until supervision ends
        self.timeout = timeout
        self.early = []  # output read before trio ran (shim.stdio.early), replayed first
        self.announce = None  # called once every task waits (see supervise's announce)
        self.signal_handlers = signal_handlers or {}  # kept signals that are not stop requests
        self._events_tx, self._events_rx = trio.open_memory_channel(math.inf)
        self._relays = trio.CancelScope()

    async def run(self) -> Outcome:
        """Supervise until the container is gone.

        The signal router already runs (it started with the container); its events reach
        this run through the handoff from now on.
        """
        import trio

        self.handoff.attach(trio.lowlevel.current_trio_token(), self._on_router_event)
        began = time.monotonic()
        try:
            async with trio.open_nursery() as nursery:
                output_done = trio.Event()
                nursery.start_soon(self._relay_output, output_done)
                if self.stop is not None:
                    nursery.start_soon(self._run_stop_sequence)
                if self.notify is not None:
                    nursery.start_soon(self.notify.run, self.signals_ready)
                for service in self.services:
                    nursery.start_soon(service)
                self.runtime.reaper.reap()  # children that exited before trio ran
                if self.announce is not None:
                    # Let every task reach its first wait: after the announcement the
                    # monitor has nothing to do but answer (the engine races its resize
                    # against the container's start).
                    for _ in range(3):
                        await trio.lowlevel.checkpoint()
                    self.announce()
                self.diagnostics.debug("supervising: trio runs, every task started")
                status, timed_out = await self._wait_for_init()
                exited = time.monotonic()
                self.diagnostics.debug(f"the container's init pid {self.container.init_pid} was reaped")
                with trio.CancelScope(shield=True):
                    await self._finish(output_done, timed_out)
                nursery.cancel_scope.cancel()
        finally:
            self.handoff.detach()
            self.output.close()
        return Outcome(status, timed_out, exited - began, time.monotonic() - exited)

    async def _wait_for_init(self) -> tuple[int, bool]:
        import trio

        with trio.move_on_after(self.timeout if self.timeout else math.inf) as timer:
            return await self.runtime.reaper.wait(self.container.init_pid), False
        self.diagnostics.info(f"container {self.container.id} ran out of its {self.timeout:g} s: killing it")
        self._kill_process_group()
        return await self.runtime.reaper.wait(self.container.init_pid), True

    def _kill_process_group(self) -> None:
        # conmon's --timeout: the init's process group, unless that would be kill(-1).
        try:
            group = os.getpgid(self.container.init_pid)
        except ProcessLookupError:
            group = 0
        if group > 1:
            try:
                os.killpg(group, SIGKILL)
            except ProcessLookupError:
                pass
        self.container.signal(SIGKILL)

    def _on_router_event(self, event) -> None:
        if isinstance(event, ChildExited):
            self.runtime.reaper.reap()
        elif isinstance(event, StopRequested):
            handler = self.signal_handlers.get(event.signum)
            if handler is not None:
                handler()
            else:
                self._events_tx.send_nowait(event)

    def signals_ready(self) -> None:
        """The payload's systemd accepts signals now (``X_SYSTEMD_SIGNALS_LEVEL=2``)."""
        if self.stop is not None:
            self._events_tx.send_nowait(_SignalsReady())

    async def _relay_output(self, done) -> None:
        import trio

        from shim.stdio.output import STDERR, STDOUT
        from shim.stdio.relay import relay

        try:
            with self._relays:
                for chunk in self.early:
                    await self.output.write(chunk.stream, chunk.data, chunk.received_ns)
                self.early = []
                async with trio.open_nursery() as nursery:
                    for fd, stream in ((self.container.stdout_fd, STDOUT), (self.container.stderr_fd, STDERR)):
                        if fd is not None:
                            nursery.start_soon(relay, fd, stream, self.output)
        finally:
            self.container.stdout_fd = self.container.stderr_fd = None  # closed by the relays
            done.set()

    async def _run_stop_sequence(self) -> None:
        import trio

        deadline = math.inf
        while True:
            with trio.move_on_at(deadline) as scope:
                event = await self._events_rx.receive()
            if scope.cancelled_caught:
                deadline = math.inf
                actions = self.stop.deadline_passed()
            elif isinstance(event, StopRequested):
                self.diagnostics.info(f"{signal_name(event.signum)} received: stopping container {self.container.id}")
                actions = self.stop.request()
            else:
                actions = self.stop.signals_ready()
            for action in actions:
                if isinstance(action, Deadline):
                    deadline = trio.current_time() + action.seconds
                else:
                    await self._carry_out(action)

    async def _carry_out(self, action) -> None:
        if isinstance(action, Announce):
            if self.notify is not None:
                self.notify.stopping()
        elif isinstance(action, Send):
            self.container.signal(action.signum)
            self.diagnostics.debug(f"sent {signal_name(action.signum)} to the container's init")
        elif isinstance(action, KillAll):
            self.diagnostics.info(f"killing every process of container {self.container.id}")
            self.container.signal(SIGKILL)
            if not self.container.own_pid_namespace:
                await self._kill_leftovers()

    async def _kill_leftovers(self) -> None:
        # Without its own pid namespace, the container's other processes outlive its init
        # (and hold its output pipes open); the runtime finds them through the cgroup.
        result = await self.runtime.run(self.runtime.command.kill(self.container.id, SIGKILL, all_processes=True))
        if not result.ok:
            self.diagnostics.debug(f"{self.runtime.name} kill --all: {result.error_text()}")

    async def _finish(self, output_done, timed_out: bool) -> None:
        """The init is gone: end its leftovers, drain the output, delete, reap."""
        import trio

        if self.ending.kill_leftovers and not self.container.own_pid_namespace:
            await self._kill_leftovers()
        if timed_out:
            self._relays.cancel()  # conmon's --timeout: no drain
        else:
            with trio.move_on_after(self.ending.drain_timeout) as drain:
                await output_done.wait()
            if drain.cancelled_caught:
                self.diagnostics.warning(f"the container's output was still open {self.ending.drain_timeout:g} s "
                                         "after it exited; the rest is dropped")
                self._relays.cancel()
        await output_done.wait()
        await self.output.finish()
        if self.ending.delete:
            self.diagnostics.debug("output drained; runtime delete begins")
            result = await self.runtime.run(self.runtime.command.delete(self.container.id))
            if not result.ok:
                self.diagnostics.warning(f"{self.runtime.name} could not delete container {self.container.id}: "
                                         f"{result.error_text()}")
            self.diagnostics.debug("runtime delete done")
        if self.ending.reap_all:
            with trio.move_on_after(LEFTOVER_REAP_TIMEOUT) as reaping:
                await self.runtime.reaper.wait_until_childless()
            if reaping.cancelled_caught:
                self.diagnostics.warning("some of the container's processes were still alive after it was deleted")
        else:
            self.runtime.reaper.reap()


class _SignalsReady:
    __slots__ = ()


def supervise(runtime: Runtime, container: Container, diagnostics, output, make_supervisor,
              stop_requests: frozenset[int] = STOP_REQUESTS, loader=None, announce=None,
              kept_signals: frozenset[int] = frozenset(), notify=None, await_ready: float | None = None) -> Outcome:
    """Route signals at once, import trio (``loader``, if the front started it earlier,
    else now) while the main thread reads the container's first output, then hand over to
    trio. ``make_supervisor(handoff)`` builds the front's Supervisor once trio is loaded; it
    writes to ``output``. ``announce()`` runs once trio runs and every task waits: the
    moment to tell an engine the container exists. The engine starts it then
    and resizes its terminal, and the monitor must answer at once, which it cannot while
    another thread imports trio (a resize that came 10 ms late let ``stty size`` see
    0x0). If supervision fails, the exception propagates; the caller cleans up.

    ``notify``: the run's NotifySession; until trio runs, the main thread relays the
    container's messages itself, so READY=1 never waits for the import. ``await_ready``
    (seconds; with ``notify``, and no ``loader``): the import does not begin before the
    container said READY=1 (a systemd payload: its boot is the container's start-up),
    unless something needs trio sooner (a stop request, the init's exit, output to pass
    on, a host socket that is full) or that long passed."""
    if loader is None:
        loader = TrioLoader(gated=await_ready is not None, gate_timeout=await_ready)

    def begin_import(reason: str, idle: bool) -> None:
        if loader.waiting:
            diagnostics.debug(f"trio import begins: {reason}")
            loader.open_gate(idle)

    def reap_early() -> None:
        runtime.reaper.reap()
        if runtime.reaper.has_exited(container.init_pid):
            begin_import("the container's init exited", idle=False)

    handoff = Handoff(reap_early=reap_early,
                      on_pending=lambda: begin_import("a signal for trio to handle", idle=False))
    router = SignalRouter(container.pidfd, handoff, stop_requests=stop_requests, kept=kept_signals,
                          on_forward_error=lambda signum, e: diagnostics.warning(
                              f"could not forward {signal_name(signum)} to the container: {e.strerror}"))
    router.start()
    try:
        pipes = {fd: stream for fd, stream in ((container.stdout_fd, STDOUT), (container.stderr_fd, STDERR))
                 if fd is not None}
        also = dict(output.early_services)
        signals_ready_early = []
        if notify is not None and notify.container_fd is not None:
            def relay() -> bool:
                ready, room = notify.relay_waiting(lambda: signals_ready_early.append(True))
                if ready:
                    begin_import("the container is ready", idle=False)
                if not room:
                    begin_import("the host's notify socket is full", idle=False)
                return room

            also[notify.container_fd] = relay

        early, closed = capture_until_ready(pipes, loader.ready_fd, output.before_read, also,
                                            on_output=lambda: begin_import("the container's output", idle=True))
        if container.stdout_fd in closed:
            container.stdout_fd = None
        if container.stderr_fd in closed:
            container.stderr_fd = None
        trio = loader.result()
        diagnostics.debug("trio imported")
        supervisor = make_supervisor(handoff)
        supervisor.early = early
        supervisor.announce = announce
        if signals_ready_early:
            supervisor.signals_ready()
        return trio.run(supervisor.run)
    finally:
        router.stop()
