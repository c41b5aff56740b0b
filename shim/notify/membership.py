"""Is a process part of the container? Decided by its cgroup (pure parsing).

Every process of a container lives in the container's cgroup or below it (systemd inside
the container makes sub-cgroups), whatever namespaces it has, so the sender of a datagram
belongs to the container when its ``/proc/<pid>/cgroup`` path, on the container's primary
hierarchy, is the container's or under it. The primary hierarchy is cgroup2 (``0::``)
when the container has one, else the named ``name=systemd`` one, else the first
(shim.cgroups.membership parses the file).

A service sends from the same process again and again (WATCHDOG=1, STATUS=), and reading
and parsing ``/proc/<pid>/cgroup`` was most of the relay's CPU per datagram (some 35 of
90 us, measured one datagram at a time). So a sender found inside is remembered with a
pidfd, opened before its cgroup was read: while that process lives, its pid is its own,
and the next datagram from it costs one ``pidfd_send_signal(0)``. A process cannot leave
the container's cgroup for one outside it (a cgroup namespace hides them, and moving
needs write access above the container's cgroup, which the container has not).
"""

from __future__ import annotations

import os

import _signal  # the C module: signal.py would load enum (some 5 ms) while systemd boots

from shim.cgroups.membership import CGROUP2, SYSTEMD_NAME, parse_proc_cgroup

PROC_CGROUP_MAX = 65536  # /proc/<pid>/cgroup is a line per hierarchy: far less
KNOWN_SENDERS_MAX = 16  # pidfds held for senders found inside: a container's few talkers


def primary_hierarchy(hierarchies: dict[str, str]) -> tuple[str, str] | None:
    for key in (CGROUP2, SYSTEMD_NAME):
        if key in hierarchies:
            return key, hierarchies[key]
    for key, path in hierarchies.items():
        return key, path
    return None


def is_within(hierarchies: dict[str, str], container: tuple[str, str]) -> bool:
    key, root = container
    path = hierarchies.get(key)
    if path is None:
        return False
    if root == "/":
        return True
    return path == root or path.startswith(root.rstrip("/") + "/")


class ContainerMembership:
    """Checks senders against the container's cgroup, read from its init at start."""

    def __init__(self, container: tuple[str, str] | None) -> None:
        self._container = container
        self._known: dict[int, int] = {}  # sender pid -> its pidfd, for senders found inside

    @classmethod
    def of_init(cls, init_pid: int) -> "ContainerMembership":
        try:
            return cls(primary_hierarchy(parse_proc_cgroup(_read_proc_cgroup(init_pid))))
        except OSError:
            return cls(None)

    def contains(self, pid: int) -> bool:
        """False also when the sender is gone: systemd's own rule is that a sender must
        live until its message is read (or use BARRIER=1, as systemd-notify does)."""
        if self._container is None or pid <= 0:
            return False
        pidfd = self._known.get(pid)
        if pidfd is not None:
            if _alive(pidfd):
                return True
            del self._known[pid]
            os.close(pidfd)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        try:
            inside = is_within(parse_proc_cgroup(_read_proc_cgroup(pid)), self._container) and _alive(pidfd)
        except OSError:
            inside = False
        if inside and len(self._known) < KNOWN_SENDERS_MAX:
            self._known[pid] = pidfd
        else:
            os.close(pidfd)
        return inside

    def close(self) -> None:
        for pidfd in self._known.values():
            os.close(pidfd)
        self._known.clear()


def _alive(pidfd: int) -> bool:
    """Whether the process has not exited (a zombie still counts, as its /proc does)."""
    try:
        _signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; signal 0 only asked
    return True


def _read_proc_cgroup(pid: int) -> str:
    # Once per datagram's sender: a bare read, a third of what open()'s text layer costs.
    fd = os.open(f"/proc/{pid}/cgroup", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, PROC_CGROUP_MAX).decode("utf-8", "replace")
    finally:
        os.close(fd)
