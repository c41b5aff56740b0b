"""podman with each monitor: stock conmon, the shim with its fork server, the shim alone
(bench/podman.py sets each up), in rounds, the order rotated each round.

Each round, for each contender:

- ``podman run --rm IMAGE true``, timed from exec to exit;
- ``podman run -d IMAGE <payload>``, timed, then, once the payload is ready,
  ``podman stop -t 10``, timed. The payload traps SIGTERM and exits at once (busybox
  ``sh``: ``wait`` returns as soon as a trapped signal comes), so the stop measures the
  monitor and podman, not the timeout;
- the CPU time of the monitor processes of each of those two containers: the kernel's
  exit records of the whole scenario (bench/taskstats.py), attributed afterwards
  (bench/attribution.py): the monitor and all its threads, each run of the monitor's
  binary that podman made for the container (the first process, the fork server's
  client, the ``--version`` checks), and with the fork server, the server's own time
  while it forked the monitor and its intermediate child.

The warm-up round (discarded) starts the fork server: the first monitor finds none,
monitors alone and starts one for the containers to come. A start that still went on
without the server (it had left, or did not answer) is counted in the notes.
"""

from __future__ import annotations

import bisect
import os
import time

from bench import podman as pm
from bench.attribution import Container, monitor_cpu
from bench.monitors import now_ns
from bench.rounds import Samples, design, schedule

UNIT = "ms"
ROUNDS, QUICK_ROUNDS = 30, 3
WARMUP_ROUNDS = 1
RUN_RM, RUN_D, STOP = "podman run --rm true", "podman run -d", "podman stop"
CPU_RM, CPU_D = "CPU per container, run --rm true", "CPU per container, run -d + stop"
STOP_TIMEOUT = "10"  # podman stop -t: never reached, the payload exits on SIGTERM
# Ready once the trap is set; `sleep & wait` so that SIGTERM is handled at once, not after
# the sleep: ash runs a trap only between commands, and `wait` returns on a trapped signal.
PAYLOAD = 'trap "exit 0" TERM; touch /ready/ready; sleep 1000000 & wait'
READY_TIMEOUT = 30.0  # seconds
POLL = 0.001  # seconds
# Exit records of a container are those that arrived between its start and this long
# after the bench was done with it (the reader thread may lag), and match it by pid:
# the window keeps a pid used again later (pid_max may be as low as 32768) out.
RECORDS_LAG = 1.0  # seconds


class Recorder:
    """Each container's facts, kept for attributing CPU time once the scenario is over."""

    def __init__(self) -> None:
        self.containers: list[tuple[str, str, int | None, Container, float]] = []
        self.warm_up: dict[str, float] = {}  # `podman run --rm`, ms, by contender: discarded, but told

    def add(self, series: str, contender: str, index: int | None, container: Container, done: float) -> None:
        self.containers.append((series, contender, index, container, done))


def _server_cpu(setup: pm.Setup) -> tuple[int | None, int]:
    from bench.taskstats import group_cpu_us

    server = setup.server()
    return server, (group_cpu_us(server) or 0) if server else 0


def _container(setup: pm.Setup, monitor: int, launchers: list[int], start: tuple[float, float],
               server: int | None, server_before: int) -> Container:
    from bench.taskstats import group_cpu_us

    server_after = (group_cpu_us(server) or server_before) if server else 0
    return Container(monitor, frozenset(launchers), setup.contender.names, start, server,
                     max(0, server_after - server_before))


def run_rm(setup: pm.Setup, samples: Samples, recorder: Recorder, index: int | None, keep) -> None:
    pidfile = os.path.join(setup.work, f"{setup.new_name()}.pid")
    server, server_before = _server_cpu(setup)
    began, t0 = time.monotonic(), now_ns()
    proc = setup.start("run", "--rm", *setup.placement(pidfile), pm.IMAGE, "true")
    setup.finish(proc, "run --rm")
    t1, ended = now_ns(), time.monotonic()
    container = _container(setup, pm.read_pid(pidfile), [proc.pid], (began, ended), server, server_before)
    _done_with(setup, container.monitor, keep())
    samples.add(RUN_RM, setup.contender.name, index, (t1 - t0) / 1e6)
    if index is None:
        recorder.warm_up[setup.contender.name] = (t1 - t0) / 1e6
    recorder.add(CPU_RM, setup.contender.name, index, container, time.monotonic())


def run_detached_and_stop(setup: pm.Setup, samples: Samples, recorder: Recorder, index: int | None,
                          keep) -> None:
    name = setup.new_name()
    pidfile = os.path.join(setup.work, f"{name}.pid")
    ready = os.path.join(setup.work, name)
    os.makedirs(ready)
    server, server_before = _server_cpu(setup)
    began, t0 = time.monotonic(), now_ns()
    run = setup.start("run", "-d", "--name", name, *setup.placement(pidfile), "-v", f"{ready}:/ready", pm.IMAGE,
                      "sh", "-c", PAYLOAD)
    setup.finish(run, "run -d")
    t1, ended = now_ns(), time.monotonic()
    container_start = (began, ended)
    _wait_ready(os.path.join(ready, "ready"))
    t2 = now_ns()
    stop = setup.start("stop", "-t", STOP_TIMEOUT, name)
    setup.finish(stop, "stop")
    t3 = now_ns()
    remove = setup.start("rm", name)
    setup.finish(remove, "rm")
    container = _container(setup, pm.read_pid(pidfile), [run.pid, stop.pid, remove.pid], container_start, server,
                           server_before)
    _done_with(setup, container.monitor, keep())
    samples.add(RUN_D, setup.contender.name, index, (t1 - t0) / 1e6)
    samples.add(STOP, setup.contender.name, index, (t3 - t2) / 1e6)
    recorder.add(CPU_D, setup.contender.name, index, container, time.monotonic())


def _wait_ready(path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the payload never got ready ({path})")
        time.sleep(POLL)


def _done_with(setup: pm.Setup, monitor: int, keep: set[int]) -> None:
    """The monitor gone, and whatever it left to the bench (the exit command) gone too;
    ``keep``: the fork servers, which stay."""
    pm.wait_gone(monitor)
    left = pm.reap_adopted(keep)
    if left:
        raise RuntimeError(f"processes outlived their container under {setup.contender.name}: {left}")


def attribute(recorder: Recorder, exits, overflows: list[float], samples: Samples,
              parts: dict[str, dict[str, dict[str, float]]] | None = None) -> dict[str, dict[str, int]]:
    """The CPU time of each container's monitor processes into ``samples`` (ms), and the
    sum of each of its parts into ``parts`` (by series and contender); returns what was
    left out or fell back, by contender."""
    arrived = [e.arrived for e in exits]
    counts: dict[str, dict[str, int]] = {}
    parts = {} if parts is None else parts
    for series, contender, index, container, done in recorder.containers:
        tally = counts.setdefault(contender, {"incomplete": 0, "records lost": 0, "without the server": 0})
        samples.declare(series, contender)
        low = bisect.bisect_left(arrived, container.start[0])
        high = bisect.bisect_right(arrived, done + RECORDS_LAG)
        if any(container.start[0] <= t <= done + RECORDS_LAG for t in overflows):
            tally["records lost"] += index is not None
            continue
        cpu = monitor_cpu(exits[low:high], container)
        if not cpu.complete:
            tally["incomplete"] += index is not None
            continue
        if contender == pm.SERVER:
            tally["without the server"] += index is not None and not cpu.via_server
        samples.add(series, contender, index, cpu.cpu_us / 1e3)
        if index is not None:
            summed = parts.setdefault(series, {}).setdefault(contender, {})
            for part, cpu_us in cpu.parts.items():
                summed[part] = summed.get(part, 0.0) + cpu_us / 1e3
    return counts


def mean_parts(parts: dict[str, dict[str, dict[str, float]]], series: dict) -> dict:
    """Each part's mean per container (ms), from their sums and the samples' count."""
    return {name: {contender: {part: round(total / len(samples), 2) for part, total in by_contender[contender].items()}
                   for contender, samples in series[name].items() if samples and contender in by_contender}
            for name, by_contender in parts.items()}


def _server_setting(contender: pm.Contender) -> str:
    return "<a socket in the work directory>" if contender.fork_server else "0"


def run(env, quick: bool) -> dict:
    from bench.taskstats import ExitListener

    reason = pm.unavailable_reason()
    if reason:
        return {"unit": UNIT, "series": {}, "notes": [f"skipped: {reason}"]}
    rounds = QUICK_ROUNDS if quick else ROUNDS
    chosen = pm.contenders(env.conmon)
    samples = Samples(order=[c.name for c in chosen])
    recorder = Recorder()
    with ExitListener() as listener, pm.setups(chosen, os.path.join(env.workdir, "pd"), env.rootfs) as made:
        for index, order in schedule([c.name for c in chosen], rounds, WARMUP_ROUNDS):
            for name in order:
                run_rm(made[name], samples, recorder, index, lambda: pm.servers(made.values()))
                run_detached_and_stop(made[name], samples, recorder, index, lambda: pm.servers(made.values()))
        time.sleep(RECORDS_LAG)  # the last records read
        exits, overflows = list(listener.exits), list(listener.overflows)
    parts: dict = {}
    counts = attribute(recorder, exits, overflows, samples, parts)
    cpu_parts = mean_parts(parts, samples.series())
    notes = [f"{c.name}: `{os.path.basename(c.monitor)}`" + (f", SHIM_CONMON_FORK_SERVER={_server_setting(c)}"
                                                              if c.names == pm.SHIM_NAMES else "") for c in chosen]
    notes.append("warm-up round (discarded), podman run --rm true: " + ", ".join(
        f"{name} {ms:.0f} ms" for name, ms in recorder.warm_up.items()) + " (the shim + server's starts the server)")
    notes.append("CPU: user + system time of the monitor processes per container, from the kernel's exit records "
                 "(counted in scheduler ticks, so judged on means)")
    for name, by_contender in cpu_parts.items():
        for contender, by_part in by_contender.items():
            notes.append(f"{name}, {contender}, means: " + ", ".join(f"{part} {ms:.1f} ms"
                                                                     for part, ms in by_part.items()))
    for contender, tally in counts.items():
        for what, count in tally.items():
            if count:
                notes.append(f"{contender}: {count} measured container(s) {what}"
                             + (" (CPU sample left out)" if what != "without the server" else ""))
    return {"unit": UNIT, "series": samples.series(), "rounds": samples.rounds(), "design": design(rounds, WARMUP_ROUNDS),
            "cpu parts": cpu_parts, "notes": notes}
