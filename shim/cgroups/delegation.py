"""Is the shim's cgroup a systemd unit's, or delegated to it? (small I/O around pure rules)

Two signs, either enough:
- the shim is the process systemd started for a service (``$SYSTEMD_EXEC_PID`` is its
  pid): its cgroup is the unit's. ``shim generate systemd`` writes ``Delegate=yes``, which
  makes the subtree the shim's by systemd's rules; a unit without it works the same, but
  systemd's documentation reserves that subtree to systemd;
- the cgroup carries systemd's delegation mark, the ``trusted.delegate`` or
  ``user.delegate`` extended attribute set to 1 (a system manager sets it on every
  ``Delegate=yes`` unit since v251, a scope included).
Both come from systemd: the shim looks only when systemd started it or one of its
ancestors (``$INVOCATION_ID`` or ``$SYSTEMD_EXEC_PID`` in its environment; see
``shim.lifecycle.plan``). A shim in the root cgroup, or in a cgroup without either sign,
keeps the runtime's default placement: containers started by hand or by an engine stay
where they always were.
"""

from __future__ import annotations

import os

from shim.cgroups.membership import Hierarchy, hierarchies, layout, tracking

DELEGATE_XATTRS = ("trusted.delegate", "user.delegate")
PROC_CGROUP = "/proc/self/cgroup"
PROC_MOUNTINFO = "/proc/self/mountinfo"


class CgroupParent:
    """The cgroup the container goes below: the shim's own in the tracking hierarchy,
    and every mounted hierarchy (to prepare the same path in each)."""

    __slots__ = ("path", "layout", "hierarchies")

    def __init__(self, path: str, layout: str, hierarchies: list[Hierarchy]) -> None:
        self.path = path
        self.layout = layout
        self.hierarchies = hierarchies

    def __repr__(self) -> str:
        return f"CgroupParent({self.path!r}, {self.layout!r}, {self.hierarchies!r})"


def started_by_systemd(env: dict[str, str], own_pid: int) -> bool:
    return env.get("SYSTEMD_EXEC_PID") == str(own_pid)


def is_marked_delegated(values: list[bytes | None]) -> bool:
    """The delegation xattrs' values (None where absent): systemd writes ``1``."""
    return any(v is not None and v.strip() == b"1" for v in values)


def decide(found: list[Hierarchy] | None, systemd_started: bool, xattrs: list[bytes | None]) -> CgroupParent | None:
    """The parent for the container, from what was read (pure)."""
    if not found:
        return None
    kind = layout(found)
    if kind is None:
        return None
    own = tracking(found, kind).own_path
    if own == "/" or not (systemd_started or is_marked_delegated(xattrs)):
        return None
    return CgroupParent(own, kind, found)


def delegated_parent(env: dict[str, str], own_pid: int) -> CgroupParent | None:
    """The shim's own cgroup if the container belongs below it, else None."""
    try:
        found = hierarchies(_read(PROC_CGROUP), _read(PROC_MOUNTINFO))
    except OSError:
        return None
    if not found or layout(found) is None:
        return None
    home = tracking(found, layout(found))
    if home.own_path == "/":
        return None  # the common case outside systemd: no xattr to read
    return decide(found, started_by_systemd(env, own_pid), _delegation_xattrs(home.directory(home.own_path)))


def _delegation_xattrs(directory: str) -> list[bytes | None]:
    values = []
    for name in DELEGATE_XATTRS:
        try:
            values.append(os.getxattr(directory, name))
        except OSError:
            values.append(None)
    return values


def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")
