"""Socket activation: systemd's listening sockets reach the container's process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.helpers.harness import SHIM, wait_for_file
from tests.helpers.runtimes import container_known

pytestmark = pytest.mark.integration

ACTIVATE = shutil.which("systemd-socket-activate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(address, family=socket.AF_INET, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(address)
                return s.makefile().readline().strip()
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def parse(answer: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in answer.split())


@pytest.fixture
def activate():
    if ACTIVATE is None:
        pytest.skip("systemd-socket-activate is missing (apt-get install systemd)")
    return ACTIVATE


def listener_bundle(harness, tmp_path, **kwargs):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return harness.python_bundle("listener.py", out_dir=str(out), **kwargs), out


def start_activated(harness, bundle, listen: list[str], *flags: str, container_id=None):
    container_id = container_id or harness.new_id()
    argv = [ACTIVATE, *listen, *harness.argv(bundle, container_id, *flags)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.container_id = container_id
    return proc


def stop(proc) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)


def test_tcp_socket_reaches_the_container(shim, activate, tmp_path):
    port = free_port()
    bundle, out = listener_bundle(shim, tmp_path)
    proc = start_activated(shim, bundle, ["-l", f"127.0.0.1:{port}"])
    answer = parse(ask(("127.0.0.1", port)))
    assert answer["fd"] == "3" and answer["pid"] == "1"  # its own pid namespace: LISTEN_PID=1
    env = (out / "env").read_text().splitlines()
    assert env == ["LISTEN_FDS=1", "LISTEN_PID=1"]
    stop(proc)


def test_two_named_sockets_arrive_in_order(shim_runc, activate, tmp_path):
    ports = [free_port(), free_port()]
    bundle, out = listener_bundle(shim_runc, tmp_path)
    proc = start_activated(shim_runc, bundle, ["-l", f"127.0.0.1:{ports[0]}", "-l", f"127.0.0.1:{ports[1]}",
                                               "--fdname=web:admin"])
    first, second = parse(ask(("127.0.0.1", ports[0]))), parse(ask(("127.0.0.1", ports[1])))
    assert (first["fd"], first["name"]) == ("3", "web")
    assert (second["fd"], second["name"]) == ("4", "admin")
    assert "LISTEN_FDNAMES=web:admin" in (out / "env").read_text()
    stop(proc)


def test_unix_stream_socket(shim, activate, tmp_path):
    """containers/podman#10443: unix-socket activation used to fail."""
    path = str(tmp_path / "service.sock")
    bundle, out = listener_bundle(shim, tmp_path)
    proc = start_activated(shim, bundle, ["-l", path])
    assert parse(ask(path, socket.AF_UNIX))["fd"] == "3"
    stop(proc)


def test_container_holds_only_stdio_and_the_passed_fds(shim, activate, tmp_path):
    ports = [free_port(), free_port()]
    bundle, out = listener_bundle(shim, tmp_path)
    proc = start_activated(shim, bundle, ["-l", f"127.0.0.1:{ports[0]}", "-l", f"127.0.0.1:{ports[1]}"])
    ask(("127.0.0.1", ports[0]))
    fds = [int(fd) for fd in (out / "fds").read_text().split()]
    # 0, 1, 2, the two sockets, and the one fd listdir itself held while listing
    assert fds[:5] == [0, 1, 2, 3, 4] and len(fds) == 6
    stop(proc)


def test_shared_pid_namespace_gets_the_payloads_own_pid(shim, activate, tmp_path):
    port = free_port()
    bundle, out = listener_bundle(shim, tmp_path, pid_namespace=False)
    proc = start_activated(shim, bundle, ["-l", f"127.0.0.1:{port}"])
    answer = parse(ask(("127.0.0.1", port)))
    assert answer["pid"] != "1"  # the listener checked LISTEN_PID == its pid before serving
    stop(proc)


def test_shim_closes_its_copies_and_hides_listen_variables(shim_runc, activate, tmp_path):
    port = free_port()
    record = tmp_path / "runtime-env"
    wrapper = tmp_path / "runtime"
    wrapper.write_text(f"#!/bin/sh\nenv >> {record}\nexec {shim_runc.runtime} \"$@\"\n")
    wrapper.chmod(0o755)
    real, shim_runc.runtime = shim_runc.runtime, str(wrapper)
    bundle, out = listener_bundle(shim_runc, tmp_path)
    proc = start_activated(shim_runc, bundle, ["-l", f"127.0.0.1:{port}"],
                           "--exit-command", "/bin/sh", "--exit-command-arg", "-c",
                           "--exit-command-arg", f"env > {tmp_path / 'exit-env'}")
    ask(("127.0.0.1", port))
    init = open(os.path.join(shim_runc.state_dir, proc.container_id, "pidfile")).read().strip()
    listening = os.readlink(f"/proc/{init}/fd/3")  # socket:[inode], as the container holds it
    shim_fds = os.listdir(f"/proc/{proc.pid}/fd")
    held = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in shim_fds if os.path.exists(f"/proc/{proc.pid}/fd/{fd}")]
    shim_runc.runtime = real
    assert listening.startswith("socket:") and listening not in held  # the shim closed its copy
    stop(proc)
    assert "LISTEN_" not in record.read_text()
    assert "LISTEN_" not in (tmp_path / "exit-env").read_text()


def test_in_every_sdnotify_mode(shim_runc, activate, tmp_path):
    from tests.helpers.notify_listener import NotifyListener

    listener = NotifyListener(str(tmp_path / "notify.sock"))
    try:
        for mode in ("container", "shim", "ignore"):
            port = free_port()
            bundle, out = listener_bundle(shim_runc, tmp_path)
            container_id = shim_runc.new_id()
            argv = [ACTIVATE, "-l", f"127.0.0.1:{port}", *shim_runc.argv(bundle, container_id, f"--sdnotify={mode}")]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=dict(os.environ, NOTIFY_SOCKET=listener.path))
            assert parse(ask(("127.0.0.1", port)))["fd"] == "3", mode
            stop(proc)
    finally:
        listener.close()


def run_with_listen_env(harness, bundle, env_script: str, pass_fds=()):
    container_id = harness.new_id()
    # LISTEN_PID must be the shim's own pid: sh exports it, then execs the shim in place.
    script = f'{env_script}; export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec "$@"'
    proc = subprocess.run(["/bin/sh", "-c", script, "sh", *harness.argv(bundle, container_id)],
                          capture_output=True, timeout=60, pass_fds=pass_fds)
    return proc, container_id


@pytest.mark.parametrize("env_script, fragment", [
    ("LISTEN_PID=$$ LISTEN_FDS=abc", "LISTEN_FDS='abc' is not a positive integer"),
    ("LISTEN_PID=$$ LISTEN_FDS=0", "LISTEN_FDS='0' is not a positive integer"),
    ("LISTEN_PID=$$ LISTEN_FDS=-1", "LISTEN_FDS='-1' is not a positive integer"),
    ("LISTEN_PID=$$ LISTEN_FDS=", "LISTEN_FDS='' is not a positive integer"),
    ("LISTEN_PID=$$ LISTEN_FDS=40", "LISTEN_FDS=40, but fd"),
    ("LISTEN_PID=$$ LISTEN_FDS=1000000", "LISTEN_FDS=1000000 would need fds up to 1000002, beyond the fd limit"),
    ("LISTEN_PID=pid LISTEN_FDS=1", "LISTEN_PID='pid' is not a pid"),
])
def test_bad_activation_variables(shim_runc, env_script, fragment):
    bundle = shim_runc.bundle(["true"])
    proc, container_id = run_with_listen_env(shim_runc, bundle, env_script)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 125, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("shim: ") and fragment in lines[0]
    assert not container_known(shim_runc.runtime, container_id)
    assert not os.path.exists(os.path.join(shim_runc.state_dir, container_id))


def test_variables_for_another_process_are_ignored(shim_runc, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    bundle = shim_runc.bundle(["/bin/sh", "-c", "env > /out/env"], binds=[(str(out), "/out", False)])
    proc, _ = run_with_listen_env(shim_runc, bundle, "LISTEN_PID=1 LISTEN_FDS=2 LISTEN_FDNAMES=a:b")
    assert proc.returncode == 0, proc.stderr
    assert "LISTEN_" not in (out / "env").read_text()
