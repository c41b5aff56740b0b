"""Profiles behind the targets the shim misses, so a reader can see where time and memory go.

    python -m bench.profiles start    # where the time from exec to `runtime create` goes
    python -m bench.profiles memory   # what the Python heap of an idle shim is made of
    python -m bench.profiles floors [ROUNDS]
                                      # what any Python monitor pays before it does any work
    python -m bench.profiles boot [ROUNDS] [--json FILE]
                                      # a systemd container's boot to READY=1 and its stop,
                                      # as timelines, the shim beside conmon (bench/timeline.py);
                                      # --json: every round's milestones too
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run inside a fresh interpreter: the shim's own start-up, with a stamp before each step.
_START_PROBE = r"""
import os, sys, time
T0 = int(os.environ["T0"])
def stamp(what):
    os.write(2, f"{(time.clock_gettime_ns(time.CLOCK_MONOTONIC) - T0) / 1e6:8.2f} ms  {what}\n".encode())
stamp("interpreter ready (exec, site)")
import shim.cli.app, shim.lifecycle.run as run, shim.lifecycle.startup as startup
stamp("shim's start-up modules imported")
def wrap(module, name):
    f = getattr(module, name)
    def g(*a, **k):
        stamp(f"{name} begins"); value = f(*a, **k); stamp(f"{name} done"); return value
    setattr(module, name, g)
for name in ("plan_run", "locate_runtime", "set_subreaper", "run_container", "supervise"):
    wrap(run, name)
for name in ("create_container", "start_container"):
    wrap(startup, name)
sys.argv = ["shim"] + sys.argv[1:]
shim.cli.app.main()
stamp("main returned")
"""

_MEMORY_PROBE = r"""
import collections, gc, sys, tracemalloc
import trio
import shim.lifecycle.supervise, shim.notify.session, shim.signals.router
gc.collect()
snapshot = tracemalloc.take_snapshot()
by_package = collections.Counter()
for stat in snapshot.statistics("filename"):
    name = stat.traceback[0].filename
    if "site-packages/" in name:
        key = name.split("site-packages/")[1].split("/")[0]
    elif name.startswith("<frozen"):
        key = "code objects of every module (unmarshalled by importlib)"
    elif "/shim/" in name:
        key = "shim"
    else:
        key = "stdlib: " + name.rsplit("/", 1)[-1]
    by_package[key] += stat.size
total = sum(by_package.values())
print(f"Python heap after importing what an idle shim holds: {total / 1e6:.1f} MB in {len(sys.modules)} modules")
for key, size in by_package.most_common(12):
    print(f"{size / 1e6:7.2f} MB  {key}")
# Whose code it is: the bytecode each package brought in (cached .pyc sizes, which track
# the size of the code objects in memory).
import importlib.util, os
pyc = collections.Counter()
for name, module in list(sys.modules.items()):
    spec = getattr(module, "__spec__", None)
    cached = getattr(spec, "cached", None) if spec else None
    if cached and os.path.exists(cached):
        top = name.split(".")[0]
        pyc["stdlib" if (spec.origin or "").startswith(sys.base_prefix) and "site-packages" not in spec.origin
            else top] += os.path.getsize(cached)
print(f"\nbytecode loaded, by package ({sum(pyc.values()) / 1e6:.1f} MB of .pyc):")
for key, size in pyc.most_common(8):
    print(f"{size / 1e6:7.2f} MB  {key}")
"""


def start_profile() -> None:
    sys.path.insert(0, ROOT)
    from bench.environment import Environment

    env = Environment()
    try:
        bundle = env.bundle("profile", "start")
        runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
        for _ in range(3):
            container_id = env.new_id("profile")
            t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            proc = subprocess.run([sys.executable, "-c", _START_PROBE, "run", "-b", bundle, "-r", runtime,
                                   "--state-dir", env.state_dir(), container_id],
                                  env={**os.environ, "T0": str(t0)}, capture_output=True, text=True)
            stamp = int(proc.stdout.split()[0])
            print(proc.stderr.rstrip())
            print(f"{(stamp - t0) / 1e6:8.2f} ms  the payload's first instruction\n")
    finally:
        env.cleanup()


# Run as the fork server runs (-I -S -OO): warmed as it warms itself, then a child forked
# from it that runs nothing but an empty trio nursery, as a monitor's loop would start. The
# parent only waits once it has forked: each page it wrote would be the child's alone
# (its USS) from then on. The driver measures the child (line 1: its pid and CPU in ms)
# and says when it has (a line on stdin).
_FORK_FLOOR_PROBE = r"""
import gc, importlib, os, sys, time
sys.path[:0] = [sys.argv[1]]
sys.path.append(sys.argv[2])
from shim.conmon import fork_server
from shim.process.trio_import import import_trio
for name in fork_server._WARM:
    importlib.import_module(name)
import_trio(idle=False)
gc.freeze()
import trio
ready_r, ready_w = os.pipe()
measured_r, measured_w = os.pipe()
child = os.fork()
if child == 0:
    async def empty_loop():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            await trio.sleep(0.5)
            with open("/proc/self/schedstat") as f:
                os.write(ready_w, f.read().split()[0].encode())
            await trio.lowlevel.wait_readable(measured_r)
            nursery.cancel_scope.cancel()
    trio.run(empty_loop)
    os._exit(0)
cpu_ns = os.read(ready_r, 64)
os.write(1, b"%d %s\n" % (child, cpu_ns))
os.read(0, 1)
os.write(measured_w, b"x")
os.waitpid(child, 0)
"""


def _forked_child_floor(python: str) -> tuple[float, float]:
    """(USS in MB, CPU in ms) of a child forked from a warm interpreter, its loop idle."""
    import sysconfig

    from bench.scenarios.memory import memory  # the memory scenario's USS, measured alike

    probe = subprocess.Popen([python, "-I", "-S", "-OO", "-c", _FORK_FLOOR_PROBE, ROOT,
                              sysconfig.get_paths()["purelib"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        child, cpu_ns = map(int, probe.stdout.readline().split())
        uss = memory(child)["uss"]
        probe.stdin.write(b"\n")
        probe.stdin.flush()
    finally:
        probe.stdin.close()
        probe.stdout.close()
        if probe.wait(30) != 0:
            raise RuntimeError(f"the fork floor probe exited {probe.returncode}")
    return uss, cpu_ns / 1e6


def _cpu_ms(argv: list[str]) -> float:
    """User + system CPU of one run of ``argv``, from the kernel's account of the child."""
    pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, _, usage = os.wait4(pid, 0)
    return (usage.ru_utime + usage.ru_stime) * 1e3


def floors_profile(rounds: int = 20) -> None:
    """The floors under the targets a Python monitor misses, measured on this machine: the
    interpreter's start, the client script podman runs, and a monitor forked from the warm
    server before it does any work."""
    import statistics

    python = os.path.join(os.path.dirname(sys.executable), "python3")
    python = python if os.path.exists(python) else sys.executable
    client = os.path.join(os.path.dirname(sys.executable), "shim-conmon")
    conmon = shutil.which("conmon")
    rows = []  # (what, median, unit)

    def median_of(measure) -> float:
        values = [measure() for _ in range(rounds + 1)][1:]  # the first warms the caches
        return statistics.median(values)

    def wall_ms(argv: list[str]) -> float:
        began = time.monotonic_ns()
        subprocess.run(argv, check=True)
        return (time.monotonic_ns() - began) / 1e6

    bare = [python, "-I", "-S", "-c", "pass"]
    rows.append(("python -I -S -c pass, exec to exit", median_of(lambda: wall_ms(bare)), "ms"))
    rows.append(("python -I -S -c pass, CPU", median_of(lambda: _cpu_ms(bare)), "ms"))
    if os.access(client, os.X_OK):
        rows.append(("shim-conmon --version (the client script), CPU",
                     median_of(lambda: _cpu_ms([client, "--version"])), "ms"))
    if conmon:
        rows.append(("conmon --version, CPU", median_of(lambda: _cpu_ms([conmon, "--version"])), "ms"))
    figures = [_forked_child_floor(python) for _ in range(max(3, rounds // 4))]
    rows.append(("a child forked from the warm server, an empty trio loop: USS",
                 statistics.median(uss for uss, _ in figures), "MB"))
    rows.append(("the same child's CPU, fork to its loop idle", statistics.median(cpu for _, cpu in figures), "ms"))
    print(f"# Floors: what a Python monitor pays before it does any work (medians of {rounds} runs"
          f", {len(figures)} for the forked child)\n")
    print("| what | median |\n|---|---:|")
    for what, value, unit in rows:
        print(f"| {what} | {value:.2f} {unit} |")


def memory_profile() -> None:
    subprocess.run([sys.executable, "-X", "tracemalloc", "-c", _MEMORY_PROBE], check=True)


class PerfRecording:
    """``perf record`` of the whole machine's process, signal and socket events, with
    CLOCK_MONOTONIC timestamps, from ``__enter__`` (once perf records) to ``__exit__``.

    Tracepoints are counted in the kernel as they happen and stop no process: a few
    microseconds per event. The socket calls are traced for every process of the machine
    (perf cannot know the pids to come), and the parser keeps the driver's tree."""

    EVENTS = ("sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit",
              "signal:signal_generate", "syscalls:sys_exit_wait4", "syscalls:sys_exit_socket",
              "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_sendto", "syscalls:sys_exit_recvmsg",
              "syscalls:sys_exit_recvfrom")
    READY_TIMEOUT = 20.0

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.data = os.path.join(directory, "perf.data")
        self.proc = None
        self.warnings: list[str] = []

    @staticmethod
    def unavailable_reason() -> str | None:
        if shutil.which("perf") is None:
            return "perf is not installed (apt-get install linux-perf)"
        probe = subprocess.run(["perf", "record", "-q", "-k", "mono", "-a", "-e", "sched:sched_process_exec",
                                "-o", "/dev/null", "--", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            said = probe.stderr.strip().splitlines()
            return f"perf cannot trace here: {said[-1] if said else f'exit status {probe.returncode}'}"
        return None

    def __enter__(self) -> "PerfRecording":
        control, ack = os.path.join(self.directory, "perf-control"), os.path.join(self.directory, "perf-ack")
        for fifo in (control, ack):
            if os.path.exists(fifo):
                os.unlink(fifo)
            os.mkfifo(fifo)
        # Both ends opened read-write: neither open waits for perf, which opens them later.
        self._control = os.open(control, os.O_RDWR)
        self._ack = os.open(ack, os.O_RDWR | os.O_NONBLOCK)
        argv = ["perf", "record", "-q", "-k", "mono", "-a", "--mmap-pages", "1024", "-D", "-1",
                "--control", f"fifo:{control},{ack}", "-o", self.data]
        for event in self.EVENTS:
            argv += ["-e", event]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        os.write(self._control, b"enable\n")
        deadline = time.monotonic() + self.READY_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if select.select([self._ack], [], [], 0.1)[0] and b"ack" in os.read(self._ack, 64):
                return self
        self.__exit__(None, None, None)
        raise RuntimeError("perf record did not start recording")

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.warnings += [line for line in err.decode(errors="replace").splitlines() if "lost" in line.lower()]
        os.close(self._control)
        os.close(self._ack)

    def events(self):
        from bench.timeline import parse_perf_script

        script = subprocess.run(["perf", "script", "--ns", "-F", "comm,pid,tid,time,event,trace", "-i", self.data],
                                capture_output=True, text=True, errors="replace")
        self.warnings += [line for line in script.stderr.splitlines() if "lost" in line.lower()]
        os.unlink(self.data)
        return parse_perf_script(script.stdout)


SYSTEMD_PROPERTIES = ("UserspaceTimestampMonotonic", "SecurityFinishTimestampMonotonic",
                      "GeneratorsFinishTimestampMonotonic", "UnitsLoadFinishTimestampMonotonic",
                      "FinishTimestampMonotonic")


def boot_profile(rounds: int = 5, json_path: str | None = None) -> None:
    """Boot and stop the bench's systemd image under the shim and under conmon, ``rounds``
    times each (alternating, the order rotated), with every source of bench/timeline.py,
    then print each contender's median timeline side by side, and the phases between;
    ``json_path`` receives every round's milestones (ms) and the machine's record."""
    sys.path.insert(0, ROOT)
    from bench import machine, timeline
    from bench.environment import Environment
    from bench.scenarios import systemd
    from shim.demo.bundle import write_config
    from tests.helpers.debian_rootfs import cached_debian_systemd_rootfs, unavailable_reason

    boot_keys = {key for key, _ in timeline.BOOT_ROWS}
    stop_keys = {key for key, _ in timeline.STOP_ROWS}

    reason = unavailable_reason()
    if reason:
        sys.exit(f"bench.profiles boot: {reason}")
    env = Environment()
    notes = []
    listener = None
    try:
        rootfs = cached_debian_systemd_rootfs()
        runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
        perf_reason = PerfRecording.unavailable_reason()
        if perf_reason:
            notes.append(f"no kernel events ({perf_reason}): the shim's own lines, systemd's and the driver's "
                         "stamps only")
        listener = systemd.ReadyListener(os.path.join(env.workdir, "systemd-listener.sock"))
        out = os.path.join(env.workdir, "systemd-out")
        os.makedirs(out, exist_ok=True)
        bundle = write_config(os.path.join(env.workdir, "bundles", "systemd"), systemd.systemd_config(rootfs, out))

        def inside(container_id: str, record: dict) -> None:
            show = subprocess.run([runtime, "exec", container_id, "systemctl", "show",
                                   "--property=" + ",".join(SYSTEMD_PROPERTIES)], capture_output=True, text=True)
            journal = subprocess.run([runtime, "exec", container_id, "journalctl", "-o", "json", "--no-pager"],
                                     capture_output=True, text=True, errors="replace")
            record["systemd"] = timeline.parse_systemd_show(show.stdout)
            record["journal"] = timeline.parse_journal(journal.stdout)

        def one(name: str) -> dict:
            record: dict = {}
            events = []
            with tempfile.TemporaryDirectory(dir=env.workdir) as scratch:
                perf = PerfRecording(scratch) if not perf_reason else None
                with perf or contextlib.nullcontext():
                    if name == "shim":
                        systemd.shim_round(env, runtime, bundle, listener, flags=("--log-level", "debug"),
                                           after_ready=lambda cid: inside(cid, record), record=record)
                    else:
                        systemd.conmon_round(env, runtime, rootfs, listener,
                                             after_ready=lambda cid: inside(cid, record), record=record)
                if perf is not None:
                    events = perf.events()
                    notes.extend(f"{name}: perf: {w}" for w in perf.warnings)
            return milestones(name, record, events)

        def milestones(name: str, record: dict, events) -> dict:
            found = {**record.get("systemd", {}), **record.get("journal", {})}
            if name == "shim":
                found.update(timeline.shim_milestones(timeline.parse_shim_log(record["stderr"])))
            found.update(ready=record["ready"], stop=record["stop"], exit_seen=record["exit_seen"])
            if "deleted" in record:
                found["deleted"] = record["deleted"]
            if events:
                driver = os.getpid()
                found.update(timeline.boot_from_perf(
                    events, driver_pid=driver, monitor_pid=record["monitor_pid"],
                    monitor_pids=record["monitor_pids"], runtime=runtime, init_path="/sbin/init",
                    since=record["started"], ready=record["ready"]))
                init = timeline.container_init(events, driver, "/sbin/init")
                if init is not None:
                    last = record.get("deleted", record["exit_seen"])
                    found.update(timeline.stop_from_perf(
                        events, driver_pid=driver, monitor_pid=record.get("daemon_pid", record["monitor_pid"]),
                        init_pid=init, runtime=runtime, stop_signal=signal.SIGRTMIN + 3,
                        since=record["stop"], until=last))
            boot = {k: v for k, v in found.items() if k in boot_keys}
            stop = {k: v for k, v in found.items() if k in stop_keys}
            return {"boot": timeline.relative_ms(boot, record["started"]),
                    "stop": timeline.relative_ms(stop, record["stop"])}

        contenders = ["shim"] + (["conmon"] if env.conmon else [])
        if not env.conmon:
            notes.append("conmon is not installed: the shim alone")
        results: dict[str, list[dict]] = {name: [] for name in contenders}
        before = machine.snapshot()
        for k in range(rounds + 1):  # the first round warms the caches and is discarded
            order = contenders[k % len(contenders):] + contenders[:k % len(contenders)]
            for name in order:
                result = one(name)
                if k > 0:
                    results[name].append(result)
        record = machine.compare(before, machine.snapshot(), os.getpid())
        if json_path:
            import json

            with open(json_path, "w") as f:
                json.dump({"rounds": results, "machine": record, "notes": notes}, f, indent=1)
    finally:
        if listener is not None:
            listener.sock.close()
        env.cleanup()

    print("# A systemd container's boot and stop, the shim beside conmon\n")
    print(f"Medians of {rounds} rounds per contender (after one warm-up round), in ms: boot rows from the "
          f"driver's stamp just before it started the monitor, stop rows from the stop request. Runtime: "
          f"{runtime.rsplit('/', 1)[-1]}. The shim runs with --log-level debug, for its time-stamped lines.")
    print("Sources: the kernel's trace events (perf, system-wide: a few us per event, no process stopped; "
          "strace -f would stop every process of the boot at each traced call and slow it by tens of ms), "
          "the shim's own lines, systemd's own timestamps (systemctl show) and its journal (journald's receipt "
          "times), and the driver's stamps. READY=1 sent/read/sent on are matched by order: the last "
          "sd_notify of the init, and the last datagram the monitor read and sent, before READY=1 reached "
          "the host.\n")
    print(f"Machine: {record['busy']:.0%} of the CPUs busy, {record['others']:.0%} by other processes "
          f"({', '.join(p['name'] + ' ' + format(p['share'], '.0%') for p in record['busiest others']) or 'none named'}), "
          f"load {record['loadavg before']['1 min']} -> {record['loadavg after']['1 min']}.\n")
    for note in notes:
        print(f"- {note}")
    if notes:
        print()
    for name in contenders:
        boots = ", ".join(f"{r['boot']['ready']:.0f}" for r in results[name])
        stops = ", ".join(f"{r['stop']['exit_seen']:.0f}" for r in results[name])
        print(f"- {name}, each round: boot to READY {boots} ms; stop to exit {stops} ms")
    print()
    for part, rows, phases in (("boot", timeline.BOOT_ROWS, timeline.BOOT_PHASES),
                               ("stop", timeline.STOP_ROWS, timeline.STOP_PHASES)):
        per = {name: timeline.medians([r[part] for r in results[name]]) for name in contenders}
        print(f"## {part}: timeline (ms)\n")
        print(timeline.side_by_side("milestone", rows, per))
        durations = {name: timeline.medians([timeline.phase_durations(r[part], phases) for r in results[name]])
                     for name in contenders}
        print(f"\n## {part}: where the time goes (ms; the median of each phase, so they need not add up)\n")
        print(timeline.side_by_side("phase", [(label, label) for label, _, _ in phases], durations))
        print()


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "start"
    if which == "boot":
        words = sys.argv[2:]
        json_path = None
        if "--json" in words:
            at = words.index("--json")
            json_path = words[at + 1]
            del words[at:at + 2]
        boot_profile(int(words[0]) if words else 5, json_path)
    elif which == "floors":
        floors_profile(int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    else:
        {"start": start_profile, "memory": memory_profile}[which]()
