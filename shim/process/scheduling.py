"""Giving the container the CPU while the shim imports trio.

Right after ``runtime start`` the container's payload starts up (a systemd payload boots,
dozens of processes), and the shim imports trio: some 50 ms of CPU, which on a small
machine comes out of the payload's start-up (measured: systemd boots about 15 ms slower
beside it). The import runs under ``SCHED_IDLE``, so it only takes CPU time nobody else
wants, then the shim's own policy comes back. Only from ``SCHED_OTHER``, and only as root,
because an unprivileged process may not be allowed back (RLIMIT_NICE), and a shim stuck at
idle priority would forward signals late under load.
"""

from __future__ import annotations

import os


def at_idle_priority(work):
    """Return ``work()``, run by this thread under SCHED_IDLE when that is safe."""
    try:
        policy = os.sched_getscheduler(0)
        param = os.sched_getparam(0)
    except OSError:
        return work()
    if policy != os.SCHED_OTHER or os.geteuid() != 0:
        return work()
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        return work()
    try:
        return work()
    finally:
        os.sched_setscheduler(0, policy, param)
