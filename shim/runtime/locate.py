"""Choosing the OCI runtime binary.

``-r NAME|PATH``: a PATH must be an executable file; a NAME is looked up in ``$PATH``.
Without ``-r``: crun where it works on this host, else runc. crun 1.8 refuses hybrid cgroup
hosts (v1 controllers plus a cgroup2 mount that lists controllers): "cgroups in hybrid mode
not supported", so there the default is runc.
"""

from __future__ import annotations

import os

from shim.errors import ShimError

HYBRID_CGROUP2_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"
DEFAULT_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_executable(name: str, search_path: str) -> str | None:
    """Absolute path of ``name`` (a path, or a name looked up in ``search_path``)."""
    if "/" in name:
        path = os.path.abspath(name)
        return path if _is_executable_file(path) else None
    for directory in search_path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if _is_executable_file(candidate):
            return os.path.abspath(candidate)
    return None


def _is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def crun_works_on_host(hybrid_controllers: str | None) -> bool:
    """False on a hybrid host whose cgroup2 mount lists controllers (pure)."""
    return hybrid_controllers is None or hybrid_controllers.strip() == ""


def _read_hybrid_controllers() -> str | None:
    try:
        with open(HYBRID_CGROUP2_CONTROLLERS) as f:
            return f.read()
    except OSError:
        return None


def locate_runtime(requested: str | None, env: dict[str, str]) -> str:
    """The absolute path of the runtime to use, or ShimError naming what is missing."""
    search_path = env.get("PATH") or DEFAULT_SEARCH_PATH
    if requested:
        path = find_executable(requested, search_path)
        if path is None:
            where = "" if "/" in requested else " in $PATH"
            raise ShimError(f"runtime {requested!r} not found{where} (or not executable)")
        return path
    crun = find_executable("crun", search_path)
    if crun and crun_works_on_host(_read_hybrid_controllers()):
        return crun
    runc = find_executable("runc", search_path)
    if runc:
        return runc
    if crun:
        return crun  # its own error will say why it cannot run here
    raise ShimError("no OCI runtime found: install crun or runc (apt-get install crun runc), or pass -r PATH")
