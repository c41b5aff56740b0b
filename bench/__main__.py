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

SCENARIOS = ["start", "signals", "stop", "notify", "memory", "podman", "logs", "systemd"]


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
    parser.add_argument("--cpus", help="CPUs for the latency scenarios (signals, notify), as 1 or 0,2 or 2-3 "
                                       "(default: the highest-numbered one allowed); 'any' leaves them unpinned")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the benchmarks run containers: run them as root")
    chosen = args.only.split(",") if args.only else SCENARIOS
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import machine, placement, report, stats, targets
    from bench.environment import Environment

    allowed = os.sched_getaffinity(0)
    if args.cpus == "any":
        cpus = None
    else:
        try:
            cpus = placement.parse_cpus(args.cpus) if args.cpus else placement.default_cpus(allowed)
        except ValueError:
            parser.error(f"--cpus: not a CPU list: {args.cpus}")
        if not cpus <= allowed:
            parser.error(f"--cpus: this process may run only on CPUs {placement.format_cpus(allowed)}")

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", stamp)
    env = Environment(cpus=cpus)
    results = {"meta": {"date": stamp, "quick": args.quick, "python": platform.python_version(),
                        "host": f"{platform.system()} {platform.release()}, {os.cpu_count()} cpus",
                        "versions": versions(env), "stamp payload": "C" if env.stamp_native else "Python",
                        "latency scenarios on CPUs": placement.format_cpus(cpus) if cpus else "any",
                        "intervals": {"confidence": stats.CONFIDENCE, "resamples": stats.RESAMPLES,
                                      "seed": stats.SEED, "rounds resampled from": stats.MIN_ROUNDS}},
               "scenarios": {}, "machine": {}, "warnings": []}
    failed: list[str] = []
    try:
        for name in chosen:
            began = time.monotonic()
            print(f"bench: {name}...", file=sys.stderr, flush=True)
            module = importlib.import_module(f"bench.scenarios.{name}")
            before = machine.snapshot()
            try:
                results["scenarios"][name] = module.run(env, args.quick)
            except Exception as e:  # one broken scenario must not cost the others' results
                import traceback

                traceback.print_exc()
                failed.append(name)
                results["scenarios"][name] = {"unit": "", "series": {}, "notes": [f"failed: {e!r}"]}
            record = results["machine"][name] = machine.compare(before, machine.snapshot(), os.getpid())
            warning = machine.warning(name, record)
            if warning:
                results["warnings"].append(warning)
                print(f"bench: warning: {warning}", file=sys.stderr, flush=True)
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
