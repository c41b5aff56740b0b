"""Start: from exec of the monitor to the payload's first instruction, and the whole
lifetime of a container whose payload stamps and exits.

And the start at Python's floor: from exec of the installed ``shim`` script to its spawn of
``runtime create`` (a stamping stand-in for the runtime, which fails at once), beside the
lifetime of a bare ``python3 -I -S -c pass`` of the same interpreter, in the same rounds.

Same bundle for all: the stamping payload in busybox. Contenders per runtime: the runtime
alone (``runtime run``), ``shim run``, conmon standalone (create, then ``runtime start`` by
the driver, as podman does). In rounds of one run of each in turn, the order rotated each
round; the first round (cold caches) discarded.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.monitors import ConmonRun, ShimRun, now_ns
from bench.rounds import Samples, design, schedule

UNIT = "ms"
ROUNDS, QUICK_ROUNDS = 30, 3
WARMUP_ROUNDS = 1


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


def shim_to_create(env, runtime: str, bundle: str) -> tuple[float, None]:
    """exec of ``shim run`` to the first instruction of the runtime it spawns."""
    out = os.path.join(env.stamp_dir, f"runtime-{env.new_id('floor')}")
    run = ShimRun(env, runtime, bundle, stdout=subprocess.DEVNULL, extra_env={"STAMP_RUNTIME_OUT": out})
    run.proc.wait()
    run.finish()
    with open(out) as f:
        stamp = int(f.read())
    os.unlink(out)
    return (stamp - run.started) / 1e6, None


def python_floor(env, runtime: str, bundle: str) -> tuple[float, None]:
    """exec to exit of ``python3 -I -S -c pass``, the interpreter the shim script runs."""
    interpreter = os.path.join(os.path.dirname(env.shim[0]), "python3")
    began = now_ns()
    subprocess.run([interpreter if os.path.exists(interpreter) else sys.executable, "-I", "-S", "-c", "pass"])
    return (now_ns() - began) / 1e6, None


FLOOR_SERIES = "exec to runtime create"


def run(env, quick: bool) -> dict:
    rounds = QUICK_ROUNDS if quick else ROUNDS
    bundle = env.bundle("start", "start")
    contenders = {}  # label: (runtime name, measure, runtime path)
    for name, runtime in env.runtimes.items():
        contenders[f"{name} run"] = (name, runtime_alone, runtime)
        contenders[f"shim, {name}"] = (name, shim, runtime)
        if env.conmon:
            contenders[f"conmon, {name}"] = (name, conmon, runtime)
    floor = env.stamp_native and env.shim[0].endswith("shim")
    if floor:  # the runtime is the stand-in: any will do
        contenders["shim to create"] = ("", shim_to_create, os.path.join(env.stamp_dir, "stamp-runtime"))
        contenders["python -I -S -c pass"] = ("", python_floor, "")
    samples = Samples(order=[*(f"{name} run" for name in env.runtimes), "shim", "conmon", "python -I -S -c pass"])
    for index, order in schedule(list(contenders), rounds, WARMUP_ROUNDS):
        for label in order:
            runtime_name, measure, runtime = contenders[label]
            start, lifetime = measure(env, runtime, bundle)
            if not runtime_name:
                samples.add(FLOOR_SERIES, "shim" if label == "shim to create" else label, index, start)
                continue
            contender = label.split(",")[0]  # within its runtime's series: "shim", not "shim, runc"
            samples.add(f"start, {runtime_name}", contender, index, start)
            samples.add(f"lifetime, {runtime_name}", contender, index, lifetime)
    return {"unit": UNIT, "series": samples.series(), "rounds": samples.rounds(),
            "design": design(rounds, WARMUP_ROUNDS),
            "notes": ([] if env.stamp_native else ["payload is Python: every start includes its ~10 ms start-up"])
            + ([] if floor else ["exec to runtime create: not measured (needs the C stamp and the installed shim script)"])}
