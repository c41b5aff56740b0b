"""Running the shim as its users do (a separate process), and checking what it left.

The test process is made a child subreaper (in conftest), so anything a shim leaves
running or unreaped is re-parented to pytest, where ``leftover_children`` finds it.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import sys
import time

import psutil

from tests.helpers import oci
from tests.helpers.runtimes import container_known, force_delete

# The installed script, as users and units run it (its shell line: python3 -I -S -OO).
_SCRIPT = os.path.join(os.path.dirname(sys.executable), "shim")
SHIM = [_SCRIPT] if os.path.isfile(_SCRIPT) else [sys.executable, "-m", "shim"]
PAYLOADS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "payloads")
_ids = itertools.count(1)


class Result:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes, elapsed: float) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    @property
    def shim_lines(self) -> list[str]:
        """The shim's own lines on stderr."""
        return [l for l in self.stderr.decode(errors="replace").splitlines() if l.startswith("shim: ")]

    def __repr__(self) -> str:
        return f"Result(rc={self.returncode}, stdout={self.stdout[:200]!r}, stderr={self.stderr[:500]!r})"


def new_container_id(prefix: str = "shimtest") -> str:
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


class ShimHarness:
    """One test's view: a runtime, a state dir, bundles, and the IDs it used."""

    def __init__(self, runtime: str, rootfs: str, workdir: str) -> None:
        self.runtime = runtime
        self.rootfs = rootfs
        self.workdir = workdir
        self.state_dir = os.path.join(workdir, "state")
        self.used_ids: list[str] = []
        self._bundles = itertools.count(1)
        self.baseline_children = child_pids()

    def allow(self, pid: int) -> None:
        """A helper process this test started on purpose and ends itself."""
        self.baseline_children.add(pid)

    def new_id(self) -> str:
        container_id = new_container_id()
        self.used_ids.append(container_id)
        return container_id

    def bundle(self, args: list[str], rootfs: str | None = None, engine_caps: bool = False, **kwargs) -> str:
        directory = os.path.join(self.workdir, f"bundle{next(self._bundles)}")
        config = oci.make_config(args, rootfs=rootfs or self.rootfs, **kwargs)
        return oci.write_bundle(directory, oci.with_engine_caps(config) if engine_caps else config)

    def python_bundle(self, payload: str, *args: str, out_dir: str, **kwargs) -> str:
        """A bundle running ``tests/payloads/<payload>`` with the host's Python; ``out_dir``
        is mounted read-write at /out for what the payload records."""
        binds = oci.host_python_binds() + [(PAYLOADS, "/payloads", True), (out_dir, "/out", False)]
        binds += kwargs.pop("binds", [])
        return self.bundle(["/usr/bin/python3", "-IS", f"/payloads/{payload}", *args], binds=binds, **kwargs)

    def argv(self, bundle: str, container_id: str, *flags: str) -> list[str]:
        return [*SHIM, "run", "-b", bundle, "-r", self.runtime, "--state-dir", self.state_dir, *flags, container_id]

    def run(self, args: list[str] | None = None, *flags: str, bundle: str | None = None,
            container_id: str | None = None, timeout: float = 60, **popen) -> Result:
        bundle = bundle or self.bundle(args or ["true"])
        container_id = container_id or self.new_id()
        started = time.monotonic()
        proc = subprocess.run(self.argv(bundle, container_id, *flags), capture_output=True, timeout=timeout, **popen)
        return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def start(self, args: list[str] | None = None, *flags: str, bundle: str | None = None,
              container_id: str | None = None, **popen) -> subprocess.Popen:
        bundle = bundle or self.bundle(args or ["true"])
        container_id = container_id or self.new_id()
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(self.argv(bundle, container_id, *flags), **popen)
        proc.container_id = container_id  # type: ignore[attr-defined]
        return proc

    def pid_file(self, name: str = "init.pid") -> str:
        return os.path.join(self.workdir, name)

    def leftovers(self) -> list[str]:
        """What the shim runs of this test left behind, cleaned up as it is found."""
        problems = []
        for container_id in self.used_ids:
            if container_known(self.runtime, container_id):
                problems.append(f"{os.path.basename(self.runtime)} still knows container {container_id}")
                force_delete(self.runtime, container_id)
            if os.path.exists(os.path.join(self.state_dir, container_id)):
                problems.append(f"state directory {container_id} left behind")
        problems += leftover_children(self.baseline_children)
        return problems


def wait_for_file(path: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text.strip():
                return text
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"{path} did not appear within {timeout} s")


def wait_for_trio(pid: int, timeout: float = 10) -> None:
    """Until the shim ``pid`` runs trio: its epoll instance exists (nothing before trio.run
    opens one). Before that, shim run serves its container on the main thread (output,
    sd_notify), so a test that measures the shim's fds must wait for trio's to be open."""
    deadline = time.monotonic() + timeout
    directory = f"/proc/{pid}/fd"
    while True:
        for name in os.listdir(directory):
            try:
                if os.readlink(f"{directory}/{name}") == "anon_inode:[eventpoll]":
                    return
            except FileNotFoundError:
                pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the shim (pid {pid}) did not run trio within {timeout} s")
        time.sleep(0.005)


# The notify relay thread's: open while the thread runs, which it does not while the host
# is behind (a flood makes it so now and then).
RELAY_THREAD_FD = "anon_inode:[eventfd]"


def held_fds(pid: int) -> collections.Counter:
    """What a process holds open, by target (each fd's link in /proc)."""
    held: collections.Counter = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            held[os.readlink(f"/proc/{pid}/fd/{fd}")] += 1
        except FileNotFoundError:  # closed while listed
            continue
    return held


def assert_fds_flat(pid: int, before: collections.Counter) -> int:
    """The shim ends up holding what it held ``before`` (a datagram still being judged holds
    its fds, its sender's pidfd and /proc file for a moment: waited for), and no more than
    the relay thread's one eventfd. Returns the count of fds held."""
    baseline = collections.Counter(before)
    baseline.pop(RELAY_THREAD_FD, None)
    deadline = time.monotonic() + 10
    while True:
        now = held_fds(pid)
        threads = now.pop(RELAY_THREAD_FD, 0)
        if now == baseline and threads <= 1:
            return sum(now.values()) + threads
        assert time.monotonic() < deadline, f"held since: {now - baseline}, released: {baseline - now}, " \
                                            f"eventfds: {threads}"
        time.sleep(0.02)


def children_of(pid: int) -> list[tuple[list[str], str]]:
    """(command line, status) of each child of ``pid`` (a zombie's command line is empty),
    leaving out those that vanish while looked at; none once ``pid`` is gone."""
    found = []
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return found
    for child in children:
        try:
            status = child.status()
            found.append(([] if status == psutil.STATUS_ZOMBIE else child.cmdline(), status))
        except psutil.NoSuchProcess:
            pass
    return found


def zombies_of(pid: int) -> int:
    return sum(1 for _, status in children_of(pid) if status == psutil.STATUS_ZOMBIE)


def child_pids() -> set[int]:
    return {c.pid for c in psutil.Process().children()}


def leftover_children(baseline: set[int]) -> list[str]:
    """Children of the test process that were not there at ``baseline``: each is a leak.

    The test process is a subreaper, so whatever a shim leaves running or unreaped lands
    here. Leaks are killed and reaped by pid (never waitpid(-1), which would steal
    statuses from subprocess).
    """
    problems = []
    for child in psutil.Process().children():
        if child.pid in baseline:
            continue
        try:
            cmdline = " ".join(child.cmdline()) or child.name()
            status = child.status()
        except psutil.NoSuchProcess:
            continue
        problems.append(f"leftover process {child.pid} ({status}): {cmdline}")
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(child.pid, 0)
        except ChildProcessError:
            pass
    return problems
