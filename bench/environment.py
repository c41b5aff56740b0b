"""What the benchmarks run: the stamping payload, bundles, runtimes, monitors and peers.

Everything is started by absolute path (a pyenv or other shim on PATH would add tens of
milliseconds to every Python start), and the shim is run the way a user runs it: its
console script, from the virtualenv the README's command makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from shim.demo.bundle import cache_root, cached_busybox_rootfs, default_config, write_config

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = ("tini", "catatonit", "dumb-init")


class Environment:
    def __init__(self, workdir: str | None = None, cpus: set[int] | None = None) -> None:
        self.workdir = workdir or tempfile.mkdtemp(prefix="shim-bench.")
        # where the latency scenarios run (bench/placement.py); None: wherever the kernel likes
        self.cpus = cpus
        self.python = sys.executable
        self.shim = [os.path.join(os.path.dirname(sys.executable), "shim")]
        if not os.path.exists(self.shim[0]):
            self.shim = [sys.executable, "-m", "shim"]
        self.rootfs = cached_busybox_rootfs(cache_root(dict(os.environ)))
        self.stamp_dir = os.path.join(self.workdir, "stamp")
        os.makedirs(self.stamp_dir, exist_ok=True)
        self.stamp_native = self._build_stamp()
        self.runtimes = self._runtimes()
        self.conmon = shutil.which("conmon")
        self.peers = {name: shutil.which(name) for name in PEERS}
        self._count = 0

    # -- the payload ------------------------------------------------------------------
    def _build_stamp(self) -> bool:
        """Compile stamp.c statically if a compiler is there; else use stamp.py."""
        gcc = shutil.which("gcc") or shutil.which("cc")
        target = os.path.join(self.stamp_dir, "stamp")
        if gcc:
            result = subprocess.run([gcc, "-O2", "-static", "-o", target, os.path.join(HERE, "payloads", "stamp.c")],
                                    capture_output=True)
            if result.returncode == 0:
                os.symlink("stamp", os.path.join(self.stamp_dir, "stamp-runtime"))  # see stamp.c
                return True
        shutil.copy(os.path.join(HERE, "payloads", "stamp.py"), os.path.join(self.stamp_dir, "stamp.py"))
        return False

    def stamp_argv(self, *args: str, inside: bool) -> list[str]:
        """The payload's command: inside a container (its bind-mounted directory) or here."""
        directory = "/bench" if inside else self.stamp_dir
        if self.stamp_native:
            return [f"{directory}/stamp", *args]
        return ["/usr/bin/python3", "-IS", f"{directory}/stamp.py", *args]

    # -- bundles ----------------------------------------------------------------------
    def bundle(self, name: str, *args: str, rootfs: str | None = None, pid_namespace: bool = True,
               extra_binds=(), config_edit=None) -> str:
        config = default_config(self.stamp_argv(*args, inside=True), rootfs or self.rootfs)
        config["mounts"].append({"destination": "/bench", "type": "bind", "source": self.stamp_dir,
                                 "options": ["rbind", "ro"]})
        if not self.stamp_native:
            for path in ("/usr", "/lib", "/lib64"):
                if os.path.isdir(path):
                    config["mounts"].append({"destination": path, "type": "bind", "source": os.path.realpath(path),
                                             "options": ["rbind", "ro"]})
        for source, destination in extra_binds:
            config["mounts"].append({"destination": destination, "type": "bind", "source": source,
                                     "options": ["rbind", "rw"]})
        if not pid_namespace:
            config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "pid"]
        if config_edit:
            config_edit(config)
        return write_config(os.path.join(self.workdir, "bundles", name), config)

    # -- runtimes ---------------------------------------------------------------------
    def _runtimes(self) -> dict[str, str]:
        sys.path.insert(0, os.path.dirname(HERE))
        from tests.helpers.runtimes import runtime_path

        found = {}
        for name in ("runc", "crun"):
            path, _ = runtime_path(name, self.workdir)
            if path:
                found[name] = path
        return found

    def new_id(self, prefix: str) -> str:
        self._count += 1
        return f"bench-{prefix}-{os.getpid()}-{self._count}"

    def state_dir(self) -> str:
        return os.path.join(self.workdir, "state")

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
