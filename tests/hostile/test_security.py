"""A container that tries to reach the host through the shim: through fds or variables
the shim should not pass, through files it plants where the shim writes, through the
notify socket."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.hostile]


def test_a_symlink_planted_at_the_log_path_is_never_followed(shim_runc, tmp_path):
    """The log's directory is mounted into the container (to read its own logs, say):
    the container replaces its log with a symlink to a host file. The next run of the
    same container (a restart) must not append its output to that file."""
    logs, precious = tmp_path / "logs", tmp_path / "precious"
    logs.mkdir()
    precious.write_bytes(b"keep\n")
    log = str(logs / "ctr.log")
    # Once the shim writes its log (it opens it after start), the container swaps it for
    # a symlink; the shim goes on writing to the file it has open.
    plant = (f"echo ready; until grep -q ready /logs/ctr.log; do sleep 0.01; done; "
             f"rm /logs/ctr.log && ln -s {precious} /logs/ctr.log && echo planted")
    bundle = shim_runc.bundle(["/bin/sh", "-c", plant], binds=[(str(logs), "/logs", False)])
    first = shim_runc.run(None, "--log-driver", "k8s-file", "--log-path", log, bundle=bundle)
    assert first.returncode == 0 and os.path.islink(log), first
    second = shim_runc.run(["/bin/sh", "-c", "echo restarted"], "--log-driver", "k8s-file", "--log-path", log)
    assert second.returncode == 125
    assert second.shim_lines == [f"shim: --log-path {log}: cannot open: Too many levels of symbolic links"]
    assert precious.read_bytes() == b"keep\n"


def test_the_notify_directory_takes_datagrams_and_nothing_else(shim, tmp_path, listener):
    """/run/notify is a directory of the host's (in the shim's state directory) mounted
    into the container: the container may send to its socket, and may not plant files,
    symlinks or gigabytes there."""
    import signal

    from tests.helpers import oci
    from tests.helpers.harness import PAYLOADS, wait_for_file

    out = tmp_path / "out"
    out.mkdir()
    attempts = " ".join(f"{command} 2>/dev/null; echo $? >> /out/attempts;" for command in (
        "ln -s / /run/notify/root", "touch /run/notify/file", "mkdir /run/notify/dir",
        "head -c 1000000 /dev/zero > /run/notify/fill", "rm /run/notify/notify.sock"))
    script = f"{attempts} exec /usr/bin/python3 -IS /payloads/notifier.py send STATUS=sent"
    binds = oci.host_python_binds() + [(PAYLOADS, "/payloads", True), (str(out), "/out", False)]
    proc = shim.start(None, "--sdnotify=container", bundle=shim.bundle(["/bin/sh", "-c", script], binds=binds),
                      env=dict(os.environ, NOTIFY_SOCKET=listener.path))
    listener.wait_for("STATUS=sent")
    notify_dir = os.path.join(shim.state_dir, proc.container_id, "notify")
    assert os.listdir(notify_dir) == ["notify.sock"]
    assert os.stat(notify_dir).st_mode & 0o777 == 0o700
    wait_for_file(str(out / "done"))
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert [int(code) for code in (out / "attempts").read_text().split()] == [1] * 5  # each one refused


def launch_with_fds(argv: list[str], fds: dict[int, int], env: dict, own_listen_pid: bool):
    """Start ``argv`` with fds at the given numbers (bash redirections, as systemd places
    them), ``LISTEN_PID`` set to its own pid when ``own_listen_pid``; every source fd
    leaks too."""
    import subprocess

    redirects = " ".join(f"{target}<&{source}" for target, source in fds.items())
    export = "export LISTEN_PID=$$; " if own_listen_pid else ""
    return subprocess.Popen(["bash", "-c", f'{export}exec "$@" {redirects}', "bash", *argv], env=env,
                            pass_fds=list(fds.values()), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def what_the_init_holds(pid: int) -> tuple[list[int], dict[str, str]]:
    """Its fds and environment, read from the host (nothing runs in the container to look)."""
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.decode().split("=", 1) for item in f.read().split(b"\0") if b"=" in item)
    return fds, env


@pytest.mark.parametrize("activated", [True, False], ids=["socket-activated", "listen-for-another-pid"])
def test_the_init_holds_no_fd_or_variable_of_the_host(shim, tmp_path, listener, activated):
    """The shim inherits leaked fds, the host's NOTIFY_SOCKET, LISTEN_* and a variable of
    its own: its container's init holds fds 0-2 (and 3-4 when they were passed to the
    shim for it), and sees only its own NOTIFY_SOCKET and the LISTEN_* meant for it."""
    import socket

    from tests.helpers.harness import wait_for_file

    first, second = socket.socketpair()
    leaked = os.open(os.devnull, os.O_RDONLY)
    env = dict(os.environ, NOTIFY_SOCKET=listener.path, LISTEN_FDS="2", LISTEN_FDNAMES="web:admin",
               LISTEN_PIDFDID="12345", SHIM_TEST_HOST_ONLY="secret")
    if not activated:
        env["LISTEN_PID"] = "1"  # somebody else's
    pid_file = shim.pid_file()
    argv = shim.argv(shim.bundle(["/bin/sleep", "100"]), shim.new_id(), "--sdnotify=container", "--pid-file", pid_file)
    try:
        proc = launch_with_fds(argv, {3: first.fileno(), 4: second.fileno(), 9: leaked}, env,
                               own_listen_pid=activated)
    finally:
        first.close()
        second.close()
        os.close(leaked)
    init = int(wait_for_file(pid_file))
    try:
        fds, seen = what_the_init_holds(init)
    finally:
        os.kill(init, 9)
        proc.communicate(timeout=30)
    assert proc.returncode == 137
    assert fds == ([0, 1, 2, 3, 4] if activated else [0, 1, 2])
    assert seen["NOTIFY_SOCKET"] == "/run/notify/notify.sock"
    assert "SHIM_TEST_HOST_ONLY" not in seen and "LISTEN_PIDFDID" not in seen
    listen = {k: v for k, v in seen.items() if k.startswith("LISTEN_")}
    assert listen == ({"LISTEN_FDS": "2", "LISTEN_PID": "1", "LISTEN_FDNAMES": "web:admin"} if activated else {})


def test_the_engines_container_holds_no_fd_or_variable_of_the_host(podman, listener):
    """podman (and so its monitor) started with a leaked fd, the host's NOTIFY_SOCKET and
    a variable of its own: the container's init holds fds 0-2 and its own NOTIFY_SOCKET at
    most. (LISTEN_* are podman's to judge, not the monitor's: podman 4.3 passes fds 3..
    whenever LISTEN_FDS is set, whatever LISTEN_PID says, and the monitor passes on what
    it is asked to, as conmon does.)"""
    from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE

    leaked = os.open(os.devnull, os.O_RDONLY)
    env = {"NOTIFY_SOCKET": listener.path, "SHIM_TEST_HOST_ONLY": "secret"}
    try:
        cid = podman.out("run", "-d", IMAGE, "sleep", "100", env=env, pass_fds=(leaked,))
    finally:
        os.close(leaked)
    pid = int(podman.out("inspect", "--format", "{{.State.Pid}}", cid))
    fds, seen = what_the_init_holds(pid)
    assert fds == [0, 1, 2], [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds]
    assert seen.get("NOTIFY_SOCKET", "/run/notify/notify.sock") == "/run/notify/notify.sock"
    assert not [k for k in seen if k.startswith("LISTEN_") or k == "SHIM_TEST_HOST_ONLY"], seen


def test_state_is_for_the_shims_eyes_only(shim_runc, tmp_path):
    """The state root the shim creates and everything in the container's state directory:
    directories 0700, nothing anybody else may write."""
    import stat

    from tests.helpers.harness import wait_for_file

    shim_runc.state_dir = str(tmp_path / "fresh" / "state")
    pid_file = shim_runc.pid_file()
    proc = shim_runc.start(["/bin/sleep", "100"], "--pid-file", pid_file)
    init = int(wait_for_file(pid_file))
    try:
        root = shim_runc.state_dir
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        for directory, dirs, files in os.walk(os.path.join(root, proc.container_id)):
            assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o700, directory
            for name in files:
                mode = os.lstat(os.path.join(directory, name)).st_mode
                assert not mode & (stat.S_IWGRP | stat.S_IWOTH), (name, oct(mode))
    finally:
        os.kill(init, 9)
        proc.communicate(timeout=30)
