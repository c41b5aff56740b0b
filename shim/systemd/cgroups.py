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


def prepare_systemd_cgroup(path: str, made: list[str]) -> None:
    """Make sure ``<name=systemd>/<path>`` exists before create, whichever runtime creates
    the container's cgroups and whenever it mounts them. Each directory the shim creates
    goes into ``made`` at once (deepest first), to be removed once the runtime deleted the
    container, even if a deeper mkdir fails."""
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
        made.insert(0, d)


def remove_cgroups(directories: list[str]) -> None:
    for directory in directories:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass  # the runtime removed it
        except OSError:
            break  # still in use: its parents are too
