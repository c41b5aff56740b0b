"""The shim's cgroups and the cgroup mounts it can see (pure parsers).

``/proc/self/cgroup`` gives a path per hierarchy (``N:controllers:path``; ``0::path`` for
cgroup v2), relative to the shim's cgroup namespace; ``/proc/self/mountinfo`` says where
each hierarchy is mounted and which of its directories the mount shows (its root). A
hierarchy is usable only when it is mounted from its root: then ``mountpoint + path`` is
the directory of a cgroup, which is also how runc and crun resolve an absolute
``cgroupsPath``.
"""

from __future__ import annotations

from shim.record import Record

CGROUP2 = "cgroup2"
SYSTEMD_NAME = "name=systemd"
UNIFIED, HYBRID, LEGACY = "unified", "hybrid", "legacy"  # the same words as shim.systemd.config


class Hierarchy(Record):
    """One mounted hierarchy: its key (``cgroup2``, ``name=systemd`` or the controllers
    as the kernel lists them, ``cpu,cpuacct``), where it is mounted, and the shim's path in it."""

    __slots__ = ("key", "mountpoint", "own_path")

    def __init__(self, key: str, mountpoint: str, own_path: str) -> None:
        self.key = key
        self.mountpoint = mountpoint
        self.own_path = own_path

    def directory(self, path: str) -> str:
        """The directory of the cgroup at ``path`` (absolute in this hierarchy)."""
        return self.mountpoint.rstrip("/") + path if path != "/" else self.mountpoint


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``{key: path}`` from /proc/self/cgroup; cgroup v2's line is under ``cgroup2``."""
    paths = {}
    for line in text.splitlines():
        number, sep1, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not (sep1 and sep2 and number.isdigit() and path.startswith("/")):
            continue
        key = CGROUP2 if number == "0" and controllers == "" else controllers
        paths[key] = path
    return paths


def parse_cgroup_mounts(text: str) -> list[tuple[str, str, str]]:
    """``[(key, mountpoint, root)]`` of the visible cgroup and cgroup2 mounts in
    /proc/self/mountinfo.

    A line is ``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER``;
    a v1 mount's key is its controllers (or ``name=...``) from the super options, in the
    order /proc/self/cgroup lists them. A mount hidden by a later one on the same place or
    above it (a new /sys/fs/cgroup over the old one, in a new cgroup namespace) is left out.
    """
    mounts, mountpoints = [], []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 6 or len(fields) < dash + 4:
            continue
        fstype, superopts = fields[dash + 1], fields[dash + 3]
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        mountpoints.append(mountpoint)
        if fstype == CGROUP2:
            key = CGROUP2
        elif fstype == "cgroup":
            names = [o for o in superopts.split(",") if o in _V1_CONTROLLERS or o.startswith("name=")]
            if not names:
                continue
            key = ",".join(sorted(names, key=_kernel_order))
        else:
            continue
        mounts.append((len(mountpoints) - 1, key, mountpoint, root))
    return [(key, mountpoint, root) for index, key, mountpoint, root in mounts
            if not any(_covers(later, mountpoint) for later in mountpoints[index + 1:])]


def _covers(mountpoint: str, path: str) -> bool:
    return path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")


# The kernel lists co-mounted controllers in this order (cgroup_subsys order), named
# hierarchies after them: "cpu,cpuacct", "net_cls,net_prio".
_V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "io", "blkio", "memory", "devices", "freezer", "net_cls",
                   "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc")


def _kernel_order(name: str) -> int:
    return _V1_CONTROLLERS.index(name) if name in _V1_CONTROLLERS else len(_V1_CONTROLLERS)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def hierarchies(proc_cgroup: str, mountinfo: str) -> list[Hierarchy] | None:
    """The mounted hierarchies with the shim's path in each, or None when one of them is
    mounted from a directory other than its root (the shim could not tell where a
    runtime would put an absolute path), or the shim's path is outside the mount's view."""
    paths = parse_proc_cgroup(proc_cgroup)
    found, seen = [], set()
    for key, mountpoint, root in parse_cgroup_mounts(mountinfo):
        if key not in paths or key in seen:
            continue  # a hierarchy mounted twice (a bind of it elsewhere) counts once
        seen.add(key)
        if root != "/" or "/.." in paths[key] + "/":
            return None
        found.append(Hierarchy(key, mountpoint, paths[key]))
    return found


def layout(found: list[Hierarchy]) -> str | None:
    """How systemd would see these mounts: cgroup v2 alone, v1 with v2 beside it, or v1."""
    keys = {h.key for h in found}
    if keys == {CGROUP2}:
        return UNIFIED
    if SYSTEMD_NAME in keys:
        return HYBRID if CGROUP2 in keys else LEGACY
    return None


def tracking(found: list[Hierarchy], kind: str) -> Hierarchy:
    """The hierarchy systemd keeps its units in: v2 on unified and hybrid hosts (systemd
    tracks with the v2 mount there), ``name=systemd`` on legacy ones."""
    key = SYSTEMD_NAME if kind == LEGACY else CGROUP2
    return next(h for h in found if h.key == key)
