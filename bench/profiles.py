"""Profiles behind the targets the shim misses, so a reader can see where time and memory go.

    python -m bench.profiles start    # where the time from exec to `runtime create` goes
    python -m bench.profiles memory   # what the Python heap of an idle shim is made of
"""

from __future__ import annotations

import os
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


def memory_profile() -> None:
    subprocess.run([sys.executable, "-X", "tracemalloc", "-c", _MEMORY_PROBE], check=True)


if __name__ == "__main__":
    {"start": start_profile, "memory": memory_profile}[sys.argv[1] if len(sys.argv) > 1 else "start"]()
