"""A real systemd service manager for tests.

Where PID 1 is systemd (the Dockerfile.test container), tests use it: ``SystemManager``,
``systemctl`` without ``--user``, units in /etc/systemd/system. Elsewhere (a machine whose
PID 1 is not systemd) ``HostSystemd`` starts a user manager (``systemd --user``) confined
to a cgroup subtree of its own and to new mount, pid and cgroup namespaces, so
``Type=notify`` units, ``MainPID``, ``StatusText``, watchdogs and ``.socket`` units behave
as on a systemd host, while nothing outside the subtree is touched. Never run a systemd in
the machine's root cgroup: it would move every process of the machine into its own scope.
``stop`` kills the namespace's PID 1 (and so everything in it) and removes the subtree.

The confined manager can see the cgroups in another layout than the machine's: on a
hybrid machine, cgroup v2 alone (``unified``) or v1 alone (``legacy``), by mounting only
those hierarchies in its namespace. It mounts only hierarchies the machine has mounted
already: a new v1 mount of a controller would take it away from cgroup v2 machine-wide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import psutil

from shim.cgroups.membership import CGROUP2, HYBRID, LEGACY, SYSTEMD_NAME, UNIFIED, parse_cgroup_mounts

CGROUP_ROOT = "/sys/fs/cgroup"
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


def machine_hierarchies() -> list[tuple[str, str]]:
    """[(key, mount directory name)] of the machine's cgroup hierarchies: ``cgroup2`` or
    the v1 controllers (``cpu,cpuacct``, ``name=systemd``)."""
    with open("/proc/self/mountinfo") as f:
        mounts = parse_cgroup_mounts(f.read())
    return [(key, os.path.relpath(mountpoint, CGROUP_ROOT)) for key, mountpoint, _ in mounts
            if mountpoint == CGROUP_ROOT or mountpoint.startswith(CGROUP_ROOT + "/")]


def cgroup_layout() -> str | None:
    """The machine's: ``hybrid`` (v1 controllers, name=systemd, v2 at unified),
    ``unified`` (v2 alone), ``legacy`` (v1 alone), or None."""
    keys = {key for key, _ in machine_hierarchies()}
    if keys == {CGROUP2}:
        return UNIFIED
    if SYSTEMD_NAME in keys:
        return HYBRID if CGROUP2 in keys else LEGACY
    return None


def layouts_to_test() -> list[str]:
    """The layouts a confined manager can show on this machine: all three from a hybrid
    machine, else the machine's own."""
    layout = cgroup_layout()
    return [HYBRID, UNIFIED, LEGACY] if layout == HYBRID else [layout] if layout else []


def pid1_is_systemd() -> bool:
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip() == "systemd" and os.path.isdir("/run/systemd/system")
    except OSError:
        return False


def unavailable_reason(layout: str | None = None) -> str | None:
    if os.geteuid() != 0:
        return "a systemd manager for tests needs root"
    if pid1_is_systemd():
        return None
    if not os.path.exists(MANAGER):
        return f"{MANAGER} is missing (apt-get install systemd)"
    for tool in ("unshare", "nsenter", "setsid"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install util-linux)"
    if cgroup_layout() is None:
        return "unknown cgroup layout (neither hybrid, unified nor legacy)"
    if layout is not None and layout not in layouts_to_test():
        return f"a {layout} cgroup layout cannot be shown from this machine's {cgroup_layout()} one"
    return None


def manager_for_tests(workdir: str):
    """The manager tests use here: PID 1 if it is systemd, else a confined one (not started)."""
    return SystemManager() if pid1_is_systemd() else HostSystemd(workdir)


class Manager:
    """What tests do with a service manager, whichever it is."""

    user: list[str] = []  # ["--user"] for a user manager
    unit_dir = ""
    layout: str | None = None

    def run(self, *argv: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def systemctl(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("systemctl", *self.user, *args)

    def systemd_run(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("systemd-run", *self.user, *args)

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

    def status(self, unit: str) -> str:
        return self.run("sh", "-c", f"systemctl {' '.join(self.user)} status {unit} --no-pager -l 2>&1 | tail -20").stdout

    def write_unit(self, name: str, text: str) -> None:
        """Install a unit file for the manager, and reload it."""
        self.run("mkdir", "-p", self.unit_dir, check=True)
        self.run("sh", "-c", f"cat > {self.unit_dir}/{name} <<'EOF_UNIT'\n{text}\nEOF_UNIT", check=True)
        self.systemctl("daemon-reload")

    def remove_units(self, *names: str) -> None:
        self.systemctl("stop", *names)
        self.systemctl("reset-failed", *names)
        self.run("rm", "-f", *(f"{self.unit_dir}/{name}" for name in names))
        self.systemctl("daemon-reload")

    def pid_cmdline(self, pid: str) -> str:
        return self.run("cat", f"/proc/{pid}/cmdline").stdout.replace("\0", " ")

    def mounted_hierarchies(self) -> set[str]:
        """The hierarchies mounted where the manager runs (``cgroup2``, ``name=systemd``, ...)."""
        return {key for key, _, _ in parse_cgroup_mounts(self.run("cat", "/proc/self/mountinfo").stdout)}

    def cgroup_roots(self) -> list[str]:
        """The directories, as this test process sees them, of the manager's root cgroup
        in each hierarchy it uses."""
        raise NotImplementedError

    def cgroups_named(self, *names: str) -> list[str]:
        """Every cgroup directory below the manager's roots whose name is one of ``names``."""
        found = []
        for root in self.cgroup_roots():
            for dirpath, dirnames, _ in os.walk(root):
                found += [os.path.join(dirpath, d) for d in dirnames if d in names]
        return found


class SystemManager(Manager):
    """PID 1, when it is systemd: units in /etc/systemd/system, systemctl as is."""

    unit_dir = "/etc/systemd/system"

    def __init__(self) -> None:
        self.layout = cgroup_layout()

    def start(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.run("systemctl", "is-system-running").stdout.strip() not in ("running", "degraded"):
            if time.monotonic() > deadline:
                raise RuntimeError("systemd (PID 1) did not finish booting: " + self.run(
                    "systemctl", "list-jobs", "--no-pager").stdout)
            time.sleep(0.1)

    def stop(self) -> None:
        pass  # PID 1 is not ours to stop

    def run(self, *argv: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout)

    def cgroup_roots(self) -> list[str]:
        return [os.path.join(CGROUP_ROOT, directory) for _, directory in machine_hierarchies()]


class HostSystemd(Manager):
    """A user manager confined to its own cgroup subtree and namespaces."""

    user = ["--user"]
    unit_dir = f"{RUNTIME_DIR}/systemd/user"

    def __init__(self, workdir: str, layout: str | None = None) -> None:
        self.workdir = workdir
        self.name = f"shim-test-systemd-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.layout = layout or cgroup_layout()
        self.hierarchies = machine_hierarchies()  # the subtree is made in each of them
        self.init_pid: int | None = None
        self._launcher: subprocess.Popen | None = None

    def _cgroup(self, directory: str) -> str:
        return os.path.normpath(os.path.join(CGROUP_ROOT, directory, self.name))

    def _mounts(self) -> str:
        """The inner script's cgroup mounts for the layout, from the machine's hierarchies."""
        v2 = [d for key, d in self.hierarchies if key == CGROUP2]
        if self.layout == UNIFIED:
            return "mount -t cgroup2 cgroup2 /sys/fs/cgroup"
        lines = ["mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup"]
        for key, directory in self.hierarchies:
            if key != CGROUP2:
                lines.append(f"mkdir -p /sys/fs/cgroup/{directory} && "
                             f"mount -t cgroup -o {'none,' if key.startswith('name=') else ''}{key} cgroup "
                             f"/sys/fs/cgroup/{directory}")
        if self.layout == HYBRID and v2:
            lines.append(f"mkdir -p /sys/fs/cgroup/{v2[0]} && mount -t cgroup2 cgroup2 /sys/fs/cgroup/{v2[0]}")
        return "\n".join(lines)

    def start(self, timeout: float = 20) -> None:
        for key, directory in self.hierarchies:
            os.makedirs(self._cgroup(directory))
            if "cpuset" in key.split(","):
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    with open(f"{CGROUP_ROOT}/{directory}/{knob}") as src, \
                            open(f"{self._cgroup(directory)}/{knob}", "w") as dst:
                        dst.write(src.read())
        inner = os.path.join(self.workdir, f"host-systemd-init-{self.layout}.sh")
        with open(inner, "w") as f:
            f.write(_INNER.format(runtime_dir=RUNTIME_DIR, cgroups=self._mounts(), manager=MANAGER))
        enter = " ".join(f"echo $$ > {self._cgroup(d)}/cgroup.procs;" for _, d in self.hierarchies)
        log = open(os.path.join(self.workdir, f"host-systemd-{self.layout}.log"), "wb")
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
        raise RuntimeError(f"the confined systemd manager did not come up; see {self.workdir}/host-systemd-{self.layout}.log")

    def run(self, *argv: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command beside the manager (its namespaces), e.g. systemctl --user ..."""
        return subprocess.run(["nsenter", "-t", str(self.init_pid), "-m", "-p", "-C", "env",
                               f"XDG_RUNTIME_DIR={RUNTIME_DIR}", *argv],
                              capture_output=True, text=True, check=check, timeout=timeout)

    def cgroup_roots(self) -> list[str]:
        return [self._cgroup(d) for key, d in self.hierarchies if self._shows(key)]

    def _shows(self, key: str) -> bool:
        """Whether the manager's namespace mounts this hierarchy."""
        if self.layout == UNIFIED:
            return key == CGROUP2
        return key != CGROUP2 or self.layout == HYBRID

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
        for _, directory in self.hierarchies:
            root = self._cgroup(directory)
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
