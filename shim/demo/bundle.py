"""A small OCI bundle from busybox-static: the demo's default, and the tests' base.

The root filesystem is ``/bin/busybox`` plus one symlink per applet; the configuration is
what ``runc spec`` writes, with pipes instead of a terminal, a read-only root shared by
every container, and a tmpfs on /tmp. Built once into a cache directory: each tree is
assembled in a temp directory and renamed into place, so an interrupted build never leaves
a half tree that a later run would trust.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile

from shim.errors import ShimError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
ROOTFS_DIRS = ("bin", "dev", "proc", "sys", "tmp", "run", "etc", "var", "data", "usr", "lib", "lib64", "sbin", "mnt")
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

BASE_CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "shim-demo",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def default_config(args: list[str], rootfs: str) -> dict:
    """A fresh copy of the base configuration running ``args`` on ``rootfs``."""
    config = copy.deepcopy(BASE_CONFIG)
    config["process"]["args"] = list(args)
    config["root"]["path"] = rootfs
    return config


def write_config(directory: str, config: dict) -> str:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return directory


def cache_root(env: dict[str, str]) -> str:
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or "/root", ".cache")
    return os.path.join(base, "shim")


def is_static_elf(header: bytes) -> bool:
    """True for an ELF executable without a PT_INTERP program header (pure).

    A dynamically linked busybox (Debian's ``busybox`` package) cannot run in a root
    filesystem that holds nothing else; ``busybox-static`` can.
    """
    if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit only
        return False
    order = "little" if header[5] == 1 else "big"
    phoff = int.from_bytes(header[32:40], order)
    phentsize = int.from_bytes(header[54:56], order)
    phnum = int.from_bytes(header[56:58], order)
    pt_interp = 3
    for i in range(phnum):
        start = phoff + i * phentsize
        entry = header[start:start + 4]
        if len(entry) < 4:
            return False
        if int.from_bytes(entry, order) == pt_interp:
            return False
    return True


def find_static_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                if is_static_elf(f.read(65536)):
                    return path
    raise ShimError("busybox-static is not installed (apt-get install busybox-static): "
                    "the demo builds its container from it")


def build_busybox_rootfs(target: str, busybox: str) -> None:
    """``/bin/busybox`` and one symlink per applet, plus the usual mount points."""
    for d in ROOTFS_DIRS:
        os.makedirs(os.path.join(target, d), exist_ok=True)
    shutil.copy2(busybox, os.path.join(target, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = os.path.join(target, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(target, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\n")
    with open(os.path.join(target, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")


def cached_busybox_rootfs(cache: str) -> str:
    """The cached busybox root filesystem under ``cache``, built on first use."""
    target = os.path.join(cache, "busybox-rootfs")
    if os.path.isfile(os.path.join(target, "bin", "busybox")):
        return target
    busybox = find_static_busybox()
    os.makedirs(cache, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=".busybox-rootfs.", dir=cache)
    try:
        build_busybox_rootfs(temp, busybox)
        os.chmod(temp, 0o755)  # mkdtemp made it 0700; the container's / must be 0755
        os.rename(temp, target)
    except OSError:
        shutil.rmtree(temp, ignore_errors=True)
        if not os.path.isfile(os.path.join(target, "bin", "busybox")):
            raise  # not a lost race with another build: a real failure
    return target
