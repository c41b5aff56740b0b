"""Start: from exec of the monitor to the payload's first instruction, and the whole
lifetime of a container whose payload stamps and exits.

Same bundle for all: the stamping payload in busybox. Contenders per runtime: the runtime
alone (``runtime run``), ``shim run``, conmon standalone (create, then ``runtime start`` by
the driver, as podman does). Interleaved: one run of each in turn.
"""

from __future__ import annotations

import subprocess

from bench.monitors import ConmonRun, ShimRun, now_ns

UNIT = "ms"


def runtime_alone(env, runtime: str, bundle: str) -> tuple[float, float]:
    container_id = env.new_id("rt")
    began = now_ns()
    proc = subprocess.Popen([runtime, "run", "-b", bundle, container_id], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    proc.wait()
    ended = now_ns()
    return (int(out.split()[0]) - began) / 1e6, (ended - began) / 1e6


def shim(env, runtime: str, bundle: str) -> tuple[float, float]:
    run = ShimRun(env, runtime, bundle)
    out = run.proc.stdout.read()
    run.proc.wait()
    ended = now_ns()
    run.finish()
    return (int(out.split()[0]) - run.started) / 1e6, (ended - run.started) / 1e6


def conmon(env, runtime: str, bundle: str) -> tuple[float, float]:
    run = ConmonRun(env, runtime, bundle)
    try:
        began = run.start()
        ended = run.wait_exit_file()
        stamp = int(run.stdout_lines()[0])
    finally:
        run.finish()
    return (stamp - began) / 1e6, (ended - began) / 1e6


def run(env, quick: bool) -> dict:
    rounds = 3 if quick else 30
    bundle = env.bundle("start", "start")
    contenders = []  # (runtime name, contender, measure, runtime path)
    for name, runtime in env.runtimes.items():
        contenders.append((name, f"{name} run", runtime_alone, runtime))
        contenders.append((name, "shim", shim, runtime))
        if env.conmon:
            contenders.append((name, "conmon", conmon, runtime))
    series: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for runtime_name, label, measure, runtime in contenders:
            start, lifetime = measure(env, runtime, bundle)
            series.setdefault(f"start, {runtime_name}", {}).setdefault(label, []).append(start)
            series.setdefault(f"lifetime, {runtime_name}", {}).setdefault(label, []).append(lifetime)
    return {"unit": UNIT, "series": dict(sorted(series.items())),
            "notes": [] if env.stamp_native else ["payload is Python: every start includes its ~10 ms start-up"]}
