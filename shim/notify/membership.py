"""Is a process part of the container? Decided by its cgroup (pure parsing).

Every process of a container lives in the container's cgroup or below it (systemd inside
the container makes sub-cgroups), whatever namespaces it has, so the sender of a datagram
belongs to the container when its ``/proc/<pid>/cgroup`` path, on the container's primary
hierarchy, is the container's or under it. The primary hierarchy is cgroup2 (``0::``, read by shim.cgroups.membership)
when the container has one, else the named ``name=systemd`` one, else the first.
"""

from __future__ import annotations

from shim.cgroups.membership import CGROUP2, SYSTEMD_NAME, parse_proc_cgroup


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
            with open(f"/proc/{init_pid}/cgroup") as f:
                return cls(primary_hierarchy(parse_proc_cgroup(f.read())))
        except OSError:
            return cls(None)

    def contains(self, pid: int) -> bool:
        """False also when the sender is gone: systemd's own rule is that a sender must
        live until its message is read (or use BARRIER=1, as systemd-notify does)."""
        if self._container is None or pid <= 0:
            return False
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                return is_within(parse_proc_cgroup(f.read()), self._container)
        except OSError:
            return False
