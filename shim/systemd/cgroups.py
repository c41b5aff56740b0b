"""The host's cgroup layout, and the container's ``name=systemd`` cgroup directory."""

from __future__ import annotations

import os

from shim.errors import ShimError
from shim.systemd.config import CGROUP_ROOT, HYBRID, LEGACY, UNIFIED


def host_cgroup_layout() -> str:
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
        return UNIFIED
    if os.path.isdir(f"{CGROUP_ROOT}/unified"):
        return HYBRID
    return LEGACY


def prepare_systemd_cgroup(path, made: list[str]) -> None:
    """Make the cgroup file system ready for create, as ``Plan.render`` asked: ``path`` is
    systemd mode's ``name=systemd`` cgroup, or the container's place below the shim's unit
    (a ``shim.cgroups.placement.CgroupSetup``, which may carry that cgroup too).

    ``<name=systemd>/<path>`` must exist before create, whichever runtime creates the
    container's cgroups and whenever it mounts them. Each directory the shim creates goes
    into ``made`` at once, to be removed once the runtime deleted the container, even if a
    deeper mkdir fails."""
    if not isinstance(path, str):
        from shim.cgroups.placement import prepare

        prepare(path, made)
        path = path.systemd_leaf
        if path is None:
            return
    missing = []
    directory = f"{CGROUP_ROOT}/systemd{path.rstrip('/')}"
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except OSError as e:
            raise ShimError(f"cgroup {d}: cannot create: {e.strerror}") from None
        made.append(d)


def remove_cgroups(directories: list[str]) -> None:
    """Remove what the shim created, deepest first (across hierarchies). One the runtime
    removed already is fine; one still in use (another container below it) stays, and so
    do its parents."""
    for directory in sorted(set(directories), key=lambda d: d.count("/"), reverse=True):
        try:
            os.rmdir(directory)
        except OSError:
            pass
