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
