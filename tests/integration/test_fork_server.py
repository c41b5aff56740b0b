"""The fork server (shim.conmon.fork_server): monitors forked from a warm interpreter.

Through podman: where monitors come from in each mode, the server started on demand,
leaving when idle, replaced after an upgrade, and its death or hang costing one fallback.
By hand, with the real client script and the engine's pipes: another user's request is
ignored, and the server killed between the fork and the pidfile, or the client dying
before the monitor claims the container, never loses a container or leaves one
unsupervised."""

from __future__ import annotations

import os
import signal
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
    if podman.server_path is not None:
        wait_until(podman.fork_servers, what="a fork server")
    cid = podman.out("run", "-d", IMAGE, "sleep", "100")
    monitor = monitor_of(podman, cid)
    assert ("--fork-server" in monitor.cmdline()) == (podman.server_path is not None)
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
    podman.server_path = str(tmp_path / "server")
    conf = tmp_path / "containers.conf"
    text = open(os.path.join(podman.work, "containers.conf")).read()
    text = text.replace(f"SHIM_CONMON_FORK_SERVER={os.path.join(podman.work, 'fork-server')}",
                        f"SHIM_CONMON_FORK_SERVER={podman.server_path}\", \"SHIM_CONMON_FORK_SERVER_IDLE=2")
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
    wait_until(lambda: os.path.exists(podman.server_path), what="the server's FIFO")
    cid = podman.out("run", "-d", IMAGE, "sleep", "100")
    assert "--fork-server" in monitor_of(podman, cid).cmdline()
    # the server runs with the client's interpreter options (shim-conmon's shell line)
    assert psutil.Process(server).cmdline()[1:4] == ["-I", "-S", "-OO"]
    # Idle for 2 s: the server leaves; its monitors stay, owing it nothing.
    wait_until(lambda: psutil.Process(server).status() == psutil.STATUS_ZOMBIE, what="the idle server's exit")
    os.waitpid(server, 0)
    assert [os.path.exists(podman.server_path + suffix) for suffix in ("", ".pid", ".idle")] == [False] * 3
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
    """A fork server of the test's own (its parent is the test process), its FIFO where
    another user could reach it if its modes allowed."""
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="shim-fork-test.")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "s", "server")
    proc = subprocess.Popen([sys.executable, SERVER_SCRIPT, "--fork-server", path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: os.path.exists(path + ".pid"), what="the server's pid file")
    proc.path = path  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    shutil.rmtree(directory)


def test_another_users_request_is_ignored(server):
    os.chmod(os.path.dirname(server.path), 0o755)
    os.chmod(server.path, 0o666)  # even when the FIFO itself lets anyone write
    waits = (r'read -r -a stat </proc/$$/stat; trap "echo signalled; exit 0" USR1 USR2; '
             r'printf "%s %s\n" $$ "${stat[21]}" >"$1"; read -r -t 3 -u 0 <>"$1.idle"; echo "no answer"')
    proc = subprocess.run(["runuser", "-u", "nobody", "--", "bash", "-c", waits, "bash", server.path],
                          capture_output=True, timeout=30)
    assert proc.stdout == b"no answer\n", proc
    assert [name for name in os.listdir(os.path.dirname(server.path)) if name.endswith(".claim")] == []
    assert server.poll() is None  # and the server serves on


def forked_monitors(server) -> list[psutil.Process]:
    """Monitors the test's server forked, adopted by the test process (a subreaper): a
    monitor's parent must be whoever adopts orphans, never the server (systemd learns a
    unit's exit status as the monitor's adopter)."""
    found = []
    for child in psutil.Process().children():
        try:
            if child.pid != server.pid and server.path in child.cmdline():
                found.append(child)
        except psutil.Error:  # gone, or a zombie: no longer a monitor
            pass
    return found


def session_with(server, engine, work, name: str, command: list[str], monitor: str | None = None):
    """The real client script (or ``monitor``, which runs it) asking the test's server for a
    monitor of a new container (``command`` in a busybox bundle), with the engine's pipes,
    its files in ``work``."""
    from tests.helpers.engine import MONITORS, Session, monitor_args
    from tests.helpers.harness import new_container_id

    cid = new_container_id(name)
    engine.used.append(cid)
    os.makedirs(os.path.join(work, "exits"))
    session = Session(monitor or MONITORS["shim-conmon"],
                      monitor_args(cid, engine.runtime, engine.bundle(command), str(work)),
                      env={"SHIM_CONMON_FORK_SERVER": server.path})
    return cid, session


@pytest.mark.parametrize("moment", ["server killed between fork and pidfile", "client gone before the claim"])
def test_the_server_or_the_client_dying_midway(engine, server, tmp_path, moment):
    from tests.helpers.engine import wait_for_path
    from tests.helpers.runtimes import container_known

    work = str(tmp_path)
    pidfile = os.path.join(work, "conmon.pid")  # monitor_args names it
    cid, session = session_with(server, engine, work, "forked", ["sh", "-c", "exit 7"])
    try:
        # The monitor is forked, and waits for the engine's start byte before it claims.
        monitor = wait_until(lambda: forked_monitors(server), what="a forked monitor")[0]
        assert session.proc.poll() is None and not os.path.exists(pidfile)
        if moment == "client gone before the claim":
            session.proc.kill()
            session.proc.wait()
            monitor.wait(20)  # it saw its client go: it ends (psutil.TimeoutExpired if not)
            assert not container_known(engine.runtime, cid)  # nothing was started
            assert session.read(timeout=5) is None  # and nothing was said
            return
        server.kill()  # the server dies after the fork: the monitor owes it nothing
        server.wait()
        session.go()
        code, _, err = session.first_process()
        assert code == 0, err
        with open(pidfile) as f:
            assert int(f.read()) == monitor.pid
        assert session.read()["data"] > 0
        engine.runtime_start(cid)
        assert wait_for_path(os.path.join(work, "exits", cid)) == "7"
        # Its exit status reaches whoever adopted it (here the test process, a subreaper;
        # under systemd, the unit's manager), not the server.
        _, status = os.waitpid(monitor.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7
    finally:
        session.close()


def test_a_client_the_server_refuses_monitors_alone_at_once(server):
    from shim.conmon.fork_protocol import ANSWER_TIMEOUT
    from tests.helpers.engine import MONITORS, Session

    # Options the monitor rejects: the server refuses (SIGUSR2) rather than fork a monitor
    # that could only fail after the client left; the client's own monitor says why.
    session = Session(MONITORS["shim-conmon"], ["--api-version", "1", "-c", "refused", "-u", "refused", "-r",
                                                "/bin/true", "--exec-attach"],
                      env={"SHIM_CONMON_FORK_SERVER": server.path})
    try:
        started = time.monotonic()
        code, _, err = session.first_process()
        assert code == 1 and b"Attach can only be specified with exec" in err, err
        assert time.monotonic() - started < ANSWER_TIMEOUT  # answered, not timed out
        assert forked_monitors(server) == [] and server.poll() is None
        # The refusal's claim stays while its client lives; the server's next wake-up
        # (here a line that is no request) removes it once the client is gone.
        with open(server.path, "w") as fifo:
            fifo.write("not a request\n")
        wait_until(lambda: not [n for n in os.listdir(os.path.dirname(server.path)) if n.endswith(".claim")],
                   what="the claim's removal")
    finally:
        session.close()


def _mount_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def _no_new_privs(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("NoNewPrivs:"))


# An engine elsewhere than the server, or with less: a monitor forked by the server would
# have the server's context, not the engine's. Each wrapper runs the client script.
ELSEWHERE = {
    # a mount namespace of its own (a unit's PrivateTmp=): the container's root is mounted there
    "mount namespace": (["unshare", "--mount", "--propagation", "private"], _mount_namespace),
    # a hardened unit (NoNewPrivileges=): the runtime must not get more
    "no_new_privs": (["setpriv", "--no-new-privs"], _no_new_privs),
    # Nice=: the monitor and the runtime are scheduled as the engine is
    "nice": (["nice", "-n", "7"], lambda pid: psutil.Process(pid).nice()),
}


@pytest.mark.parametrize("context", ELSEWHERE)
def test_a_client_in_another_context_than_the_servers_monitors_alone(engine, server, tmp_path, context):
    from tests.helpers.engine import MONITORS, wait_for_path

    wrapper, inherited = ELSEWHERE[context]
    client = tmp_path / "client"
    client.write_text(f'#!/bin/sh\nexec {" ".join(wrapper)} {MONITORS["shim-conmon"]} "$@"\n')
    client.chmod(0o755)
    work = str(tmp_path / "work")
    cid, session = session_with(server, engine, work, "elsewhere", ["sh", "-c", "exit 5"], monitor=str(client))
    try:
        session.go()
        code, _, err = session.first_process()
        assert code == 0, err
        assert forked_monitors(server) == []  # refused: the client monitored alone...
        with open(os.path.join(work, "conmon.pid")) as f:
            monitor = int(f.read())
        assert inherited(monitor) != inherited(os.getpid()) == inherited(server.pid)  # ...with its own context
        assert session.read()["data"] > 0
        engine.runtime_start(cid)
        assert wait_for_path(os.path.join(work, "exits", cid)) == "5"
        assert server.poll() is None  # and the server serves on
    finally:
        session.close()


# A stand-in server: it answers every request with SIGUSR1 after a random spin of up to a
# millisecond, so that some answers land just as the client goes into its wait.
PROMPT_SERVER = """
import os, random, signal, sys, time
path = sys.argv[-1]
requests = os.open(path, os.O_RDWR | os.O_CLOEXEC)
with open(path + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(path + ".tmp", path + ".pid")
spin, pending = random.Random(0), b""
while True:
    pending += os.read(requests, 4096)
    *lines, pending = pending.split(b"\\n")
    for line in lines:
        until = time.perf_counter() + spin.random() * 1e-3
        while time.perf_counter() < until:
            pass
        os.kill(int(line.split()[0]), signal.SIGUSR1)
"""


def test_an_answer_that_lands_as_the_client_starts_waiting_is_not_missed(tmp_path):
    from shim.conmon.fork_protocol import ANSWER_TIMEOUT
    from tests.helpers.engine import MONITORS

    # A signal that reaches bash after it last ran its traps, before `read` blocks, does not
    # end the read: the client used to sit out its whole ANSWER_TIMEOUT (some 1 in 200).
    path = str(tmp_path / "server")
    for fifo in (path, path + ".idle"):
        os.mkfifo(fifo, 0o600)
    server = subprocess.Popen([sys.executable, "-c", PROMPT_SERVER, "--fork-server", path])
    try:
        wait_until(lambda: os.path.exists(path + ".pid"), what="the stand-in server's pid file")
        slowest = 0.0
        for _ in range(1000):
            started = time.monotonic()
            proc = subprocess.run([MONITORS["shim-conmon"], "--api-version", "1"], capture_output=True, timeout=30,
                                  env={**os.environ, "SHIM_CONMON_FORK_SERVER": path})
            assert proc.returncode == 0, proc  # answered: SIGUSR1 ends the client, 0
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < ANSWER_TIMEOUT / 2, f"an answer waited {slowest:.1f} s for the client"
    finally:
        server.kill()
        server.wait()


def test_an_engine_that_closes_the_start_pipe_unwritten_starts_nothing(engine, server, tmp_path):
    from tests.helpers.runtimes import container_known

    cid, session = session_with(server, engine, tmp_path, "unstarted", ["true"])
    try:
        wait_until(lambda: forked_monitors(server), what="a forked monitor")
        session.start.close()  # the engine gives up before its start byte
        code, _, err = session.first_process()
        # The forked monitor hands the client back to its own monitor, which says it as conmon would.
        assert code == 1 and b"closed the start pipe without a start byte" in err, err
        assert not (tmp_path / "conmon.pid").exists() and not container_known(engine.runtime, cid)
        wait_until(lambda: not forked_monitors(server), what="the forked monitor's exit")
    finally:
        session.close()


def test_a_client_that_waits_in_vain_monitors_alone_without_the_servers_fifos(engine, server, tmp_path):
    os.kill(server.pid, signal.SIGSTOP)  # a hung server: the request is never read
    _, session = session_with(server, engine, tmp_path, "waited", ["sleep", "100"])
    try:
        session.go()
        code, _, err = session.first_process()  # after the client's 5 s
        assert code == 0, err
        monitor = int((tmp_path / "conmon.pid").read_text())
        assert session.read()["data"] > 0  # created by the client's own monitor
        fifos = {(info.st_dev, info.st_ino) for info in map(os.stat, (server.path, server.path + ".idle"))}
        held = {(info.st_dev, info.st_ino) for info in (os.stat(f"/proc/{monitor}/fd/{n}")
                                                         for n in os.listdir(f"/proc/{monitor}/fd"))}
        assert not fifos & held, "the monitor holds the server's FIFOs"
    finally:
        os.kill(server.pid, signal.SIGCONT)  # it then finds the request's process no client any more
        session.close()
    assert forked_monitors(server) == []
