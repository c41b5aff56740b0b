"""systemd mode: an unmodified systemd image boots as the container's PID 1, reports
readiness when boot is complete, and halts cleanly on a stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.helpers.harness import wait_for_file

pytestmark = pytest.mark.integration


def systemd_bundle(harness, rootfs, tmp_path, *args: str):
    out, journal = tmp_path / "out", tmp_path / "journal"
    out.mkdir(exist_ok=True)
    journal.mkdir(exist_ok=True)
    bundle = harness.bundle(list(args) or ["/sbin/init"], rootfs=rootfs, engine_caps=True,
                            binds=[(str(out), "/out", False), (str(journal), "/var/log/journal", False)])
    return bundle, out, journal


def test_debian_boots_reports_ready_and_halts(shim, debian_rootfs, tmp_path, listener):
    bundle, out, journal = systemd_bundle(shim, debian_rootfs, tmp_path)
    proc = shim.start(None, bundle=bundle, env=dict(os.environ, NOTIFY_SOCKET=listener.path))
    listener.wait_for("READY=1", timeout=30)
    assert "STATUS=Ready." in listener.lines()
    # READY=1 came when boot was complete: the test's own units already ran
    assert (out / "marker").read_text() == "booted\n"
    assert (out / "inner-ready").read_text() == "ready\n"  # its Type=notify service was ready
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert time.monotonic() - began < 5
    log = subprocess.run(["journalctl", "-D", str(journal), "-o", "cat", "--no-pager"],
                         capture_output=True, text=True).stdout
    assert "Activating special unit halt.target" in log and "System Halt" in log
    assert "STOPPING=1" in listener.lines()


def fake_init(harness, tmp_path, *flags: str, args=("/sbin/init",), bundle_kwargs=None):
    """A shell script at /sbin/init that records what it got: mounts, environment, and the
    signals it receives (it exits on RTMIN+3 or TERM)."""
    sbin, out = tmp_path / "sbin", tmp_path / "out"
    sbin.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    rt3 = signal.SIGRTMIN + 3
    (sbin / "init").write_text(f"""#!/bin/sh
cat /proc/self/mounts > /out/mounts
env > /out/env
trap 'echo RTMIN+3 >> /out/signals; exit 0' {rt3}
trap 'echo TERM >> /out/signals; exit 0' TERM
echo ready > /out/ready
while :; do sleep 0.05; done
""")
    (sbin / "init").chmod(0o755)
    bundle_kwargs = dict(bundle_kwargs or {})
    binds = [(str(sbin), "/sbin", True), (str(out), "/out", False)] + bundle_kwargs.pop("binds", [])
    bundle = harness.bundle(list(args), binds=binds, **bundle_kwargs)
    proc = harness.start(None, "--stop-timeout", "3", *flags, bundle=bundle)
    wait_for_file(str(out / "ready"))
    return proc, out


def mounted_at(mounts_text: str) -> dict[str, str]:
    return {line.split()[1]: line.split()[2] for line in mounts_text.splitlines()}


def effective_config(harness, container_id) -> dict:
    with open(os.path.join(harness.state_dir, container_id, "config.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("args", [("/sbin/init",), ("/bin/sh", "-c", "/sbin/init")], ids=["init", "sh-c-init"])
def test_systemd_payload_gets_what_systemd_needs(shim, tmp_path, args):
    proc, out = fake_init(shim, tmp_path, args=args)
    config = effective_config(shim, proc.container_id)
    mounts = mounted_at((out / "mounts").read_text())
    for path in ("/run", "/run/lock", "/tmp", "/var/log/journal", "/sys/fs/cgroup"):
        assert mounts[path] == "tmpfs", path
    assert mounts["/sys/fs/cgroup/systemd"] == "cgroup"  # the container's own name=systemd subtree
    env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines() if "=" in line)
    assert env["container"] == "shim" and len(env["container_uuid"]) == 32
    assert {"type": "cgroup"} in config["linux"]["namespaces"]
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert (out / "signals").read_text() == "RTMIN+3\n"  # a stop is SIGRTMIN+3 for systemd


def test_systemd_false_gives_nothing_and_stops_with_sigterm(shim_runc, tmp_path):
    proc, out = fake_init(shim_runc, tmp_path, "--systemd=false")
    mounts = mounted_at((out / "mounts").read_text())
    assert "/run" not in mounts and "/var/log/journal" not in mounts and "/sys/fs/cgroup/systemd" not in mounts
    assert "container=" not in (out / "env").read_text()
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert (out / "signals").read_text() == "TERM\n"


def test_systemd_always_for_any_command(shim_runc, tmp_path):
    proc, out = fake_init(shim_runc, tmp_path, "--systemd=always", args=("/bin/sh", "/sbin/init"))
    assert mounted_at((out / "mounts").read_text())["/run"] == "tmpfs"
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert (out / "signals").read_text() == "RTMIN+3\n"


def test_an_ordinary_payload_gets_none_of_it(shim_runc, tmp_path):
    proc, out = fake_init(shim_runc, tmp_path, args=("/bin/sh", "/sbin/init"))
    mounts = mounted_at((out / "mounts").read_text())
    assert "/run" not in mounts and "/sys/fs/cgroup/systemd" not in mounts
    assert "container=" not in (out / "env").read_text()
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert (out / "signals").read_text() == "TERM\n"


def test_the_bundles_own_choices_win(shim_runc, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("s3cret")
    proc, out = fake_init(shim_runc, tmp_path, bundle_kwargs={
        "env": ["container=podman"], "binds": [(str(secrets), "/run/secrets", True)]})
    mounts = (out / "mounts").read_text()
    assert " /run/secrets " in mounts  # our /run tmpfs went in before it, not over it
    env = (out / "env").read_text()
    assert "container=podman" in env and "container=shim" not in env
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
