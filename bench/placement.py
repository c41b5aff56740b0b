"""Holding still what the latency scenarios (signals, notify) would otherwise leave to
chance, the same way for every contender; see bench/README.md, "Same figures whoever
runs them".

- ``pinned``: the driver, and with it every monitor and payload it starts (affinity is
  inherited across fork and exec, into containers too), on one set of CPUs; on one CPU,
  every hand-off in a measured chain is a switch on a CPU already awake, never a wake-up
  of another CPU out of an idle state, whose cost depends on the machine;
- ``collector_paused``: no garbage collection in the driver while it stamps;
- ``settle``: a monitor is measured once it has stopped using the CPU after its start
  (the shim imports trio at idle priority after the container starts).
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator

# A process is settled once it used less than this share of one CPU over a whole window.
SETTLED_SHARE = 0.01
SETTLE_WINDOW = 0.1  # seconds
SETTLE_POLL = 0.01  # seconds
SETTLE_TIMEOUT = 10.0  # seconds; then measure anyway, and say so


def default_cpus(allowed: set[int]) -> set[int]:
    """One CPU: the highest-numbered one allowed (CPU 0 takes more of the interrupts)."""
    return {max(allowed)}


def parse_cpus(text: str) -> set[int]:
    """``1``, ``0,2`` or ``2-3`` (the kernel's list format) as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def format_cpus(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """This process (and whatever it starts meanwhile) on ``cpus``; None: left as it is."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """A collection now, then none until the block ends (a pause while stamping would
    count against whichever contender was being measured)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def affinity_of(pid: int) -> set[int]:
    return os.sched_getaffinity(pid)


def watch(pid: int) -> tuple[float, int, bool]:
    """(now in s, CPU time used so far by all threads in ns, whether any thread is
    runnable): a thread starved of the CPU (the shim's idle-priority import on a busy
    CPU) uses none, yet is not done."""
    used, runnable = 0, False
    when = time.monotonic()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                used += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                runnable |= f.read().rpartition(")")[2].split()[0] == "R"
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return when, used, runnable


def quiet(samples: list[tuple[float, int, bool]], window: float = SETTLE_WINDOW) -> bool:
    """Given ``watch`` samples, oldest first: over the latest ``window`` seconds (at
    least), was no thread ever runnable, and did they use less than SETTLED_SHARE of one
    CPU?"""
    now, used, _ = samples[-1]
    for i in range(len(samples) - 2, -1, -1):
        began, used_before, _ = samples[i]
        if now - began >= window:
            return (not any(runnable for _, _, runnable in samples[i:])
                    and used - used_before < SETTLED_SHARE * (now - began) * 1e9)
    return False  # not watched for a whole window yet


def settle(pid: int, timeout: float = SETTLE_TIMEOUT) -> bool:
    """Wait until the process has been quiet for SETTLE_WINDOW; False if it never was
    within ``timeout``."""
    deadline = time.monotonic() + timeout
    samples = [watch(pid)]
    while time.monotonic() < deadline:
        time.sleep(SETTLE_POLL)
        samples.append(watch(pid))
        if quiet(samples):
            return True
    return False
