"""Memory of idle monitors: RSS, USS and PSS of one, the totals for 50 at once (the
python binary and libraries are shared between shims, which USS and PSS account for), the
USS of each of the 50 (the samples the USS target is judged on), and the wake-ups of an
idle one (context switches of all its threads) over 10 s.

Then the same under podman, for each of its monitors (bench/podman.py): 50 containers
running at once (``podman run -d IMAGE sleep``), and the RSS, USS and PSS of each one's
monitor (its ConmonPid), each a sample, and their totals. The shim's fork server is
warmed by a container first, so that every monitor is one it forked; forked monitors
share the server's pages until they write to them, which is what their USS shows.
"""

from __future__ import annotations

import os
import time

from bench import placement
from bench.monitors import ConmonRun, ShimRun

UNIT = "MB"
MANY, QUICK_MANY = 50, 5
IDLE_PAYLOAD = ("sleep", "1000000")
PODMAN_SERIES = {"rss": "RSS, podman", "uss": "USS, podman", "pss": "PSS, podman"}


def context_switches(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def memory(pid: int) -> dict[str, float]:
    import psutil

    info = psutil.Process(pid).memory_full_info()
    return {"rss": info.rss / 1e6, "uss": info.uss / 1e6, "pss": info.pss / 1e6}


def start_shims(env, runtime, bundle, count):
    runs = []
    for _ in range(count):
        run = ShimRun(env, runtime, bundle)
        runs.append(run)
    for run in runs:
        assert run.readline().strip() == b"ready"
    return runs


def start_conmons(env, runtime, bundle, count):
    runs = []
    for _ in range(count):
        run = ConmonRun(env, runtime, bundle)
        run.start()
        runs.append(run)
    return runs


def run(env, quick: bool) -> dict:
    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    bundle = env.bundle("memory", "idle")
    many = QUICK_MANY if quick else MANY
    idle_seconds = 2 if quick else 10
    result = {"unit": UNIT, "one": {}, "many": {"count": many}, "wakeups": {}, "series": {"USS, idle": {}}}
    for name, start, pid_of in (("shim", start_shims, lambda r: r.pid),
                                ("conmon", start_conmons, lambda r: r.conmon_pid)):
        if name == "conmon" and not env.conmon:
            continue
        runs = start(env, runtime, bundle, many)
        try:
            time.sleep(1)  # settled: trio imported, the container idle
            pids = [pid_of(r) for r in runs]
            result["one"][name] = memory(pids[0])
            totals = [memory(pid) for pid in pids]
            result["many"][name] = {k: sum(t[k] for t in totals) for k in ("rss", "uss", "pss")}
            # each idle monitor is one sample of the same thing: its own memory
            result["series"]["USS, idle"][name] = [t["uss"] for t in totals]
            before = context_switches(pids[0])
            time.sleep(idle_seconds)
            result["wakeups"][name] = {"seconds": idle_seconds, "switches": context_switches(pids[0]) - before}
        finally:
            for r in runs:
                try:
                    r.stop()
                except ProcessLookupError:
                    pass
                r.finish()
    result["podman"] = podman_monitors(env, many, result)
    return result


def podman_monitors(env, count: int, result: dict) -> dict:
    """``count`` idle containers at once under podman, for each of its monitors: each
    monitor's memory into the result's series; returns the totals, by contender."""
    from bench import podman as pm

    reason = pm.unavailable_reason()
    if reason:
        result.setdefault("notes", []).append(f"podman left out: {reason}")
        return {}
    chosen = pm.contenders(env.conmon)
    totals: dict = {"count": count}
    unsettled: list[str] = []
    with pm.setups(chosen, os.path.join(env.workdir, "pm"), env.rootfs) as made:
        for contender in chosen:
            setup = made[contender.name]
            if contender.fork_server:
                warm_up(setup)
            pids = []
            for _ in range(count):
                pidfile = os.path.join(setup.work, f"{setup.new_name()}.pid")
                setup.finish(setup.start("run", "-d", *setup.placement(pidfile), pm.IMAGE, *IDLE_PAYLOAD), "run -d")
                pids.append(pm.read_pid(pidfile))
            unsettled += [f"{contender.name} {pid}" for pid in pids if not placement.settle(pid)]
            found = [memory(pid) for pid in pids]
            for key, series in PODMAN_SERIES.items():
                result["series"].setdefault(series, {})[contender.name] = [m[key] for m in found]
            totals[contender.name] = {key: sum(m[key] for m in found) for key in PODMAN_SERIES}
            totals[contender.name]["forked by the server"] = sum(_forked(pid) for pid in pids)
            setup.podman.remove_everything()
            for pid in pids:
                pm.wait_gone(pid)
    if unsettled:
        result.setdefault("notes", []).append(f"podman monitors still busy when measured: {', '.join(unsettled)}")
    return totals


def warm_up(setup) -> None:
    """One container that starts the fork server (its own monitor runs alone), gone
    before the measured ones start."""
    from bench import podman as pm

    name = setup.new_name()
    pidfile = os.path.join(setup.work, f"{name}.pid")
    setup.finish(setup.start("run", "-d", "--name", name, *setup.placement(pidfile), pm.IMAGE, "true"), "run -d")
    pm.wait_gone(pm.read_pid(pidfile))
    setup.finish(setup.start("rm", name), "rm")


def _forked(pid: int) -> bool:
    """A monitor the fork server forked still has the server's command line."""
    import psutil

    try:
        return "--fork-server" in psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return False
