"""Signals: forwarded exactly, stop translated and escalated, nothing lost during start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.harness import wait_for_file

pytestmark = pytest.mark.integration

STANDARD_FORWARDED = ["SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN",
                      "SIGTTOU", "SIGALRM", "SIGURG", "SIGPIPE", "SIGPWR", "SIGVTALRM", "SIGPROF", "SIGXCPU"]


class Recorder:
    """The signal_recorder payload's log, read from the host."""

    def __init__(self, out_dir) -> None:
        self.path = os.path.join(out_dir, "signals")

    def wait_ready(self, timeout: float = 20) -> None:
        wait_for_file(self.path, timeout)

    def received(self) -> list[int]:
        with open(self.path) as f:
            return [int(line.split()[0]) for line in f.read().splitlines()[1:]]

    def wait_for(self, count: int, timeout: float = 10) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if len(got) >= count:
                return got
            time.sleep(0.005)
        return self.received()


def start_recorder(harness, tmp_path, *flags, exit_on=signal.SIGTERM, exit_code=0, **bundle_kw):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    bundle = harness.python_bundle("signal_recorder.py", "/out/signals", str(int(exit_on)), str(exit_code),
                                   out_dir=str(out), **bundle_kw)
    proc = harness.start(None, *flags, bundle=bundle)
    recorder = Recorder(out)
    recorder.wait_ready()
    return proc, recorder


def test_each_forwarded_signal_arrives_once(shim, tmp_path):
    proc, recorder = start_recorder(shim, tmp_path)
    expected = []
    for name in STANDARD_FORWARDED:
        signum = getattr(signal, name)
        os.kill(proc.pid, signum)
        expected.append(signum)
        assert recorder.wait_for(len(expected)) == expected, name
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert recorder.received() == expected + [signal.SIGTERM]


def test_a_burst_of_50_realtime_signals_all_arrive(shim, tmp_path):
    proc, recorder = start_recorder(shim, tmp_path)
    realtime = list(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
    burst = [realtime[i % len(realtime)] for i in range(50)]
    for signum in burst:
        os.kill(proc.pid, signum)
    got = recorder.wait_for(50)
    # realtime signals queue: every one arrives, and the same signal keeps its order
    assert sorted(got) == sorted(burst)
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)


def test_sigterm_stops_with_the_payloads_status(shim, tmp_path):
    proc, recorder = start_recorder(shim, tmp_path, exit_code=3)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert recorder.received() == [signal.SIGTERM]


def test_sigint_also_stops_with_the_stop_signal(shim_runc, tmp_path):
    proc, recorder = start_recorder(shim_runc, tmp_path, exit_code=5)
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 5
    assert recorder.received() == [signal.SIGTERM]  # the stop signal, not SIGINT


def test_stop_signal_flag_rtmin3(shim, tmp_path):
    rt3 = signal.SIGRTMIN + 3
    proc, recorder = start_recorder(shim, tmp_path, "--stop-signal", "RTMIN+3", exit_on=rt3, exit_code=0)
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert recorder.received() == [rt3]


def test_stop_signal_from_the_bundle_annotation(shim_runc, tmp_path):
    proc, recorder = start_recorder(shim_runc, tmp_path, exit_on=signal.SIGUSR1, exit_code=0,
                                    annotations={"org.opencontainers.image.stopSignal": "SIGUSR1"})
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert recorder.received() == [signal.SIGUSR1]


def test_payload_ignoring_the_stop_signal_is_killed_after_the_timeout(shim):
    proc = shim.start(["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
                      "--stop-timeout", "1")
    assert proc.stdout.readline() == b"ready\n"
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    elapsed = time.monotonic() - began
    assert proc.returncode == 137
    assert 1.0 <= elapsed <= 8.0, elapsed  # not before the timeout; and not the default 10 s


def test_second_stop_request_kills_at_once(shim):
    proc = shim.start(["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
                      "--log-level", "info")
    assert proc.stdout.readline() == b"ready\n"
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    # The second request only once the first was taken (two pending SIGINTs are one).
    while b"SIGINT received" not in (line := proc.stderr.readline()):
        assert line, "the shim ended without taking the first SIGINT"
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 137
    assert time.monotonic() - began < 3  # not the default 10 s timeout


def test_stop_kills_every_process_without_a_pid_namespace(shim):
    """SIGKILL reaches the whole container, not only its init."""
    script = "trap '' TERM; for i in 1 2 3; do sleep 1000 & done; echo ready; while :; do sleep 1; done"
    proc = shim.start(None, "--stop-timeout", "0.5", bundle=shim.bundle(["/bin/sh", "-c", script], pid_namespace=False))
    assert proc.stdout.readline() == b"ready\n"
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 137
    # the harness fails the test if one of the sleeps survived


def slow_create_runtime(harness, tmp_path, delay: float = 1.0) -> str:
    """A wrapper whose `create` takes ``delay`` seconds longer and announces itself."""
    marker = tmp_path / "creating"
    wrapper = tmp_path / "slow-create"
    wrapper.write_text(f"""#!/bin/sh
for a; do [ "$a" = create ] && {{ touch {marker}; sleep {delay}; }}; done
exec {harness.runtime} "$@"
""")
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_during_create_deletes_the_container_unstarted(shim, tmp_path, signum, code):
    real = shim.runtime
    shim.runtime = slow_create_runtime(shim, tmp_path)
    ran = tmp_path / "ran"
    ran.mkdir()
    bundle = shim.bundle(["/bin/sh", "-c", "touch /out/payload-ran"], binds=[(str(ran), "/out", False)])
    proc = shim.start(None, bundle=bundle)
    _wait_exists(tmp_path / "creating")
    os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=30)
    shim.runtime = real
    assert proc.returncode == code, err
    assert not (ran / "payload-ran").exists()
    # the harness checks that the container is gone from the runtime and the state dir


def test_forwarded_signal_during_create_is_delivered_after_start(shim, tmp_path):
    # The payload's trap is set within a millisecond of start; the shim forwards what it
    # kept once its router runs, after start. (As the pid namespace's init, the payload
    # would ignore a USR1 that arrived before its trap, so a pass means "after start".)
    real = shim.runtime
    shim.runtime = slow_create_runtime(shim, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    script = "trap 'echo USR1 >> /out/got' USR1; echo ready > /out/ready; while :; do sleep 0.05; done"
    proc = shim.start(None, "--stop-timeout", "1", bundle=shim.bundle(["/bin/sh", "-c", script],
                                                                      binds=[(str(out), "/out", False)]))
    _wait_exists(tmp_path / "creating")
    os.kill(proc.pid, signal.SIGUSR1)
    wait_for_file(str(out / "got"), 10)
    assert (out / "got").read_text() == "USR1\n"
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    shim.runtime = real


def _wait_exists(path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.005)


def test_a_stop_pending_at_exec_is_a_stop_before_create(shim_runc, tmp_path):
    """A SIGTERM that reached the shim before its first instruction (blocked and pending
    across exec) neither kills it nor starts anything: exit 143, an exit file, and the exit
    command, as for any container that is gone."""
    exits = tmp_path / "exits"
    exits.mkdir()
    container_id = shim_runc.new_id()
    argv = shim_runc.argv(shim_runc.bundle(["/bin/sh", "-c", "touch /never"]), container_id,
                          "--exit-dir", str(exits), "--exit-command", "/bin/sh",
                          "--exit-command-arg", "-c", "--exit-command-arg", f"echo ran > {tmp_path / 'exit-command'}")
    launcher = ("import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}); "
                "os.kill(os.getpid(), signal.SIGTERM); os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", launcher, *argv], capture_output=True, timeout=60)
    assert proc.returncode == 143, proc.stderr
    assert (exits / container_id).read_bytes() == b"143"
    assert (tmp_path / "exit-command").read_text() == "ran\n"
