"""The out-of-memory killer: the monitor's own ``oom_score_adj``, and whether the kernel
killed something of the container's for lack of memory (its memory cgroup's ``oom_kill``
counter; parsing is pure).

A monitor sets its own score to -1000 so that the kernel kills the container, never its
keeper. A child inherits its parent's score when it is spawned, and posix_spawn cannot
change it in the child, so the monitor lowers its own score only after the runtime's
create has been spawned (the runtime and the container keep the score the engine gave),
and raises it back before the exit command.
"""

from __future__ import annotations

import os

from shim.cgroups.membership import CGROUP2, parse_proc_cgroup

MONITOR_SCORE = "-1000"
_SELF = "/proc/self/oom_score_adj"


def read_own_score() -> str | None:
    try:
        with open(_SELF) as f:
            return f.read().strip()
    except OSError:
        return None


def set_own_score(score: str) -> bool:
    """Best effort: lowering the score needs CAP_SYS_RESOURCE, which not every root has."""
    try:
        fd = os.open(_SELF, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, score.encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def memory_cgroup_of(proc_cgroup: str, cgroup_root: str = "/sys/fs/cgroup") -> str | None:
    """The directory of a process's memory cgroup, from ``/proc/<pid>/cgroup`` (pure):
    the v1 ``memory`` hierarchy, else the unified one (where memory lives on v2)."""
    paths = parse_proc_cgroup(proc_cgroup)
    for key, path in paths.items():
        if "memory" in key.split(","):
            return f"{cgroup_root}/memory{path}".rstrip("/") if path != "/" else f"{cgroup_root}/memory"
    if CGROUP2 in paths:
        return f"{cgroup_root}{paths[CGROUP2]}".rstrip("/") or cgroup_root
    return None


def oom_kills(counters: str) -> int | None:
    """The ``oom_kill`` count of ``memory.events`` (v2) or ``memory.oom_control`` (v1)."""
    for line in counters.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


class OomWatch:
    """The container's OOM kills since it was created: compare the counter then and now."""

    def __init__(self, counter_file: str | None) -> None:
        self._file = counter_file
        self._at_start = self._read()

    @classmethod
    def of_process(cls, pid: int) -> "OomWatch":
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                directory = memory_cgroup_of(f.read())
        except OSError:
            directory = None
        if directory is None:
            return cls(None)
        for name in ("memory.events", "memory.oom_control"):
            path = f"{directory}/{name}"
            if os.path.exists(path):
                return cls(path)
        return cls(None)

    def _read(self) -> int | None:
        if self._file is None:
            return None
        try:
            with open(self._file) as f:
                return oom_kills(f.read())
        except OSError:
            return None

    def killed(self) -> bool:
        """True when the kernel killed a process of the container for lack of memory."""
        now = self._read()
        return now is not None and now > (self._at_start or 0)
