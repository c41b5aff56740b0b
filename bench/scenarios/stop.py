"""Stop: SIGTERM to the monitor until the monitor exited; the payload exits at once on its
stop signal. The shim's time includes deleting the container and reaping everything.
conmon exits as soon as the container did and leaves the runtime's state to its engine
(podman's ``container cleanup``), so it is measured twice: until it exited, and until the
container is also deleted (``runtime delete``, as the engine then does). tini, catatonit
and dumb-init have nothing to clean up. In rounds of one stop of each in turn, the order
rotated each round; the first round discarded."""

from __future__ import annotations

import signal
import subprocess

from bench.monitors import ConmonRun, HostRun, ShimRun, now_ns, peer_argv
from bench.rounds import Samples, design, schedule

UNIT = "ms"
ROUNDS, QUICK_ROUNDS = 30, 3
WARMUP_ROUNDS = 1


def _shim(env, runtime, bundle):
    run = ShimRun(env, runtime, bundle)
    assert run.readline().strip() == b"ready"
    return run


def _conmon(env, runtime, bundle):
    run = ConmonRun(env, runtime, bundle)
    run.start()
    deadline = now_ns() + 10**10
    while not run.stdout_lines() and now_ns() < deadline:  # "ready" reached conmon's log
        pass
    return run


def run(env, quick: bool) -> dict:
    rounds = QUICK_ROUNDS if quick else ROUNDS
    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    bundle = env.bundle("stop", "idle")
    payload = env.stamp_argv("idle", inside=False)
    contenders = {"shim": lambda: _shim(env, runtime, bundle)}
    if env.conmon:
        contenders["conmon"] = lambda: _conmon(env, runtime, bundle)
        contenders["conmon + delete"] = lambda: _ConmonThenDelete(_conmon(env, runtime, bundle))
    for name, path in env.peers.items():
        if path:
            contenders[name] = (lambda name=name, path=path: _host(peer_argv(name, path), payload))
    samples = Samples(order=list(contenders))
    for index, order in schedule(list(contenders), rounds, WARMUP_ROUNDS):
        for name in order:
            contender = contenders[name]()
            try:
                began = now_ns()
                ended = contender.stop(signal.SIGTERM)
                samples.add("stop", name, index, (ended - began) / 1e6)
            finally:
                contender.finish()
    return {"unit": UNIT, "series": samples.series(), "rounds": samples.rounds(),
            "design": design(rounds, WARMUP_ROUNDS), "notes": [f"container runtime: {runtime.rsplit('/', 1)[-1]}"]}


class _ConmonThenDelete:
    """conmon's stop, then the engine's part: delete the container from the runtime."""

    def __init__(self, run) -> None:
        self.run = run

    def stop(self, signum: int) -> int:
        self.run.stop(signum)
        subprocess.run([self.run.runtime, "delete", "--force", self.run.container_id], capture_output=True)
        return now_ns()

    def finish(self) -> None:
        self.run.finish()


def _host(monitor, payload):
    run = HostRun(monitor, payload)
    assert run.readline().strip() == b"ready"
    return run
