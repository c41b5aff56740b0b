"""Whose CPU time is a container's monitor's (pure): the exit records of a scenario
(bench/taskstats.py), sorted out by what the bench knows of each container.

The monitor processes of one container under podman are:

- the monitor itself, the pid podman reports (``--conmon-pidfile``), all its threads;
- every run of the monitor's binary that podman started for it: the first process,
  which daemonizes (conmon, the ``python3`` that ``shim-conmon`` execs when it monitors
  alone) or hands over to the fork server (the bash client), and podman's ``--version``
  checks. Their parent is one of the podman commands the bench ran for the container, or
  podman's exit command (``podman container cleanup``, a child of the monitor);
- with the fork server: the server's own time while it served the container, and any
  other child it forked meanwhile (its parent is the server; the container's monitor is
  one, counted once as the monitor).

Not the monitor's: what it runs (the runtime's ``create``, the container, the exit
command), which is the same whichever monitor runs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench.taskstats import Exit

EXIT_COMMAND_NAME = "podman"  # podman's exit command is podman itself


@dataclass(frozen=True)
class Container:
    """What the bench knows of one container's life."""

    monitor: int  # the monitor's pid
    launchers: frozenset[int]  # the podman commands the bench ran for it
    comms: frozenset[str]  # the names the monitor's binary runs under (15 characters at most)
    start: tuple[float, float]  # time.monotonic() before and after its `podman run`
    server: int | None = None  # the fork server's pid, if it has one
    server_cpu_us: int = 0  # the server's own time during ``start``


@dataclass(frozen=True)
class MonitorCpu:
    cpu_us: int
    parts: dict[str, int]  # what the total is made of
    via_server: bool  # a monitor forked by the server (not a fallback to starting alone)
    complete: bool  # the monitor's own last exit is among the records


def monitor_cpu(exits: Iterable[Exit], container: Container) -> MonitorCpu:
    exits = list(exits)
    exit_commands = {e.tgid for e in exits if e.ppid == container.monitor and e.comm == EXIT_COMMAND_NAME}
    parents = container.launchers | exit_commands
    started = {e.tgid for e in exits
               if e.ppid in parents and e.comm in container.comms and e.tgid != container.monitor}
    low, high = container.start
    server_children = set()
    if container.server is not None:
        server_children = {e.tgid for e in exits if e.ppid == container.server and low <= e.arrived <= high
                           and e.tgid != container.monitor}
    parts = {"monitor": sum(e.cpu_us for e in exits if e.tgid == container.monitor),
             "started by the engine": sum(e.cpu_us for e in exits if e.tgid in started),
             "fork server": container.server_cpu_us + sum(e.cpu_us for e in exits if e.tgid in server_children)}
    return MonitorCpu(sum(parts.values()), parts, bool(server_children),
                      any(e.tgid == container.monitor and e.last for e in exits))
