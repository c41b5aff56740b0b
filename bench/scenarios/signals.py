"""Signal forwarding latency: the driver stamps CLOCK_MONOTONIC and sends SIGUSR1 to the
monitor; the stamping child (stamp.c) stamps on receipt. One signal at a time per
contender, each acknowledged before the next, contenders in turn.

The shim forwards to the container whose init is the stamping child; tini, catatonit and
dumb-init forward to the same program as their child on the host; "direct" sends to the
child itself, the floor.

Held the same for every contender, so that the figures do not depend on who runs them
(bench/README.md, "Same figures whoever runs them"): the driver, monitors and payloads
all on one CPU; no contender measured before it has settled after its start; a warm-up
round discarded; no garbage collection in the driver while it stamps; rounds of signals
interleaved one by one (A B C A B C ...), the order rotated from round to round.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

from bench.monitors import HostRun, ShimRun, now_ns, peer_argv
from bench.placement import affinity_of, collector_paused, format_cpus, pinned, settle
from bench.rounds import Samples, design, schedule

UNIT = "us"
SIGNAL = signal.SIGUSR1
SERIES = "signal"
# 20 rounds of 50: as many signals as before rounds were explicit, in enough rounds for
# the intervals to resample rounds (bench/stats.py, MIN_ROUNDS).
ROUNDS, PER_ROUND = 20, 50
QUICK_ROUNDS, QUICK_PER_ROUND = 3, 10
WARMUP_ROUNDS = 1


def measure_one(contender, signum: int = SIGNAL) -> float:
    sent = now_ns()
    os.kill(contender.pid, signum)
    line = contender.readline().split()
    return (int(line[1]) - sent) / 1e3


def container_pid(run: ShimRun) -> int:
    state = subprocess.run([run.runtime, "state", run.container_id], capture_output=True, check=True)
    return json.loads(state.stdout)["pid"]


def run(env, quick: bool) -> dict:
    rounds, per_round = (QUICK_ROUNDS, QUICK_PER_ROUND) if quick else (ROUNDS, PER_ROUND)
    payload = env.stamp_argv("signals", inside=False)
    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    notes = [f"shim: payload is the container's init ({os.path.basename(runtime)}); "
             "peers: payload is their child on the host; direct: kill(2) to the payload"]
    with pinned(env.cpus):
        contenders = {"shim": ShimRun(env, runtime, env.bundle("signals", "signals"))}
        for name, path in env.peers.items():
            if path:
                contenders[name] = HostRun(peer_argv(name, path), payload)
        contenders["direct"] = HostRun([], payload)
        samples = Samples(order=list(contenders))
        try:
            for name, contender in contenders.items():
                assert contender.readline().strip() == b"ready"
                samples.declare(SERIES, name)
            unsettled = [name for name, contender in contenders.items() if not settle(contender.pid)]
            if unsettled:
                notes.append(f"still busy after their start, measured anyway: {', '.join(unsettled)}")
            if env.cpus:
                where = format_cpus(affinity_of(container_pid(contenders["shim"])))
                notes.append(f"driver, monitors and payloads on CPU {format_cpus(env.cpus)} "
                             f"(the shim's container: {where})")
            with collector_paused():
                for index, order in schedule(list(contenders), rounds, WARMUP_ROUNDS):
                    for _ in range(per_round):
                        for name in order:
                            samples.add(SERIES, name, index, measure_one(contenders[name]))
        finally:
            for contender in contenders.values():
                try:
                    contender.stop()
                except ProcessLookupError:
                    pass
                contender.finish()
    return {"unit": UNIT, "series": samples.series(), "rounds": samples.rounds(),
            "design": design(rounds, WARMUP_ROUNDS, per_round), "notes": notes}
