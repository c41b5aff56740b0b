"""Stop: SIGTERM to the monitor until the monitor exited; the payload exits at once on its
stop signal. The shim's time includes deleting the container and reaping everything.
conmon exits as soon as the container did and leaves the runtime's state to its engine
(podman's ``container cleanup``), so it is measured twice: until it exited, and until the
container is also deleted (``runtime delete``, as the engine then does). tini, catatonit
and dumb-init have nothing to clean up."""

from __future__ import annotations

import signal
import subprocess

from bench.monitors import ConmonRun, HostRun, ShimRun, now_ns, peer_argv

UNIT = "ms"


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
    rounds = 3 if quick else 30
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
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, start in contenders.items():
            contender = start()
            try:
                began = now_ns()
                ended = contender.stop(signal.SIGTERM)
                samples[name].append((ended - began) / 1e6)
            finally:
                contender.finish()
    return {"unit": UNIT, "series": {"stop": samples},
            "notes": [f"container runtime: {runtime.rsplit('/', 1)[-1]}"]}


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
