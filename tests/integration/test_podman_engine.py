"""podman 4.3 with the shim as its monitor (``shim-conmon``): the engine front end to end.

Everything here goes through podman's own code paths: conmon's command line, the sync and
start pipes, the attach socket, the k8s-file log, the exit file and the exit command.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE

pytestmark = pytest.mark.integration


def wait_for_log(podman, cid: str, text: bytes, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in podman("logs", cid).stdout:
        assert time.monotonic() < deadline, f"{text!r} never appeared in the logs of {cid}"
        time.sleep(0.05)


def test_podman_really_uses_the_shim(podman):
    # podman silently falls back to /usr/bin/conmon when the monitor's --version does not
    # parse: what it reports is the proof.
    assert podman.out("info", "--format", "{{.Host.Conmon.Path}}") == podman.monitor
    assert podman.out("info", "--format", "{{.Host.Conmon.Version}}").startswith("conmon version 2.1.6")


def test_run_in_the_foreground_shows_the_output(podman):
    proc = podman("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; printf 'no newline'")
    assert proc.stdout == b"out\nno newline"
    assert proc.stderr == b"err\n"


@pytest.mark.parametrize("command, code", [
    (["true"], 0), (["false"], 1), (["sh", "-c", "exit 32"], 32),
    (["/etc"], 126), (["/no/such/command"], 127),
])
def test_run_exit_codes(podman, command, code):
    proc = podman("run", "--rm", IMAGE, *command, check=False)
    assert proc.returncode == code, proc.stderr


def test_runtime_errors_reach_the_user(podman):
    proc = podman("run", "--rm", IMAGE, "/no/such/command", check=False)
    assert proc.returncode == 127
    assert b"/no/such/command" in proc.stderr  # the runtime's own words


def test_kill_wait_and_137(podman):
    cid = podman.out("run", "-d", IMAGE, "sleep", "100")
    podman("kill", cid)
    assert podman.out("wait", cid) == "137"
    assert podman.out("inspect", "--format", "{{.State.ExitCode}}", cid) == "137"


def test_detached_run_logs_and_follow(podman):
    cid = podman.out("run", "-d", IMAGE, "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    follow = podman("logs", "-f", cid, timeout=30)
    assert follow.stdout == b"line1\nline2\nline3\n"
    assert podman.out("wait", cid) == "0"
    assert podman("logs", cid).stdout == b"line1\nline2\nline3\n"


def test_logs_keep_streams_and_big_output(podman):
    # 700 kB of output through a single write, and both streams (030-run's "does not
    # truncate or hang with big output").
    cid = podman.out("run", "-d", IMAGE, "sh", "-c", "head -c 700000 /dev/zero | tr '\\0' x; echo; echo e >&2")
    assert podman.out("wait", cid) == "0"
    logs = podman("logs", cid)
    assert logs.stdout == b"x" * 700000 + b"\n"
    assert logs.stderr == b"e\n"


def test_start_attach(podman):
    cid = podman.out("create", IMAGE, "sh", "-c", "echo hello; exit 3")
    proc = podman("start", "--attach", cid, check=False)
    assert proc.returncode == 3 and proc.stdout == b"hello\n"
    # The log appends across runs of the same container.
    podman("start", "--attach", cid, check=False)
    assert podman("logs", cid).stdout == b"hello\nhello\n"


def test_interactive_run_feeds_stdin_and_closes_it(podman):
    proc = podman("run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo done", input=b"abc\n" * 1000)
    assert proc.stdout == b"abc\n" * 1000 + b"done\n"


def test_attach_to_a_running_container(podman):
    cid = podman.out("run", "-d", IMAGE, "sh", "-c", "sleep 1; echo after-attach; sleep 1")
    proc = podman("attach", "--no-stdin", cid, check=False, timeout=30)
    assert b"after-attach" in proc.stdout


def test_stop_trapping_and_not_trapping(podman):
    trapping = podman.out("run", "-d", IMAGE, "sh", "-c", "trap 'exit 5' TERM; echo ready; while :; do sleep 0.1; done")
    plain = podman.out("run", "-d", IMAGE, "sleep", "100")
    wait_for_log(podman, trapping, b"ready")
    started = time.monotonic()
    podman("stop", "-t", "10", trapping)
    assert time.monotonic() - started < 5  # reaped and reported at once, not polled
    assert podman.out("inspect", "--format", "{{.State.ExitCode}}", trapping) == "5"
    podman("stop", "-t", "1", plain)  # sleep as PID 1 ignores SIGTERM: SIGKILL after 1 s
    assert podman.out("inspect", "--format", "{{.State.ExitCode}}", plain) == "137"


def test_rm_force_and_restart(podman):
    cid = podman.out("run", "-d", IMAGE, "sh", "-c", "echo run; sleep 100")
    first = podman.conmon_pid(cid)
    podman("restart", "-t", "0", cid)
    second = podman.conmon_pid(cid)
    assert second != first and os.path.exists(f"/proc/{second}")
    podman("rm", "-f", "-t", "0", cid)
    assert podman("ps", "-a", "-q").stdout.strip() == b""


def test_ps_and_inspect_name_the_monitor(podman, tmp_path):
    pidfile = tmp_path / "monitor.pid"
    cid = podman.out("run", "-d", "--conmon-pidfile", str(pidfile), IMAGE, "sleep", "100")
    monitor = podman.conmon_pid(cid)
    assert pidfile.read_text() == str(monitor)  # digits only, as podman reads it
    with open(f"/proc/{monitor}/cmdline", "rb") as f:
        assert b"shim-conmon" in f.read()
    assert cid[:12] in podman.out("ps", "--format", "{{.ID}}")
    podman("rm", "-f", "-t", "0", cid)


def test_timeout_kills_and_reports_minus_one(podman):
    started = time.monotonic()
    proc = podman("run", "--timeout", "2", IMAGE, "sleep", "100", check=False, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 255, proc.stderr
    assert 1.5 < elapsed < 20


def test_preserve_fds_reach_the_container(podman, tmp_path):
    marker = tmp_path / "passed"
    marker.write_text("through fd 3\n")
    # fd 3 of podman itself, opened by a shell: podman passes fds 3.. by number.
    argv = ["sh", "-c", 'exec "$@" 3<"$0"', str(marker),
            *podman.argv("run", "--rm", "--preserve-fds", "1", IMAGE, "cat", "/proc/self/fd/3")]
    proc = subprocess.run(argv, env=podman.env, capture_output=True, timeout=60)
    assert proc.stdout == b"through fd 3\n", proc.stderr


def test_socket_activation_through_podman(podman):
    # systemd-socket-activate passes a listening socket to podman, which hands it down
    # through its monitor at the same fd number (LISTEN_FDS).
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    activate = subprocess.Popen(
        ["systemd-socket-activate", "-l", f"127.0.0.1:{port}",  # it passes on only the variables named
         *[f"-E{name}" for name in ("PATH", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF")],
         *podman.argv(
            "run", "--rm", IMAGE, "sh", "-c", 'echo "fds=$LISTEN_FDS pid=$LISTEN_PID $(readlink /proc/self/fd/3)"')],
        env=podman.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "systemd-socket-activate never listened"
                time.sleep(0.05)
        out, err = activate.communicate(timeout=60)
    finally:
        if activate.poll() is None:
            activate.kill()
            activate.wait()
    assert out.decode().startswith("fds=1 pid=1 socket:["), err


def test_oom_kill_is_reported(podman):
    cid = podman.out("run", "-d", "--memory", "20m", "--memory-swap", "20m", IMAGE, "tail", "/dev/zero")
    assert podman.out("wait", cid) == "137"
    assert podman.out("inspect", "--format", "{{.State.OOMKilled}}", cid) == "true"


def test_signals_to_the_monitor_go_to_the_container(podman):
    cid = podman.out("run", "-d", IMAGE, "sh", "-c",
                     "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done")
    wait_for_log(podman, cid, b"ready")
    os.kill(podman.conmon_pid(cid), signal.SIGTERM)
    assert podman.out("wait", cid) == "7"
    assert b"got-term" in podman("logs", cid).stdout
