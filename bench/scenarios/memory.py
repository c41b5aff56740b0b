"""Memory of idle monitors: RSS, USS and PSS of one, the totals for 50 at once (the
python binary and libraries are shared between shims, which USS and PSS account for), the
USS of each of the 50 (the samples the USS target is judged on), and the wake-ups of an
idle one (context switches of all its threads) over 10 s."""

from __future__ import annotations

import os
import time

from bench.monitors import ConmonRun, ShimRun

UNIT = "MB"


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
    many = 5 if quick else 50
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
    return result
