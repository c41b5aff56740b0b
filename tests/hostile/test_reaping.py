"""Storms of processes: a container (in the host's pid namespace, so every orphan is the
shim's) that abandons thousands of children, and one that runs a fork bomb held by a
pids limit. No zombie outlives its moment, the shim answers throughout, and it exits with
the container's status."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.helpers import oci
from tests.helpers.harness import PAYLOADS, children_of, wait_for_file, zombies_of

pytestmark = [pytest.mark.integration, pytest.mark.hostile]


def reaped_orphans(stderr: bytes) -> int:
    """From the shim's last info line: '... and N orphans reaped in M ms'."""
    line = [l for l in stderr.decode().splitlines() if "orphans reaped" in l][-1]
    return int(line.split(" orphans reaped")[0].rsplit(" ", 1)[1])


def test_an_orphan_storm(shim, tmp_path, scale, figures):
    out = tmp_path / "out"
    out.mkdir()
    # Each `(sleep 0.5 &)` orphans its sleep at once; USR1 is answered from the middle of it.
    script = (f"trap 'echo usr1 >> /out/usr1' USR1; trap 'exit 3' TERM; echo ready > /out/ready; i=0; "
              f"while [ $i -lt {scale.orphans} ]; do (sleep 0.5 &); i=$((i+1)); done; "
              "echo spawned > /out/spawned; sleep 1000 & wait")
    bundle = shim.bundle(["/bin/sh", "-c", script], pid_namespace=False, binds=[(str(out), "/out", False)])
    proc = shim.start(None, "--log-level", "info", bundle=bundle)
    wait_for_file(str(out / "ready"))  # USR1 before its trap would end the container
    most, answered = 0, []
    deadline = time.monotonic() + 120
    while not (out / "spawned").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the storm never ended"
        most = max(most, zombies_of(proc.pid))
        if len(answered) < 5:  # the shim forwards a signal in the middle of the storm
            asked = time.monotonic()
            os.kill(proc.pid, signal.SIGUSR1)
            while not (out / "usr1").exists() or len((out / "usr1").read_text().split()) <= len(answered):
                assert time.monotonic() - asked < 10, "a signal sent during the storm was not forwarded"
                time.sleep(0.001)
            answered.append(time.monotonic() - asked)
        time.sleep(0.01)
    # Once the last orphan's half second is over, none may be left, alive or zombie, while
    # the container still runs: the shim reaps them as they die, not at the end.
    def shims_sleeps() -> int:
        return sum(1 for cmdline, status in children_of(proc.pid)
                   if cmdline[:1] == ["sleep"] and status != psutil.STATUS_ZOMBIE)

    while zombies_of(proc.pid) or shims_sleeps() > 1:  # `sleep 1000` is the container's own
        assert time.monotonic() < deadline, f"{zombies_of(proc.pid)} zombies left"
        time.sleep(0.05)
    assert proc.poll() is None
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    stop_took = time.monotonic() - began
    assert proc.returncode == 3, err
    assert reaped_orphans(err) >= scale.orphans
    figures.record("orphans abandoned", scale.orphans)
    figures.record("orphans the shim reaped", reaped_orphans(err))
    figures.record("most zombies seen at once", most)
    figures.record("USR1 forwarded during the storm, slowest", round(max(answered) * 1000, 1), "ms")
    figures.record("SIGTERM to exit", round(stop_took, 3), "s")


def pids_cgroup(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f.read().splitlines():
            _, controllers, path = line.split(":", 2)
            if "pids" in controllers.split(",") or (controllers == "" and os.path.exists("/sys/fs/cgroup/pids.max")):
                base = "/sys/fs/cgroup/pids" if controllers else "/sys/fs/cgroup"
                return base + path
    raise LookupError(f"no pids cgroup for {pid}")


def test_a_fork_bomb_held_by_a_pids_limit(shim, tmp_path, scale, figures):
    limit = 64
    out = tmp_path / "out"
    out.mkdir()
    binds = oci.host_python_binds() + [(PAYLOADS, "/payloads", True), (str(out), "/out", False)]
    config = oci.make_config(["/usr/bin/python3", "-IS", "/payloads/bomb.py"], rootfs=shim.rootfs,
                             pid_namespace=False, binds=binds)
    config["linux"]["resources"]["pids"] = {"limit": limit}
    bundle = oci.write_bundle(os.path.join(shim.workdir, "bomb"), config)
    pid_file = shim.pid_file()
    proc = shim.start(None, "--pid-file", pid_file, "--stop-timeout", "2", "--log-level", "info", bundle=bundle)
    init = int(wait_for_file(pid_file))
    wait_for_file(str(out / "ready"))
    current = os.path.join(pids_cgroup(init), "pids.current")
    deadline = time.monotonic() + 30
    while int(open(current).read()) < limit:
        assert time.monotonic() < deadline, "the bomb never reached the limit"
        time.sleep(0.01)
    most, answered = 0, []
    held_until = time.monotonic() + scale.bomb_seconds
    while time.monotonic() < held_until:
        most = max(most, zombies_of(proc.pid))
        assert int(open(current).read()) <= limit
        time.sleep(0.05)
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    stop_took = time.monotonic() - began
    assert proc.returncode == 3, err
    assert stop_took < 2 + 15, stop_took
    assert not os.path.exists(current)  # the container's cgroup went with it
    figures.record("pids limit held", limit)
    figures.record("bomb held at the limit for", scale.bomb_seconds, "s")
    figures.record("orphans the shim reaped", reaped_orphans(err))
    figures.record("most zombies of the shim seen at once", most)
    figures.record("SIGTERM to exit", round(stop_took, 3), "s")
