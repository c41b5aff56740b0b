"""Reaping: every process re-parented to the shim is reaped, and the container's leftovers
are ended, with or without the container's own pid namespace."""

from __future__ import annotations

import time

import psutil
import pytest

pytestmark = pytest.mark.integration


def zombie_children(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children() if c.status() == psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


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
    # to the shim, which must reap it when it dies, long before the container ends.
    script = "i=0; while [ $i -lt 200 ]; do (sleep 0.2 &); i=$((i+1)); done; sleep 2; exit 0"
    bundle = shim.bundle(["/bin/sh", "-c", script], pid_namespace=pid_namespace)
    proc = shim.start(bundle=bundle)
    time.sleep(1.5)
    assert zombie_children(proc.pid) == []
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
