"""What systemd needs to run as the container's PID 1 (pure edits of the OCI config).

systemd's container interface (docs/CONTAINER_INTERFACE.md) and podman's systemd mode agree:
- tmpfs on ``/run``, ``/run/lock``, ``/tmp``, ``/var/log/journal`` (``rw,nosuid,nodev``),
  each unless the bundle already mounts something there, and placed before any bundle
  mount below it so it hides nothing;
- a cgroup tree systemd may write to: on cgroup v2 a ``cgroup`` mount in a cgroup
  namespace; on v1 and hybrid hosts a tmpfs on ``/sys/fs/cgroup`` and, at
  ``/sys/fs/cgroup/systemd``, a writable bind of the container's own subtree of the host's
  ``name=systemd`` hierarchy, in a cgroup namespace so that subtree is its root. Never a
  second mount of type ``cgroup`` on v1: systemd then exits without a word;
- ``container=`` in the environment (the bundle's value wins) and ``container_uuid``, from
  which systemd derives the machine id of an image with an empty ``/etc/machine-id``.
"""

from __future__ import annotations

from shim.bundle.effective import get_env, set_env

MANAGER_NAME = "shim"  # what systemd reports as the container manager (systemd-detect-virt)
CGROUP_ROOT = "/sys/fs/cgroup"
TMPFS = (("/run", "755"), ("/run/lock", "1777"), ("/tmp", "1777"), ("/var/log/journal", "755"))
UNIFIED, HYBRID, LEGACY = "unified", "hybrid", "legacy"


def container_uuid(container_id: str) -> str:
    """32 hex digits derived from the ID: stable across restarts of the same container."""
    try:  # the builtin hash, without hashlib's OpenSSL (about 2 ms to load)
        from _sha256 import sha256
    except ImportError:  # pragma: no cover
        from hashlib import sha256
    return sha256(container_id.encode()).hexdigest()[:32]


def default_cgroups_path(container_id: str) -> str:
    return f"/{container_id}"


def apply_systemd_mode(config: dict, container_id: str, layout: str) -> str | None:
    """Edit ``config`` for a systemd payload on a host with this cgroup ``layout``.

    Returns the container's cgroup path in the ``name=systemd`` hierarchy when the shim
    must make sure it exists before create (v1 and hybrid), else None.
    """
    mounts = config.setdefault("mounts", [])
    for destination, mode in TMPFS:
        _mount_unless_present(mounts, destination, {
            "destination": destination, "type": "tmpfs", "source": "tmpfs",
            "options": ["rw", "nosuid", "nodev", f"mode={mode}"],
        })
    if get_env(config, "container") is None:
        set_env(config, "container", MANAGER_NAME)
    if get_env(config, "container_uuid") is None:
        set_env(config, "container_uuid", container_uuid(container_id))
    return _give_cgroup_access(config, container_id, layout)


def _give_cgroup_access(config: dict, container_id: str, layout: str) -> str | None:
    linux = config.setdefault("linux", {})
    namespaces = linux.setdefault("namespaces", [])
    if not any(isinstance(ns, dict) and ns.get("type") == "cgroup" for ns in namespaces):
        namespaces.append({"type": "cgroup"})
    mounts = config["mounts"]
    mounts[:] = [m for m in mounts if not _under(m.get("destination", ""), CGROUP_ROOT)]
    if layout == UNIFIED:
        mounts.append({"destination": CGROUP_ROOT, "type": "cgroup", "source": "cgroup",
                       "options": ["rw", "nosuid", "noexec", "nodev"]})
        return None
    path = linux.get("cgroupsPath") or default_cgroups_path(container_id)
    if not path.startswith("/"):
        path = "/" + path  # runc and crun both read a relative path from the hierarchy's root here
    linux["cgroupsPath"] = path
    mounts.append({"destination": CGROUP_ROOT, "type": "tmpfs", "source": "tmpfs",
                   "options": ["rw", "nosuid", "nodev", "noexec", "mode=755"]})
    mounts.append({"destination": f"{CGROUP_ROOT}/systemd", "type": "bind",
                   "source": f"{CGROUP_ROOT}/systemd{path}",
                   "options": ["rbind", "rw", "nosuid", "nodev", "noexec"]})
    return path


def _under(path: str, directory: str) -> bool:
    path = path.rstrip("/") or "/"
    return path == directory or path.startswith(directory + "/")


def _mount_unless_present(mounts: list, destination: str, mount: dict) -> None:
    """Add ``mount`` unless something is mounted at ``destination``; before the first
    mount below it, so that mount stays visible."""
    if any(m.get("destination", "").rstrip("/") == destination for m in mounts):
        return
    for i, m in enumerate(mounts):
        if _under(m.get("destination", ""), destination):
            mounts.insert(i, mount)
            return
    mounts.append(mount)
