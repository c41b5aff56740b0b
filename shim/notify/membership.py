"""Is a process part of the container? Decided by its cgroup (pure parsing).

Every process of a container lives in the container's cgroup or below it (systemd inside
the container makes sub-cgroups), whatever namespaces it has, so the sender of a datagram
belongs to the container when its ``/proc/<pid>/cgroup`` path, on the container's primary
hierarchy, is the container's or under it. The primary hierarchy is cgroup2 (``0::``)
when the container has one, else the named ``name=systemd`` one, else the first
(shim.cgroups.membership parses the file).
"""

from __future__ import annotations

import os

from shim.cgroups.membership import CGROUP2, SYSTEMD_NAME, parse_proc_cgroup

PROC_CGROUP_MAX = 65536  # /proc/<pid>/cgroup is a line per hierarchy: far less


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
        try:
            return is_within(parse_proc_cgroup(_read_proc_cgroup(pid)), self._container)
        except OSError:
            return False


def _read_proc_cgroup(pid: int) -> str:
    # Once per datagram's sender: a bare read, a third of what open()'s text layer costs.
    fd = os.open(f"/proc/{pid}/cgroup", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, PROC_CGROUP_MAX).decode("utf-8", "replace")
    finally:
        os.close(fd)
