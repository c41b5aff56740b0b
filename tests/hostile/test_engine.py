"""The engine front when the engine misbehaves: podman killed between create and start,
an exit command that fails or never ends, two monitors racing for one container.

The engine gone before the start byte or before it heard the pid (the sync pipe closed
early), a broken bundle and a second monitor after the first are
tests/integration/test_conmon_direct.py's; the fork server killed or hung, or its client
gone mid-way, are tests/integration/test_fork_server.py's.
"""

from __future__ import annotations

import os
import select
import subprocess
import time

import psutil
import pytest

from tests.helpers.engine import MONITORS, Session, monitor_args, wait_for_path
from tests.helpers.harness import new_container_id
from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE
from tests.helpers.runtimes import container_known

pytestmark = [pytest.mark.integration, pytest.mark.hostile]


def stalling_runtime(tmp_path, runtime: str):
    """A runtime whose first `start` stalls until released, then fails without starting."""
    marker, release = tmp_path / "starting", tmp_path / "release"
    wrapper = tmp_path / "stalling-runtime"
    wrapper.write_text(f"""#!/bin/sh
for a; do
    if [ "$a" = start ] && [ ! -e {release} ]; then
        touch {marker}
        while [ ! -e {release} ]; do sleep 0.05; done
        exit 1
    fi
done
exec {runtime} "$@"
""")
    wrapper.chmod(0o755)
    return str(wrapper), marker, release


@pytest.mark.parametrize("then", ["start again", "rm -f"])
def test_podman_killed_between_create_and_start(podman, tmp_path, then):
    """`podman start` SIGKILLed while the runtime starts the container its monitor
    watches: the container stays created and its monitor waits. A later podman starts it
    (its exit status is still recorded) or removes it (the monitor leaves)."""
    runtime, marker, release = stalling_runtime(tmp_path, "/usr/sbin/runc")
    cid = podman.out("--runtime", runtime, "create", IMAGE, "sh", "-c", "exit 5")
    starting = podman.popen("start", cid, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and starting.poll() is None, "podman never began to start it"
        time.sleep(0.01)
    starting.kill()
    starting.wait()
    release.touch()
    monitor = podman.conmon_pid(cid)
    assert psutil.Process(monitor).status() != psutil.STATUS_ZOMBIE
    assert podman.out("inspect", "--format", "{{.State.Status}}", cid) in ("created", "initialized")
    if then == "start again":
        podman("start", cid)
        assert podman.out("wait", cid) == "5"
        assert podman.out("inspect", "--format", "{{.State.ExitCode}}", cid) == "5"
    else:
        podman("rm", "-f", "-t", "0", cid)
        assert not container_known("/usr/sbin/runc", cid)
    try:
        pidfd = os.pidfd_open(monitor)
    except ProcessLookupError:
        return  # gone and reaped already (a fork server's monitor: the kernel reaps it)
    try:
        assert select.select([pidfd], [], [], 30)[0], "the monitor outlived its container"
    finally:
        os.close(pidfd)


def daemonized_monitor(session) -> int:
    return int(wait_for_path(os.path.join(session.work, "conmon.pid")))


def exit_status_of(pid: int, timeout: float = 30) -> int:
    """The exit code of a monitor re-parented to the test process (it is a subreaper)."""
    deadline = time.monotonic() + timeout
    while True:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return os.waitstatus_to_exitcode(status)
        assert time.monotonic() < deadline, f"monitor {pid} still running"
        time.sleep(0.01)


# The monitor's own exit status once its exit command failed: the shim's is the command's
# failure, which is what conmon's do_exit_command means to do; conmon 2.1.6 resets the
# status it kept before its wait loop ends, and so exits with the container's. Nobody
# reads it (podman reads the exit file; the monitor is not its child).
AFTER_A_FAILED_EXIT_COMMAND = {"shim-conmon": 3, "conmon": 4}
AFTER_A_KILLED_EXIT_COMMAND = {"shim-conmon": 128 + 9, "conmon": 6}


@pytest.mark.parametrize("monitor", sorted(MONITORS))
def test_an_exit_command_that_fails(engine, monitor):
    """The exit file is written first, whatever the exit command then does."""
    bundle = engine.bundle(["sh", "-c", "exit 4"])
    session = engine.session(monitor, [], bundle, "--exit-command", "/bin/sh", "--exit-command-arg", "-c",
                             "--exit-command-arg", "exit 3")
    session.go()
    session.first_process()
    assert session.read()["data"] > 0
    pid = daemonized_monitor(session)
    engine.runtime_start(session.cid)
    assert wait_for_path(os.path.join(session.work, "exits", session.cid)) == "4"
    assert exit_status_of(pid) == AFTER_A_FAILED_EXIT_COMMAND[monitor]


@pytest.mark.parametrize("monitor", sorted(MONITORS))
def test_an_exit_command_that_never_ends(engine, monitor, figures):
    """The container's status is on disk before the exit command starts; the monitor
    waits for the command, as conmon does, and leaves once it ends."""
    bundle = engine.bundle(["sh", "-c", "exit 6"])
    session = engine.session(monitor, [], bundle, "--exit-command", "/bin/sleep", "--exit-command-arg", "1000")
    session.go()
    session.first_process()
    assert session.read()["data"] > 0
    pid = daemonized_monitor(session)
    started = time.monotonic()
    engine.runtime_start(session.cid)
    assert wait_for_path(os.path.join(session.work, "exits", session.cid)) == "6"
    figures.record(f"exit file after start ({monitor})", round((time.monotonic() - started) * 1000), "ms")
    deadline = time.monotonic() + 30
    while not (sleepers := [c for c in psutil.Process(pid).children() if c.name() == "sleep"]):
        assert time.monotonic() < deadline, "the exit command never ran"
        time.sleep(0.01)
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # still waiting for it
    sleepers[0].kill()
    assert exit_status_of(pid) == AFTER_A_KILLED_EXIT_COMMAND[monitor]


def test_two_monitors_racing_for_one_container(engine, scale, figures):
    """Two monitors for one container ID and bundle, told to go at the same moment:
    one monitors it, the other says why not, and neither leaves anything behind."""
    monitor = MONITORS["shim-conmon"]
    for race in range(scale.races):
        bundle = engine.bundle(["sleep", "100"], name=f"race-{race}")
        cid = new_container_id("race")
        engine.used.append(cid)
        sessions = []
        for side in ("a", "b"):
            work = os.path.join(os.path.dirname(bundle), f"{cid}-{side}")
            os.makedirs(os.path.join(work, "exits"))
            session = Session(monitor, monitor_args(cid, engine.runtime, bundle, work))
            session.cid, session.work = cid, work
            sessions.append(session)
        try:
            for session in sessions:
                session.go()
            for session in sessions:
                session.first_process()
            answers = [session.read() for session in sessions]
            winners = [s for s, answer in zip(sessions, answers) if answer["data"] > 0]
            losers = [answer for answer in answers if answer["data"] == -1]
            assert len(winners) == 1 and len(losers) == 1, answers
            assert "already" in losers[0]["message"], losers
            subprocess.run([engine.runtime, "kill", cid, "KILL"], check=True)
            assert wait_for_path(os.path.join(winners[0].work, "exits", cid)) == "137"
            for session in sessions:
                assert exit_status_of(daemonized_monitor(session)) in (0, 1, 137)
            assert not os.listdir(os.path.join([s for s in sessions if s is not winners[0]][0].work, "exits"))
        finally:
            for session in sessions:
                session.close()
            subprocess.run([engine.runtime, "delete", "--force", cid], capture_output=True)
    figures.record("races, each with exactly one winner", scale.races)


@pytest.mark.parametrize("monitor", sorted(MONITORS))
def test_what_a_sigkilled_monitor_cannot_save(podman, monitor):
    """Not promised, by either monitor: anything after it is SIGKILLed. The container runs
    on, podman cannot learn how it ends (a stop leaves it 'stopping' with exit code 0, as
    podman#19629 reports for conmon), and `podman rm -f` (podman 4.3) forgets it without
    deleting the runtime's record of it (podman#26643's subject): the test deletes that."""
    flags = [] if monitor == "shim-conmon" else ["--conmon", MONITORS["conmon"]]
    cid = podman.out(*flags, "run", "-d", IMAGE, "sh", "-c", "trap 'exit 7' TERM; sleep 1000 & wait")
    os.kill(podman.conmon_pid(cid), 9)
    podman(*flags, "stop", "-t", "1", cid, check=False)
    try:
        assert podman.out("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cid) == "stopping 0"
        podman("rm", "-f", cid)
        state = subprocess.run(["/usr/sbin/runc", "state", cid], capture_output=True, text=True)
        assert '"status": "stopped"' in state.stdout, state
    finally:
        subprocess.run(["/usr/sbin/runc", "delete", "--force", cid], capture_output=True)
