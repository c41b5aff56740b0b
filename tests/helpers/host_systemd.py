"""A real systemd service manager for tests, on a machine whose PID 1 is not systemd.

It is a user manager (``systemd --user``) confined to a cgroup subtree of its own and to
new mount, pid and cgroup namespaces, so ``Type=notify`` units, ``MainPID``, ``StatusText``,
watchdogs and ``.socket`` units behave as on a systemd host, while nothing outside the
subtree is touched. Never run a systemd in the machine's root cgroup: it would move every
process of the machine into its own scope. ``stop`` kills the namespace's PID 1 (and so
everything in it) and removes the subtree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import psutil

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
MANAGER = "/usr/lib/systemd/systemd"
RUNTIME_DIR = "/run/user/0"

# PID 1 of the new namespaces: private mounts, a fresh /proc and /run, the cgroup
# hierarchies mounted again (the cgroup namespace makes the subtree their root), then the
# manager. A user manager refuses to be PID 1, so this shell stays PID 1.
_INNER = """
set -e
mount --make-rprivate /
mount -t proc proc /proc
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/system {runtime_dir} && chmod 700 {runtime_dir}
{cgroups}
export XDG_RUNTIME_DIR={runtime_dir}
{manager} --user --log-target=console --log-level=notice &
wait
"""
_CGROUPS_HYBRID = """
mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
for h in {controllers}; do mkdir -p /sys/fs/cgroup/$h && mount -t cgroup -o $h cgroup /sys/fs/cgroup/$h; done
mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
"""
_CGROUPS_UNIFIED = "mount -t cgroup2 cgroup2 /sys/fs/cgroup"


def cgroup_layout() -> str | None:
    """``hybrid`` (v1 controllers + name=systemd + cgroup2 at unified), ``unified``, or None."""
    if os.path.isdir(f"{CGROUP_ROOT}/systemd") and os.path.isdir(f"{CGROUP_ROOT}/unified"):
        return "hybrid"
    if os.path.exists(f"{CGROUP_ROOT}/cgroup.controllers"):
        return "unified"
    return None


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "a confined systemd manager needs root"
    if not os.path.exists(MANAGER):
        return f"{MANAGER} is missing (apt-get install systemd)"
    for tool in ("unshare", "nsenter", "setsid"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install util-linux)"
    if cgroup_layout() is None:
        return "unknown cgroup layout (neither hybrid nor unified)"
    return None


class HostSystemd:
    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.name = f"shim-test-systemd-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.layout = cgroup_layout()
        self.hierarchies = ([h for h in (*V1_CONTROLLERS, "systemd", "unified") if os.path.isdir(f"{CGROUP_ROOT}/{h}")]
                            if self.layout == "hybrid" else [""])
        self.init_pid: int | None = None
        self._launcher: subprocess.Popen | None = None

    def _cgroup(self, hierarchy: str) -> str:
        return os.path.join(CGROUP_ROOT, hierarchy, self.name) if hierarchy else os.path.join(CGROUP_ROOT, self.name)

    def start(self, timeout: float = 20) -> None:
        for h in self.hierarchies:
            os.makedirs(self._cgroup(h))
            if h == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    with open(f"{CGROUP_ROOT}/cpuset/{knob}") as src, open(f"{self._cgroup(h)}/{knob}", "w") as dst:
                        dst.write(src.read())
        cgroups = (_CGROUPS_HYBRID.format(controllers=" ".join(V1_CONTROLLERS)) if self.layout == "hybrid"
                   else _CGROUPS_UNIFIED)
        inner = os.path.join(self.workdir, "host-systemd-init.sh")
        with open(inner, "w") as f:
            f.write(_INNER.format(runtime_dir=RUNTIME_DIR, cgroups=cgroups, manager=MANAGER))
        enter = " ".join(f"echo $$ > {self._cgroup(h)}/cgroup.procs;" for h in self.hierarchies)
        log = open(os.path.join(self.workdir, "host-systemd.log"), "wb")
        # The launcher moves itself into the subtree first, then becomes the namespaces'
        # PID 1 (unshare --fork): the manager is born inside the subtree.
        self._launcher = subprocess.Popen(
            ["setsid", "/bin/sh", "-c", f"{enter} exec unshare --mount --pid --cgroup --fork /bin/sh {inner}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.init_pid is None:
                children = psutil.Process(self._launcher.pid).children() if self._launcher.poll() is None else []
                self.init_pid = children[0].pid if children else None
            if self.init_pid and subprocess.run(
                    ["nsenter", "-t", str(self.init_pid), "-m", "test", "-S", f"{RUNTIME_DIR}/systemd/private"]
            ).returncode == 0:
                return
            if self._launcher.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the confined systemd manager did not come up; see {self.workdir}/host-systemd.log")

    def run(self, *argv: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command beside the manager (its namespaces), e.g. systemctl --user ..."""
        return subprocess.run(["nsenter", "-t", str(self.init_pid), "-m", "-p", "-C", "env",
                               f"XDG_RUNTIME_DIR={RUNTIME_DIR}", *argv],
                              capture_output=True, text=True, check=check, timeout=timeout)

    def systemctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("systemctl", "--user", *args)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.systemctl("show", unit, "-p", ",".join(properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_for(self, unit: str, prop: str, values: set[str], timeout: float = 20) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.show(unit, prop, "ActiveState", "SubState", "Result", "MainPID", "StatusText", "NRestarts")
            if state.get(prop) in values or time.monotonic() > deadline:
                return state
            time.sleep(0.05)

    def write_unit(self, name: str, text: str) -> None:
        """Install a unit file for the manager (units under its runtime directory)."""
        directory = f"{RUNTIME_DIR}/systemd/user"
        self.run("mkdir", "-p", directory, check=True)
        self.run("sh", "-c", f"cat > {directory}/{name} <<'EOF_UNIT'\n{text}\nEOF_UNIT", check=True)
        self.systemctl("daemon-reload")

    def pid_cmdline(self, pid: str) -> str:
        return self.run("cat", f"/proc/{pid}/cmdline").stdout.replace("\0", " ")

    def stop(self) -> None:
        if self.init_pid:
            try:
                os.kill(self.init_pid, 9)
            except ProcessLookupError:
                pass
        if self._launcher is not None:
            self._launcher.wait(timeout=30)
            self._launcher = None
        deadline = time.monotonic() + 10
        for h in self.hierarchies:
            root = self._cgroup(h)
            while os.path.isdir(root):
                for dirpath, dirnames, _ in sorted(os.walk(root, topdown=False), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
                if os.path.isdir(root):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cannot remove {root}")
                    time.sleep(0.05)
