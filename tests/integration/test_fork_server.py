"""The fork server (shim.conmon.fork_server): monitors forked from a warm interpreter.

Through podman: where monitors come from in each mode, the server started on demand,
leaving when idle, replaced after an upgrade, and its death or hang costing one fallback.
By hand, at the protocol: another user is refused, and the server killed between the fork
and the pidfile, or the client dying before it says go, never loses a container or leaves
one unsupervised."""

from __future__ import annotations

import array
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE, Podman, installed_monitor

pytestmark = pytest.mark.integration

SERVER_SCRIPT = os.path.join(os.path.dirname(installed_monitor()), "shim-conmon-monitor")


def monitor_of(podman, cid: str) -> psutil.Process:
    return psutil.Process(podman.conmon_pid(cid))


def wait_until(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} never came true"
        time.sleep(0.02)
    return value


def test_where_monitors_come_from(podman):
    podman("run", "--rm", IMAGE, "true")  # with a server configured, there is one after this
    if podman.server_socket is not None:
        wait_until(podman.fork_servers, what="a fork server")
    cid = podman.out("run", "-d", IMAGE, "sleep", "100")
    monitor = monitor_of(podman, cid)
    assert ("--fork-server" in monitor.cmdline()) == (podman.server_socket is not None)
    # Either way the monitor is where podman put its monitor: its conmon cgroup.
    with open(f"/proc/{monitor.pid}/cgroup") as f:
        assert any(line.endswith(":/libpod_parent/conmon") for line in f.read().splitlines())
    assert monitor.uids().real == 0 and monitor.status() != psutil.STATUS_ZOMBIE


@pytest.fixture(scope="module")
def server_storage(tmp_path_factory, busybox_rootfs, journal):
    """podman storage of this module's own, with the busybox image."""
    # A short name: podman refuses a runroot over 50 characters (tests/helpers/podman.py).
    podman = Podman(str(tmp_path_factory.mktemp("fsrv")), installed_monitor(), namespace=journal, fork_server=True)
    podman.import_rootfs(busybox_rootfs, IMAGE)
    yield podman
    podman.remove_everything()
    podman("system", "reset", "--force", check=False, timeout=300)


@pytest.fixture
def own_server_podman(server_storage, tmp_path):
    """A podman with a fork server of the test's own, which leaves after 2 idle seconds."""
    from tests.helpers.harness import child_pids
    from tests.helpers.podman import monitors_gone

    podman = server_storage
    podman.server_socket = str(tmp_path / "server.sock")
    conf = tmp_path / "containers.conf"
    text = open(os.path.join(podman.work, "containers.conf")).read()
    text = text.replace(f"SHIM_CONMON_FORK_SERVER={os.path.join(podman.work, 'fork-server.sock')}",
                        f"SHIM_CONMON_FORK_SERVER={podman.server_socket}\", \"SHIM_CONMON_FORK_SERVER_IDLE=2")
    conf.write_text(text)
    podman.env["CONTAINERS_CONF"] = str(conf)
    baseline = child_pids()
    yield podman
    podman.remove_everything()
    podman.stop_fork_servers()
    problems = monitors_gone(baseline)
    assert not problems, problems


def test_started_on_demand_and_gone_when_idle(own_server_podman):
    podman = own_server_podman
    assert podman.fork_servers() == []
    assert podman("run", "--rm", IMAGE, "true").returncode == 0
    server = wait_until(podman.fork_servers, what="a fork server")[0]
    wait_until(lambda: os.path.exists(podman.server_socket), what="the server's socket")
    cid = podman.out("run", "-d", IMAGE, "sleep", "100")
    assert "--fork-server" in monitor_of(podman, cid).cmdline()
    # the server runs with the client's interpreter options (shim-conmon's shell line)
    assert psutil.Process(server).cmdline()[1:4] == ["-I", "-S", "-OO"]
    # Idle for 2 s: the server leaves; its monitors stay, owing it nothing.
    wait_until(lambda: psutil.Process(server).status() == psutil.STATUS_ZOMBIE, what="the idle server's exit")
    os.waitpid(server, 0)
    assert not os.path.exists(podman.server_socket)
    assert podman.out("inspect", "--format", "{{.State.Running}}", cid) == "true"
    podman("stop", "-t", "0", cid)
    assert podman.out("inspect", "--format", "{{.State.ExitCode}}", cid) == "137"


def test_a_server_of_other_code_is_replaced(own_server_podman):
    podman = own_server_podman
    podman("run", "--rm", IMAGE, "true")
    old = wait_until(podman.fork_servers, what="a fork server")[0]
    package = os.path.dirname(os.path.dirname(os.path.abspath(__import__("shim").__file__)))
    marker = os.path.join(package, "shim", "__init__.py")
    info = os.stat(marker)
    os.utime(marker, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # "an upgrade"
    try:
        assert podman("run", "--rm", IMAGE, "sh", "-c", "exit 5", check=False).returncode == 5
        wait_until(lambda: psutil.Process(old).status() == psutil.STATUS_ZOMBIE, what="the stale server's exit")
        os.waitpid(old, 0)
        new = wait_until(lambda: [p for p in podman.fork_servers() if p != old], what="a new server")
        assert new
    finally:
        os.utime(marker, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_dead_or_hung_server_costs_one_fallback(own_server_podman, how):
    podman = own_server_podman
    podman("run", "--rm", IMAGE, "true")
    server = wait_until(podman.fork_servers, what="a fork server")[0]
    os.kill(server, signal.SIGKILL if how == "killed" else signal.SIGSTOP)
    try:
        started = time.monotonic()
        proc = podman("run", "--rm", IMAGE, "sh", "-c", "echo fallback-ok")
        assert proc.stdout == b"fallback-ok\n" and time.monotonic() - started < 30
    finally:
        os.kill(server, signal.SIGKILL)
        os.waitpid(server, 0)


# -- the protocol, by hand --------------------------------------------------------------


@pytest.fixture
def server():
    """A fork server of the test's own (its parent is the test process), its socket where
    another user could reach it if its modes allowed."""
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="shim-fork-test.")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "s", "server.sock")
    proc = subprocess.Popen([sys.executable, SERVER_SCRIPT, "--fork-server", path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: os.path.exists(path), what="the server's socket")
    proc.path = path  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    shutil.rmtree(directory)


def request_for(args: list[str], fd_targets: list[int], env: dict) -> bytes:
    from shim.conmon.fork_client import PACKAGE_DIR, _own_cgroups, _rlimits, _umask
    from shim.conmon.fork_protocol import Request, code_identity

    return Request(code_identity(PACKAGE_DIR, sys.executable), args, env, "/", _umask(), _rlimits(),
                   _own_cgroups(), fd_targets).encode()


def test_another_users_client_gets_no_answer(server):
    os.chmod(os.path.dirname(server.path), 0o755)
    os.chmod(server.path, 0o777)  # even when the socket itself lets anyone connect
    # The server may close before the probe has sent anything (EPIPE) or read its answer.
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])\n"
             "s.settimeout(5)\ntry: s.send(b'{}'); print(repr(s.recv(100)))\n"
             "except (ConnectionResetError, BrokenPipeError): print('reset')")
    proc = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c", probe, server.path],
                          capture_output=True, timeout=30)
    assert proc.stdout.strip() in (b"b''", b"reset"), proc  # closed without a word
    assert server.poll() is None  # and the server serves on


@pytest.mark.parametrize("moment", ["server killed between fork and pidfile", "client gone before go"])
def test_the_server_or_the_client_dying_midway(engine, server, moment):
    from tests.helpers.engine import wait_for_path
    from tests.helpers.harness import new_container_id
    from tests.helpers.runtimes import container_known

    bundle = engine.bundle(["sh", "-c", "exit 7"])
    cid = new_container_id("forked")
    engine.used.append(cid)
    work = os.path.join(os.path.dirname(server.path), cid)
    os.makedirs(os.path.join(work, "exits"))
    from tests.helpers.engine import monitor_args

    sync, sync_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    devnull = os.open(os.devnull, os.O_RDWR)
    # The client's fds as the monitor will have them: 0-2, and the sync pipe at 3.
    fds, targets = [devnull, devnull, devnull, sync_child.fileno()], [0, 1, 2, 3]
    env = {"PATH": os.environ["PATH"], "_OCI_SYNCPIPE": "3"}
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    client.connect(server.path)
    client.settimeout(10)
    client.send(request_for(monitor_args(cid, engine.runtime, bundle, work), targets, env))
    assert json.loads(client.recv(4096)) == {"ready": True}
    client.sendmsg([b"fds"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    sync_child.close()
    os.close(devnull)
    monitor = json.loads(client.recv(4096))["pid"]
    if moment == "client gone before go":
        client.close()
        pidfd = os.pidfd_open(monitor)
        assert select.select([pidfd], [], [], 20)[0], "the monitor waited for a go that cannot come"
        os.close(pidfd)
        assert not container_known(engine.runtime, cid)  # nothing was started
        sync.settimeout(5)
        assert sync.recv(100) == b""  # and nothing was said
        return
    server.kill()  # the server dies after the fork: the monitor owes it nothing
    server.wait()
    client.send(b'{"go": true}')
    client.close()
    sync.settimeout(30)
    assert json.loads(sync.recv(100))["data"] > 0
    engine.runtime_start(cid)
    assert wait_for_path(os.path.join(work, "exits", cid)) == "7"
