"""Logs: a payload that writes a few hundred MB of lines as fast as it can (``stamp lines``:
100-byte lines, 64 KiB at a time, from the bind-mounted payload directory), through the
monitor into a k8s-file log: ``shim run --log-driver k8s-file --log-path PATH``, and conmon
standalone with ``-l k8s-file:PATH`` (sync and start pipes, as podman drives it). Same
bundle, same runtime, same file system for both, in rounds, the order rotated each round.

- throughput: the payload's bytes over the wall time from the monitor's exec to its exit
  (the shim's includes ``runtime delete``, which conmon leaves to its engine: a few tens
  of ms of a run of seconds);
- CPU per GB: the monitor's user + system time (all its processes and threads: for conmon
  the process started and the daemon it becomes) from the kernel's exit records
  (bench/taskstats.py), over the payload's GB;
- every log is read back (bench/k8s_log.py): its stdout must be the payload's bytes
  exactly.
"""

from __future__ import annotations

import os
import subprocess

from bench.k8s_log import DIGEST, BadRecord, payload_digest, stream_digest
from bench.monitors import ConmonRun, ShimRun, now_ns, wait_pid_exit
from bench.rounds import Samples, design, schedule

UNIT = "MB/s"
THROUGHPUT, CPU = "throughput", "CPU per GB"
UNITS = {THROUGHPUT: "MB/s", CPU: "s"}
LINE = 100  # bytes, newline included: a typical log line
LINES, QUICK_LINES = 3_000_000, 200_000  # 300 MB; 20 MB
ROUNDS, QUICK_ROUNDS = 10, 2
WARMUP_ROUNDS = 1
EXIT_TIMEOUT = 120.0  # seconds for one run: 300 MB at a slow 5 MB/s


def _shim(env, runtime: str, bundle: str, log: str, listener) -> tuple[int, int, list[int]]:
    run = ShimRun(env, runtime, bundle, "--log-driver", "k8s-file", "--log-path", log, stdout=subprocess.DEVNULL)
    try:
        run.proc.wait(EXIT_TIMEOUT)
        ended = now_ns()
        if run.proc.returncode != 0:
            raise RuntimeError(f"shim run exited {run.proc.returncode}: {run.proc.stderr.read()[-2000:]!r}")
    finally:
        run.finish()
    return run.started, ended, [run.pid]


def _conmon(env, runtime: str, bundle: str, log: str, listener) -> tuple[int, int, list[int]]:
    run = ConmonRun(env, runtime, bundle)
    run.log = log  # before start(): conmon's -l k8s-file:PATH
    try:
        began = run.start()
        ended = wait_pid_exit(run.conmon_pid, EXIT_TIMEOUT)
    finally:
        run.finish()
    return began, ended, [run.first_pid, run.conmon_pid]


def run(env, quick: bool) -> dict:
    from bench.taskstats import ExitListener

    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    count = QUICK_LINES if quick else LINES
    rounds = QUICK_ROUNDS if quick else ROUNDS
    expected, size = payload_digest(count, LINE)
    bundle = env.bundle("logs", "lines", str(count), str(LINE))
    contenders = {"shim": _shim}
    if env.conmon:
        contenders["conmon"] = _conmon
    samples = Samples(order=list(contenders))
    checks = {name: {"matched": 0, "mismatched": 0} for name in contenders}
    left_out: dict[str, int] = {}
    log = os.path.join(env.workdir, "logs-ctr.log")
    with ExitListener() as listener:
        for index, order in schedule(list(contenders), rounds, WARMUP_ROUNDS):
            for name in order:
                samples.declare(CPU, name)
                began_at = len(listener.overflows)
                began, ended, pids = contenders[name](env, runtime, bundle, log, listener)
                seconds = (ended - began) / 1e9
                samples.add(THROUGHPUT, name, index, size / seconds / 1e6)
                complete = all(listener.wait_for_exit(pid, EXIT_TIMEOUT) for pid in pids)
                if complete and len(listener.overflows) == began_at:
                    cpu_us = sum(e.cpu_us for e in listener.exits if e.tgid in pids and e.arrived * 1e9 >= began)
                    samples.add(CPU, name, index, cpu_us / 1e6 / (size / 1e9))
                elif index is not None:
                    left_out[name] = left_out.get(name, 0) + 1
                checks[name]["matched" if _logged(log) == (expected, size) else "mismatched"] += 1
                os.unlink(log)
    notes = [f"payload: {count:,} lines of {LINE} bytes ({size / 1e6:.0f} MB), runtime "
             f"{runtime.rsplit('/', 1)[-1]}; CPU from the kernel's exit records, per GB of payload"]
    notes += [f"{name}: CPU of {n} run(s) left out (exit records lost or missing)" for name, n in left_out.items()]
    notes += [f"{name}: {c['matched']} of {c['matched'] + c['mismatched']} logs decoded to the payload's bytes "
              f"exactly ({DIGEST})" for name, c in checks.items()]
    return {"unit": UNIT, "units": UNITS, "series": samples.series(), "rounds": samples.rounds(),
            "design": design(rounds, WARMUP_ROUNDS), "checks": checks, "notes": notes}


def _logged(path: str) -> tuple[str, int] | None:
    try:
        with open(path, "rb") as f:
            return stream_digest(f)
    except (OSError, BadRecord):
        return None
