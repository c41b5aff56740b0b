"""OCI bundles for tests: the demo's base configuration (``runc spec`` with pipes, a
read-only shared root, a tmpfs on /tmp) plus what a test asks for."""

from __future__ import annotations

import os

from shim.demo.bundle import default_config, write_config


def make_config(args: list[str], *, rootfs: str, pid_namespace: bool = True, env: list[str] | None = None,
                binds: list[tuple[str, str, bool]] = (), annotations: dict | None = None) -> dict:
    """A config running ``args`` on ``rootfs``; ``binds`` are (host, container, readonly)."""
    config = default_config(args, rootfs)
    config["hostname"] = "shim-test"
    if env:
        config["process"]["env"] += list(env)
    if not pid_namespace:
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "pid"]
    for host, inside, readonly in binds:
        config["mounts"].append({"destination": inside, "type": "bind", "source": host,
                                 "options": ["rbind", "ro" if readonly else "rw"]})
    if annotations:
        config["annotations"] = dict(annotations)
    return config


def write_bundle(directory: str, config: dict) -> str:
    return write_config(directory, config)


def host_python_binds() -> list[tuple[str, str, bool]]:
    """The host's /usr, /lib, /lib64 read-only, for payloads that need Python or systemd
    tools. Busybox keeps /bin: on a merged-/usr host the host's /bin is only a symlink."""
    binds = []
    for path in ("/usr", "/lib", "/lib64"):
        if os.path.isdir(path):
            binds.append((os.path.realpath(path), path, True))
    return binds


# podman's default capability set: what an engine gives a container, and what systemd as
# PID 1 needs to drop capabilities for its own services (CAP_SETPCAP).
ENGINE_DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                       "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
                       "CAP_SYS_CHROOT"]


def with_engine_caps(config: dict) -> dict:
    config["process"]["capabilities"] = {k: list(ENGINE_DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")}
    config["process"]["noNewPrivileges"] = False
    return config
