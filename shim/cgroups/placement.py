"""The container's cgroup below the unit's: the config edit (pure) and the cgroup file
system prepared before create (I/O).

The container's cgroup is ``<unit>/container-<ID>`` (a relative ``cgroupsPath`` of the
bundle goes below the unit instead), given to the runtime as an absolute path, which runc
and crun both read from each hierarchy's root. Relative paths would not do: runc reads
them from its own cgroup on cgroup v1 but from its parent's on v2, crun from the root.

Before create:
- cgroup v2: a cgroup with processes cannot have controllers enabled for its children
  (no internal processes), so the shim moves itself into ``<unit>/shim`` first; the unit's
  cgroup then only has children, and the runtime can enable controllers for the
  container. The shim cannot remove its own cgroup: systemd removes the unit's whole
  subtree once the unit stopped.
- cgroup v1 (and hybrid): the runtime creates the same path in every hierarchy, also in
  those where systemd has no cgroup for the unit (freezer, cpuset, often blkio...). There,
  the shim creates what is missing above the container's cgroup itself, and takes the
  unit's directory as its own (one a killed shim left behind included), so that it can
  remove them once the runtime deleted the container. Where systemd has the unit's
  cgroup, it stays systemd's.
"""

from __future__ import annotations

import os

from shim.cgroups.delegation import CgroupParent
from shim.cgroups.membership import CGROUP2, UNIFIED
from shim.errors import ShimError

CONTAINER_PREFIX = "container-"
SHIM_LEAF = "shim"
CPUSET_KNOBS = ("cpuset.cpus", "cpuset.mems")  # empty in a new v1 cpuset cgroup: no task could join it


def placement_applies(config: dict, runtime_args: list[str]) -> bool:
    """False when the bundle or the runtime's flags already decide where the container
    goes: an absolute ``cgroupsPath``, a systemd-style ``slice:prefix:name``, a relative
    one that climbs out with ``..``, or the runtime's systemd cgroup driver, which asks
    systemd for a scope of its own (pure)."""
    if _systemd_driver(runtime_args):
        return False
    path = (config.get("linux") or {}).get("cgroupsPath")
    if path is None or path == "":
        return True
    return isinstance(path, str) and not path.startswith("/") and ":" not in path and ".." not in path.split("/")


def _systemd_driver(runtime_args: list[str]) -> bool:
    for i, arg in enumerate(runtime_args):
        if arg == "--systemd-cgroup" or arg == "--cgroup-manager=systemd":
            return True
        if arg == "--cgroup-manager" and i + 1 < len(runtime_args) and runtime_args[i + 1] == "systemd":
            return True
    return False


class CgroupSetup:
    """What ``prepare`` does before create; ``systemd_leaf`` is systemd mode's
    ``name=systemd`` cgroup, which must exist before create to be bind-mounted."""

    __slots__ = ("parent", "container_path", "systemd_leaf")

    def __init__(self, parent: CgroupParent, container_path: str) -> None:
        self.parent = parent
        self.container_path = container_path
        self.systemd_leaf: str | None = None


def container_path(parent: str, config: dict, container_id: str) -> str:
    """``<parent>/container-<ID>``, or ``<parent>/<cgroupsPath>`` for a relative one (pure)."""
    relative = (config.get("linux") or {}).get("cgroupsPath") or f"{CONTAINER_PREFIX}{container_id}"
    return "/".join([parent.rstrip("/"), *(part for part in relative.split("/") if part)])


def place_container(config: dict, container_id: str, parent: CgroupParent) -> CgroupSetup:
    """Point ``linux.cgroupsPath`` below ``parent`` (pure edit of the effective config)."""
    path = container_path(parent.path, config, container_id)
    config.setdefault("linux", {})["cgroupsPath"] = path
    return CgroupSetup(parent, path)


def directories_to_take(existing, own_path: str, parent_path: str) -> tuple[list[str], bool]:
    """For one v1 hierarchy: the missing directories above the container's cgroup, top
    down, and whether the unit's own directory is the shim's to remove (it is unless the
    shim already sits in it, i.e. systemd made it). ``existing(path)`` says whether a
    cgroup exists (pure, given that)."""
    missing = []
    path = parent_path
    while path != "/" and not existing(path):
        missing.append(path)
        path = path.rsplit("/", 1)[0] or "/"
    adopt = own_path != parent_path and existing(parent_path) and parent_path not in missing
    return list(reversed(missing)), adopt


def prepare(setup: CgroupSetup, made: list[str]) -> None:
    """Make the cgroup file system ready for create. Every directory the shim is to remove
    goes into ``made`` as soon as it exists, so a failure half-way leaves nothing behind."""
    parent = setup.parent
    if parent.layout == UNIFIED:
        _move_into_leaf(parent)
    else:
        for hierarchy in parent.hierarchies:
            if hierarchy.key == CGROUP2:
                continue  # hybrid: v2 is systemd's tracking hierarchy, the unit is there
            missing, adopt = directories_to_take(lambda p: os.path.isdir(hierarchy.directory(p)),
                                                 hierarchy.own_path, parent.path)
            if adopt:
                made.append(hierarchy.directory(parent.path))
            for path in missing:
                _make(hierarchy.directory(path), made, cpuset="cpuset" in hierarchy.key.split(","))


def _move_into_leaf(parent: CgroupParent) -> None:
    home = next(h for h in parent.hierarchies if h.key == CGROUP2)
    leaf = home.directory(f"{parent.path.rstrip('/')}/{SHIM_LEAF}")
    try:
        os.makedirs(leaf, exist_ok=True)
        fd = os.open(f"{leaf}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")  # 0: the writing process, i.e. the whole shim
        finally:
            os.close(fd)
    except OSError as e:
        raise ShimError(f"cgroup {leaf}: cannot move the shim there: {e.strerror}") from None


def _make(directory: str, made: list[str], cpuset: bool) -> None:
    try:
        os.mkdir(directory)
    except FileExistsError:
        return  # made meanwhile by someone else: theirs
    except OSError as e:
        raise ShimError(f"cgroup {directory}: cannot create: {e.strerror}") from None
    made.append(directory)
    if cpuset:
        parent = os.path.dirname(directory)
        for knob in CPUSET_KNOBS:
            try:
                with open(f"{parent}/{knob}", "rb") as src:
                    value = src.read()
                with open(f"{directory}/{knob}", "wb") as dst:
                    dst.write(value)
            except OSError as e:
                raise ShimError(f"cgroup {directory}: cannot set {knob}: {e.strerror}") from None
