"""``python -m bench [--quick] [--out DIR] [--only start,signals,...]``

Runs every scenario (see bench/README.md), contenders interleaved within each, and writes
results.json, results.md and PNG plots into the results directory.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import shutil
import subprocess
import sys
import time

SCENARIOS = ["start", "signals", "stop", "notify", "memory", "systemd"]


def versions(env) -> dict[str, str]:
    found = {}
    for name, argv in (("runc", ["runc", "--version"]), ("crun", ["crun", "--version"]),
                       ("conmon", ["conmon", "--version"]), ("tini", ["tini", "--version"]),
                       ("podman", ["podman", "--version"])):
        if shutil.which(argv[0]):
            out = subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()
            found[name] = out[0] if out else "?"
    import trio

    found["trio"] = trio.__version__
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (seconds, not minutes)")
    parser.add_argument("--out", help="results directory (default: bench/results/<date>)")
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the benchmarks run containers: run them as root")
    chosen = args.only.split(",") if args.only else SCENARIOS
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import report, targets
    from bench.environment import Environment

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", stamp)
    env = Environment()
    results = {"meta": {"date": stamp, "quick": args.quick, "python": platform.python_version(),
                        "host": f"{platform.system()} {platform.release()}, {os.cpu_count()} cpus",
                        "versions": versions(env), "stamp payload": "C" if env.stamp_native else "Python"},
               "scenarios": {}}
    failed: list[str] = []
    try:
        for name in chosen:
            began = time.monotonic()
            print(f"bench: {name}...", file=sys.stderr, flush=True)
            module = importlib.import_module(f"bench.scenarios.{name}")
            try:
                results["scenarios"][name] = module.run(env, args.quick)
            except Exception as e:  # one broken scenario must not cost the others' results
                import traceback

                traceback.print_exc()
                failed.append(name)
                results["scenarios"][name] = {"unit": "", "series": {}, "notes": [f"failed: {e!r}"]}
            print(f"bench: {name} done in {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)
    finally:
        env.cleanup()
    results["targets"] = targets.check(results)
    for path in report.write(results, out):
        print(path)
    if failed:
        print(f"bench: failed scenarios: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
