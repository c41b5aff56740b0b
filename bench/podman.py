"""podman 4.3 for the benchmarks, once per monitor: stock conmon, the shim with its fork
server, the shim without it.

Each contender gets the tests' configuration (tests/helpers/podman.py: runc, cgroupfs,
file events, no network, its monitor as ``conmon_path``, ``SHIM_CONMON_FORK_SERVER`` in
``conmon_env_vars``: a socket in the bench's work directory, or ``0``), storage of its own
in the work directory, and the busybox root filesystem imported as an image (no
registry). Its containers and monitors go below a cgroup of the bench's own
(``--cgroup-parent``), never into podman's default parent, which other podman users share.

While podman runs, the bench is a child subreaper: the monitors podman daemonizes, their
exit commands and the fork server are re-parented to it, so that it can wait for each by
pid, reap it, and find its own fork server among its children. A thread reaps adopted
monitors as soon as they end, as init would: podman checks that a monitor is alive with
``kill(pid, 0)``, which a zombie passes, and a monitor left a zombie for a while made
``podman run --rm`` wait 20 s for its container (podman's "conmon timeout"). Leaving, it removes every
container, resets the storage, kills the fork server by pid, reaps everything it adopted,
and removes its cgroups.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bench.monitors import wait_pid_exit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "localhost/shim-bench-busybox:latest"
# The names the monitors' binaries run under (a process's name is 15 characters at
# most): podman starts `shim-conmon`, a bash script that hands off to the fork server or
# execs the venv's `python3` on `shim-conmon-monitor` (so that process is named python3).
CONMON_NAMES = frozenset({"conmon"})
SHIM_NAMES = frozenset({"shim-conmon", "shim-conmon-monitor"[:15], "python3"})
OWN_COMMANDS = "podman"  # what the bench runs itself (and podman's exit commands)
SERVER = "shim + server"
ALONE = "shim"
CONMON = "conmon"
# Waiting for what podman left to the monitor (its exit, the exit command's) to end.
GONE_TIMEOUT = 30.0  # seconds
POLL = 0.005  # seconds


@dataclass(frozen=True)
class Contender:
    name: str
    monitor: str  # conmon_path
    names: frozenset[str]  # what the monitor's processes are called
    fork_server: bool


def contenders(conmon: str | None) -> list[Contender]:
    """Those that can run here: conmon if installed, the shim with and without its server."""
    sys.path.insert(0, ROOT)
    from tests.helpers.podman import installed_monitor

    found = [Contender(CONMON, conmon, CONMON_NAMES, False)] if conmon else []
    return found + [Contender(SERVER, installed_monitor(), SHIM_NAMES, True),
                    Contender(ALONE, installed_monitor(), SHIM_NAMES, False)]


def unavailable_reason() -> str | None:
    sys.path.insert(0, ROOT)
    from tests.helpers.podman import unavailable_reason as reason

    return reason()


class Setup:
    """podman configured for one contender; ``run(...)`` runs one podman command."""

    def __init__(self, contender: Contender, work: str, rootfs: str, cgroup_parent: str) -> None:
        sys.path.insert(0, ROOT)
        from tests.helpers.podman import Podman

        self.contender = contender
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.podman = Podman(work, contender.monitor, fork_server=contender.fork_server)
        self.cgroup_parent = cgroup_parent
        self.podman.import_rootfs(rootfs, IMAGE)
        self._count = 0

    def new_name(self) -> str:
        self._count += 1
        return f"shim-bench-{os.getpid()}-{self._count}"

    def placement(self, pidfile: str) -> list[str]:
        """``podman run`` flags: the bench's cgroup, and where to write the monitor's pid."""
        return ["--cgroup-parent", self.cgroup_parent, "--conmon-pidfile", pidfile]

    def start(self, *args: str) -> subprocess.Popen:
        return self.podman.popen(*args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self, proc: subprocess.Popen, what: str) -> None:
        """Wait for a podman command; a failure stops the scenario with podman's words."""
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"podman {what} ({self.contender.name}) exited {proc.returncode}: "
                               f"{err.decode(errors='replace')[-2000:]}")

    def server(self) -> int | None:
        """The pid of this contender's fork server, if it has one running."""
        servers = self.podman.fork_servers()
        return servers[0] if servers else None

    def close(self) -> None:
        self.podman.remove_everything()
        self.podman("system", "reset", "--force", check=False, timeout=300)
        self.podman.stop_fork_servers()
        shutil.rmtree(self.work, ignore_errors=True)


def servers(made: Iterable[Setup]) -> set[int]:
    """The fork servers of all the contenders: the bench's children that stay."""
    return {pid for setup in made for pid in setup.podman.fork_servers()}


def read_pid(path: str, timeout: float = GONE_TIMEOUT) -> int:
    """The monitor's pid, from the file podman has it written to."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no monitor pid in {path}")
        time.sleep(POLL)


def wait_gone(pid: int, timeout: float = GONE_TIMEOUT) -> None:
    """Wait for a process to end, and reap it if it was re-parented here."""
    wait_pid_exit(pid, timeout)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def adopted(keep: set[int]) -> list[int]:
    """The bench's children that it did not start itself: what it adopted as a subreaper
    (``keep``: the children it knows, such as its fork servers and the commands still
    running)."""
    import psutil

    return [child.pid for child in psutil.Process().children() if child.pid not in keep]


def reap_adopted(keep: set[int], timeout: float = GONE_TIMEOUT) -> list[int]:
    """Wait for every adopted child to end, and reap it; returns those still alive at the
    timeout (left to the caller)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in adopted(keep):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if not done:
                alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(POLL)


def kill_and_reap(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def cgroup_mounts(mountinfo: str) -> list[str]:
    """Where every cgroup hierarchy (v1 and v2) is mounted, from /proc/self/mountinfo."""
    return [line.split()[4] for line in mountinfo.splitlines()
            if " - " in line and line.split(" - ", 1)[1].startswith(("cgroup ", "cgroup2 "))]


def remove_cgroup_tree(parent: str) -> list[str]:
    """Remove the bench's cgroup ``parent`` (and whatever podman made below it) in every
    hierarchy, deepest first; returns those that could not be removed."""
    with open("/proc/self/mountinfo") as f:
        mounts = cgroup_mounts(f.read())
    left = []
    for mount in mounts:
        top = os.path.join(mount, parent.lstrip("/"))
        if not os.path.isdir(top):
            continue
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
            try:
                os.rmdir(directory)
            except OSError:
                left.append(directory)
    return left


def name_and_state(stat: str) -> tuple[str, str]:
    """A process's name and state (``Z``: ended, not yet reaped) from /proc/<pid>/stat."""
    head, _, rest = stat.rpartition(") ")
    return head.partition(" (")[2], rest.split(" ", 1)[0]


def ended_children() -> list[tuple[int, str]]:
    """The bench's children that have ended and wait to be reaped, with their names."""
    found = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids = f.read().split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    name, state = name_and_state(f.read())
            except (FileNotFoundError, ProcessLookupError):  # reaped meanwhile
                continue
            if state == "Z":
                found.append((int(pid), name))
    return found


class Reaper:
    """Reaps the bench's children that end, except those named ``podman``: the podman
    commands the bench runs are waited for by whoever started them (reaping them here
    would steal their exit status). podman's exit commands, also ``podman`` and adopted
    when their monitor ends first, are reaped after each container (``reap_adopted``)."""

    def __init__(self) -> None:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            for pid, name in ended_children():
                if name != OWN_COMMANDS:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def adopting() -> Iterator[None]:
    """The bench as a child subreaper for a while; whatever it adopted is reaped (and
    killed, if it outlived its welcome) before it stops adopting."""
    from shim.process.subreaper import set_subreaper

    set_subreaper(True)
    reaper = Reaper()
    try:
        yield
    finally:
        reaper.close()
        kill_and_reap(reap_adopted(set()))
        set_subreaper(False)


@contextlib.contextmanager
def setups(chosen: list[Contender], work: str, rootfs: str) -> Iterator[dict[str, Setup]]:
    """podman for each contender, below a cgroup of the bench's own; everything is
    removed on the way out, whatever happened."""
    cgroup_parent = f"/shim-bench-{os.getpid()}"
    made: dict[str, Setup] = {}
    with adopting():
        try:
            for index, contender in enumerate(chosen):
                # A short directory: podman refuses a runroot over 50 characters.
                made[contender.name] = Setup(contender, os.path.join(work, str(index)), rootfs, cgroup_parent)
            yield made
        finally:
            for setup in made.values():
                setup.close()
            kill_and_reap(reap_adopted(set()))
            remove_cgroup_tree(cgroup_parent)
