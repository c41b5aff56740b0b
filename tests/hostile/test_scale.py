"""Many containers at once: all start, all stop cleanly with their own status, and what
their monitors cost in memory is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE

pytestmark = [pytest.mark.integration, pytest.mark.hostile]

IDLE_THREADS = 2  # a shim's main thread and its signal router
# Ends with 0 on the stop signal (sh as PID 1 would ignore SIGTERM without a trap).
PAYLOAD = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]


def memory_of(pids: list[int]) -> dict[str, int]:
    """Total USS (memory no other process shares), PSS and RSS of ``pids``, in bytes."""
    total = {"uss": 0, "pss": 0, "rss": 0}
    for pid in pids:
        info = psutil.Process(pid).memory_full_info()
        for key in total:
            total[key] += getattr(info, key)
    return total


def record_memory(figures, what: str, count: int, memory: dict[str, int]) -> None:
    mib = 1024 * 1024
    figures.record(f"{what}: USS, all {count}", round(memory["uss"] / mib, 1), "MiB")
    figures.record(f"{what}: USS per monitor", round(memory["uss"] / count / mib, 2), "MiB")
    figures.record(f"{what}: PSS per monitor", round(memory["pss"] / count / mib, 2), "MiB")
    figures.record(f"{what}: RSS per monitor", round(memory["rss"] / count / mib, 2), "MiB")


def test_a_hundred_shims_at_once(shim_runc, scale, figures):
    count = scale.containers
    bundle = shim_runc.bundle(PAYLOAD)
    pid_files = [shim_runc.pid_file(f"init-{i}.pid") for i in range(count)]
    began = time.monotonic()
    procs = [shim_runc.start(None, "--pid-file", pid_file, bundle=bundle, stdout=subprocess.DEVNULL)
             for pid_file in pid_files]
    try:
        deadline = time.monotonic() + 120 + count
        while missing := [p for p in pid_files if not os.path.exists(p)]:
            assert time.monotonic() < deadline, f"{len(missing)} of {count} containers never started"
            assert all(proc.poll() is None for proc in procs), "a shim ended before its container started"
            time.sleep(0.05)
        all_started = time.monotonic() - began
        # Idle means trio imported: the thread that imports it is gone, the main thread
        # and the signal router remain.
        while busy := [proc for proc in procs if psutil.Process(proc.pid).num_threads() != IDLE_THREADS]:
            assert time.monotonic() < deadline, f"{len(busy)} shims never settled"
            time.sleep(0.05)
        memory = memory_of([proc.pid for proc in procs])
    finally:
        stop_began = time.monotonic()
        for proc in procs:
            os.kill(proc.pid, signal.SIGTERM)
        results = [proc.communicate(timeout=120 + count) for proc in procs]
    all_stopped = time.monotonic() - stop_began
    assert [proc.returncode for proc in procs] == [0] * count, [err[-300:] for _, err in results if err]
    assert all(err == b"" for _, err in results)
    figures.record("containers", count)
    figures.record("all started", round(all_started, 1), "s")
    figures.record("all stopped (SIGTERM to every shim, until the last exited)", round(all_stopped, 1), "s")
    record_memory(figures, "shim run", count, memory)


def test_many_engine_containers_at_once(podman, scale, figures):
    count = scale.engine_containers
    if podman.server_path is not None:  # warm: monitors are forked by a running server
        podman("run", "--rm", IMAGE, "true")
        deadline = time.monotonic() + 30
        while not podman.fork_servers():
            assert time.monotonic() < deadline, "no fork server came up"
            time.sleep(0.05)
    began = time.monotonic()
    starting = [podman.popen("run", "-d", IMAGE, *PAYLOAD, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(count)]
    results = [proc.communicate(timeout=300) for proc in starting]
    assert [proc.returncode for proc in starting] == [0] * count, [err[-300:] for _, err in results]
    all_started = time.monotonic() - began
    cids = [out.decode().strip() for out, _ in results]
    monitors = [podman.conmon_pid(cid) for cid in cids]
    memory = memory_of(monitors)
    stop_began = time.monotonic()
    podman("stop", "-t", "10", *cids, timeout=300)
    all_stopped = time.monotonic() - stop_began
    codes = podman.out("inspect", "--format", "{{.State.ExitCode}}", *cids).split()
    assert codes == ["0"] * count
    figures.record("containers", count)
    figures.record("all started (podman run -d, all at once)", round(all_started, 1), "s")
    figures.record("all stopped (podman stop)", round(all_stopped, 1), "s")
    record_memory(figures, "shim-conmon", count, memory)
