"""Reaping: every process re-parented to the shim is reaped, and the container's leftovers
are ended, with or without the container's own pid namespace."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.helpers.harness import children_of, zombies_of

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("pid_namespace", [True, False], ids=["own-pidns", "host-pidns"])
def test_200_background_children_and_exit(shim, pid_namespace):
    script = "i=0; while [ $i -lt 200 ]; do sleep 1000 & i=$((i+1)); done; exit 0"
    bundle = shim.bundle(["/bin/sh", "-c", script], pid_namespace=pid_namespace)
    result = shim.run(bundle=bundle, timeout=60)
    assert result.returncode == 0, result
    # the harness fails the test if any of the 200 is still running or unreaped


@pytest.mark.parametrize("pid_namespace", [True, False], ids=["own-pidns", "host-pidns"])
def test_orphans_are_reaped_while_the_container_runs(shim, pid_namespace):
    # Each `( sleep & )` orphans its sleep at once: without a pid namespace it is re-parented
    # to the shim, which must reap it when it dies, long before the container ends (here:
    # when it is told to).
    script = ("trap 'exit 0' TERM; i=0; while [ $i -lt 200 ]; do (sleep 0.2 &); i=$((i+1)); done; "
              "echo spawned; sleep 1000 & wait")
    bundle = shim.bundle(["/bin/sh", "-c", script], pid_namespace=pid_namespace)
    proc = shim.start(bundle=bundle)
    assert proc.stdout.readline() == b"spawned\n"
    deadline = time.monotonic() + 30
    while zombies_of(proc.pid) or orphaned_sleeps(proc.pid):
        assert time.monotonic() < deadline, f"{zombies_of(proc.pid)} zombies left"
        time.sleep(0.02)
    assert proc.poll() is None  # reaped while the container runs, not at its end
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def orphaned_sleeps(pid: int) -> int:
    """The shim's children that are the storm's `sleep 0.2` (not `sleep 1000`, its own)."""
    return sum(1 for cmdline, status in children_of(pid)
               if cmdline[:2] == ["sleep", "0.2"] and status != psutil.STATUS_ZOMBIE)
