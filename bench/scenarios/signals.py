"""Signal forwarding latency: the driver stamps CLOCK_MONOTONIC and sends SIGUSR1 to the
monitor; the stamping child (stamp.c) stamps on receipt. One signal at a time per
contender, each acknowledged before the next, contenders in turn.

The shim forwards to the container whose init is the stamping child; tini, catatonit and
dumb-init forward to the same program as their child on the host; "direct" sends to the
child itself, the floor.
"""

from __future__ import annotations

import os
import signal

from bench.monitors import HostRun, ShimRun, now_ns, peer_argv

UNIT = "us"
SIGNAL = signal.SIGUSR1


def measure_one(contender, signum: int = SIGNAL) -> float:
    sent = now_ns()
    os.kill(contender.pid, signum)
    line = contender.readline().split()
    return (int(line[1]) - sent) / 1e3


def run(env, quick: bool) -> dict:
    count = 30 if quick else 1000
    payload = env.stamp_argv("signals", inside=False)
    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    contenders = {"shim": ShimRun(env, runtime, env.bundle("signals", "signals"))}
    for name, path in env.peers.items():
        if path:
            contenders[name] = HostRun(peer_argv(name, path), payload)
    contenders["direct"] = HostRun([], payload)
    samples = {name: [] for name in contenders}
    try:
        for contender in contenders.values():
            assert contender.readline().strip() == b"ready"
        for _ in range(count):
            for name, contender in contenders.items():
                samples[name].append(measure_one(contender))
    finally:
        for contender in contenders.values():
            try:
                contender.stop()
            except ProcessLookupError:
                pass
            contender.finish()
    return {"unit": UNIT, "series": {"signal": samples},
            "notes": [f"shim: payload is the container's init ({os.path.basename(runtime)}); "
                      "peers: payload is their child on the host; direct: kill(2) to the payload"]}
