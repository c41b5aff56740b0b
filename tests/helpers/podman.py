"""A real podman 4.3 whose monitor is the shim, on storage of its own.

Each test session gets a private configuration (runc, cgroupfs, file events, no network,
``conmon_path`` = the installed ``shim-conmon``), storage in a temp directory, and images
imported from local root filesystems (busybox, and the Debian systemd image for systemd
tests): no registry. The machine's default podman storage is never touched.

The test process is a child subreaper (conftest), so the monitors podman daemonizes are
re-parented to it: after each test every container is removed, and every monitor must end
and is reaped here by pid. A monitor that outlives its container is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import psutil

BUSYBOX_IMAGE = "localhost/shim-busybox:latest"
DEBIAN_IMAGE = "localhost/shim-debian-systemd:latest"
MONITOR_NAME = "shim-conmon"


def installed_monitor() -> str:
    """The ``shim-conmon`` script next to the interpreter running the tests (the venv's)."""
    return os.path.join(os.path.dirname(sys.executable), MONITOR_NAME)


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "podman tests run rootful podman and need root"
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman)"
    if not os.access(installed_monitor(), os.X_OK):
        return f"{installed_monitor()} is not installed (.ci/install)"
    return None


CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{work}/events.log"
runtime = "runc"
tmp_dir = "{work}/tmp"
conmon_path = ["{monitor}"]
conmon_env_vars = ["PATH={path}", "SHIM_CONMON_FORK_SERVER={server}"]
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{work}/storage"
runroot = "{work}/run"
"""
RUNROOT_MAX = 50  # podman refuses a longer runroot ("the specified runroot is longer than 50 characters")


class Podman:
    """podman, configured for the tests; ``podman(...)`` runs one command."""

    def __init__(self, work: str, monitor: str, namespace=None, fork_server: bool = True) -> None:
        """``namespace``: a PrivateJournal (tests/helpers/journal.py) whose mount namespace
        every podman command runs in, so that containers can log to its journald (podman's
        overlay mounts live there too, so every command must). ``fork_server``: monitors
        come from a fork server of this session's own (its FIFO in ``work``), or every
        monitor starts on its own."""
        if len(os.path.join(work, "run")) > RUNROOT_MAX:
            # Every podman command, the monitors' exit commands among them, would fail.
            raise ValueError(f"podman's runroot {work}/run is over {RUNROOT_MAX} characters: use a shorter work directory")
        self.work = work
        self.monitor = monitor
        self.namespace = namespace
        self.server_path = os.path.join(work, "fork-server") if fork_server else None
        os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
        self.env = dict(os.environ)
        for name, text in (("containers.conf", CONTAINERS_CONF), ("storage.conf", STORAGE_CONF),
                           ("registries.conf", "")):
            path = os.path.join(work, name)
            with open(path, "w") as f:
                f.write(text.format(work=work, monitor=monitor, path=os.environ["PATH"],
                                    server=self.server_path or "0"))
        self.env.update(CONTAINERS_CONF=os.path.join(work, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(work, "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=os.path.join(work, "registries.conf"))
        for name in ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            self.env.pop(name, None)

    def argv(self, *args: str) -> list[str]:
        if self.namespace is not None:
            return self.namespace.argv("podman", *args)
        return ["podman", *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, env: dict | None = None,
                 **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        proc = subprocess.run(self.argv(*args), env={**self.env, **(env or {})}, timeout=timeout, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: "
                                 f"{(proc.stderr or b'')[-2000:]!r}")
        return proc

    def out(self, *args: str, **kwargs) -> str:
        return self(*args, **kwargs).stdout.decode().strip()

    def popen(self, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), env={**self.env, **(env or {})}, **kwargs)

    def import_rootfs(self, rootfs: str, image: str, cmd: str | None = None) -> None:
        if self("image", "exists", image, check=False).returncode == 0:
            return
        archive = os.path.join(self.work, f"{image.rsplit('/', 1)[-1].replace(':', '-')}.tar")
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        args = ["import"] + (["--change", f"CMD {cmd}"] if cmd else []) + [archive, image]
        self(*args, timeout=600)
        os.unlink(archive)

    def remove_everything(self) -> None:
        self("pod", "rm", "--all", "--force", "--time", "0", check=False)
        self("rm", "--all", "--force", "--time", "0", check=False)

    def conmon_pid(self, container: str) -> int:
        return int(self.out("inspect", "--format", "{{.State.ConmonPid}}", container))

    def fork_servers(self) -> list[int]:
        """This session's fork servers (the test process's children: it is a subreaper)."""
        if self.server_path is None:
            return []
        found = []
        for child in psutil.Process().children():
            try:
                if self.server_path in child.cmdline() and "--fork-server" in child.cmdline():
                    found.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return found

    def stop_fork_servers(self) -> None:
        for pid in self.fork_servers():
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def monitors_gone(baseline: set[int], timeout: float = 20.0) -> list[str]:
    """Wait for every child of the test process that was not there at ``baseline`` (the
    monitors podman daemonized, re-parented here) to exit, and reap it by pid. Returns what
    is still alive at the timeout (killed and reaped as it is reported)."""
    deadline = time.monotonic() + timeout
    problems = []
    while True:
        alive = []
        for child in psutil.Process().children():
            if child.pid in baseline:
                continue
            try:
                status = child.status()
            except psutil.NoSuchProcess:
                continue
            if status == psutil.STATUS_ZOMBIE:
                try:
                    os.waitpid(child.pid, 0)
                except ChildProcessError:
                    pass
            else:
                alive.append(child)
        if not alive:
            return problems
        if time.monotonic() > deadline:
            for child in alive:
                try:
                    problems.append(f"process {child.pid} outlived its container: {' '.join(child.cmdline())}")
                    os.kill(child.pid, signal.SIGKILL)
                    os.waitpid(child.pid, 0)
                except (psutil.NoSuchProcess, ProcessLookupError, ChildProcessError):
                    pass
            return problems
        time.sleep(0.05)
