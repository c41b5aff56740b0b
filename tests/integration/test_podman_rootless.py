"""Rootless podman with the shim as monitor: a user with subordinate id ranges runs,
logs, stops, waits for and execs into containers; the monitor runs as that user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tarfile
import time

import pytest

pytestmark = pytest.mark.integration

USER = "shimrootless"  # made for the tests and removed after, unless it was there before
SUBORDINATE_IDS = "400000-465535"
IMAGE = "localhost/shim-busybox:latest"


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "making a test user needs root"
    for tool in ("useradd", "usermod", "userdel", "runuser", "newuidmap", "podman"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install passwd util-linux uidmap podman)"
    return None


class RootlessPodman:
    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.created_user = False
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
            subprocess.run(["usermod", "--add-subuids", SUBORDINATE_IDS, "--add-subgids", SUBORDINATE_IDS, USER],
                           check=True)
            self.created_user = True
        entry = pwd.getpwnam(USER)
        self.uid, self.home = entry.pw_uid, entry.pw_dir
        self.runtime_dir = f"/run/user/{self.uid}"
        self.made_runtime_dir = not os.path.isdir(self.runtime_dir)
        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        os.chown(self.runtime_dir, entry.pw_uid, entry.pw_gid)
        # The test's files where the user can read them (pytest's temp root is 0700).
        self.work = os.path.join(self.home, ".shim-rootless-test")
        os.makedirs(self.work, mode=0o755, exist_ok=True)
        self.conf = os.path.join(self.work, "containers.conf")
        with open(self.conf, "w") as f:
            f.write('[containers]\nnetns = "none"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'runtime = "runc"\nconmon_path = ["{monitor}"]\n')
        os.chmod(self.conf, 0o644)

    def argv(self, *args: str) -> list[str]:
        return ["runuser", "-u", USER, "--", "env", f"HOME={self.home}", f"XDG_RUNTIME_DIR={self.runtime_dir}",
                f"CONTAINERS_CONF={self.conf}", f"PATH={os.environ['PATH']}", "podman", *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv(*args), capture_output=True, timeout=timeout, cwd="/", **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]!r}")
        return proc

    def out(self, *args: str, **kwargs) -> str:
        return self(*args, **kwargs).stdout.decode().strip()

    def close(self) -> None:
        self("system", "reset", "--force", check=False, timeout=300)
        if self.created_user:
            # podman's pause process (the user's namespaces) is the user's; it ends by pid.
            for pid in subprocess.run(["pgrep", "-u", USER], capture_output=True).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            subprocess.run(["userdel", "--remove", USER], capture_output=True)
        if self.made_runtime_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture(scope="module")
def rootless(busybox_rootfs):
    from tests.helpers.podman import installed_monitor

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    podman = RootlessPodman(installed_monitor())
    try:
        archive = os.path.join(podman.work, "busybox.tar")
        with tarfile.open(archive, "w") as tar:
            tar.add(busybox_rootfs, arcname=".")
        os.chmod(archive, 0o644)
        podman("import", archive, IMAGE, timeout=600)
        yield podman
    finally:
        podman.close()


@pytest.fixture
def user_podman(rootless):
    from tests.helpers.harness import child_pids
    from tests.helpers.podman import monitors_gone

    baseline = child_pids()
    yield rootless
    rootless("rm", "--all", "--force", "--time", "0", check=False)
    # The user's podman keeps a pause process alive on purpose, and the user's fork server
    # lives on between containers; every monitor must end.
    problems = monitors_gone(baseline | long_lived_processes(), timeout=20)
    assert not problems, problems


def long_lived_processes() -> set[int]:
    """The user's pause process and fork server."""
    out = subprocess.run(["pgrep", "-u", USER, "-a"], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines() if "catatonit" in line or "--fork-server" in line}


def test_the_users_monitor_is_the_shim_running_as_the_user(user_podman):
    assert user_podman.out("info", "--format", "{{.Host.Conmon.Path}} {{.Host.Security.Rootless}}") == \
        f"{user_podman.monitor} true"
    cid = user_podman.out("run", "-d", IMAGE, "sleep", "100")
    monitor = int(user_podman.out("inspect", "--format", "{{.State.ConmonPid}}", cid))
    with open(f"/proc/{monitor}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(user_podman.uid)}
    with open(f"/proc/{monitor}/cmdline", "rb") as f:
        assert b"shim-conmon" in f.read()


def test_the_users_monitors_are_forked_by_the_users_fork_server(user_podman):
    # The first monitor starts the server, from inside podman's user namespace; the
    # next ones are its forks: the server's context (namespaces, privileges) is podman's.
    user_podman("run", "--rm", IMAGE, "true")
    deadline = time.monotonic() + 30
    while not [pid for pid in long_lived_processes() if b"--fork-server" in _cmdline(pid)]:
        assert time.monotonic() < deadline, "no fork server for the user"
        time.sleep(0.05)
    cid = user_podman.out("run", "-d", IMAGE, "sleep", "100")
    monitor = int(user_podman.out("inspect", "--format", "{{.State.ConmonPid}}", cid))
    assert b"--fork-server" in _cmdline(monitor)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def test_run_logs_stop_wait_exec(user_podman):
    assert user_podman("run", "--rm", IMAGE, "sh", "-c", "echo hello; exit 3", check=False).returncode == 3
    cid = user_podman.out("run", "-d", IMAGE, "sh", "-c", "trap 'echo bye; exit 4' TERM; echo up; while :; do sleep 0.1; done")
    deadline = time.monotonic() + 30
    while b"up" not in user_podman("logs", cid).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert user_podman("exec", cid, "sh", "-c", "echo in-exec; exit 6", check=False).returncode == 6
    assert user_podman("exec", "-i", cid, "cat", input=b"through stdin").stdout == b"through stdin"
    user_podman("stop", cid)
    assert user_podman.out("wait", cid) == "4"
    assert user_podman("logs", cid).stdout == b"up\nbye\n"
