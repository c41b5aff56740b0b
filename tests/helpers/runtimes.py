"""The OCI runtimes the integration tests drive: runc as is, crun through a wrapper on
hybrid-cgroup hosts.

crun 1.8 refuses a hybrid host whose cgroup2 mount lists controllers ("cgroups in hybrid
mode not supported"). The wrapper hides that file in a private mount namespace, then execs
crun: the container is created exactly as crun would on a v1 host.
"""

from __future__ import annotations

import os
import shutil
import subprocess

HYBRID_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"


def is_hybrid_with_controllers() -> bool:
    try:
        with open(HYBRID_CONTROLLERS) as f:
            return bool(f.read().strip())
    except OSError:
        return False


def write_crun_wrapper(directory: str, crun: str) -> str:
    empty = os.path.join(directory, "empty-controllers")
    open(empty, "w").close()
    wrapper = os.path.join(directory, "crun")
    with open(wrapper, "w") as f:
        f.write(
            "#!/bin/sh\n"
            "# crun on a hybrid cgroup host: hide the cgroup2 controller list (see tests/helpers/runtimes.py)\n"
            f"exec unshare -m --propagation private /bin/sh -c "
            f"'mount --bind {empty} {HYBRID_CONTROLLERS} && exec {crun} \"$@\"' crun \"$@\"\n"
        )
    os.chmod(wrapper, 0o755)
    return wrapper


def runtime_path(name: str, scratch: str) -> tuple[str | None, str]:
    """(path to use, reason when unavailable)."""
    binary = shutil.which(name)
    if binary is None:
        return None, f"{name} is not installed (apt-get install {name})"
    if name == "crun" and is_hybrid_with_controllers():
        return write_crun_wrapper(scratch, binary), ""
    return binary, ""


def container_known(runtime: str, container_id: str) -> bool:
    return subprocess.run([runtime, "state", container_id], capture_output=True).returncode == 0


def force_delete(runtime: str, container_id: str) -> None:
    subprocess.run([runtime, "delete", "--force", container_id], capture_output=True)
