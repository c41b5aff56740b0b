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


def debug_lines(stderr: bytes) -> list[str]:
    """The shim's --log-level debug lines, without their prefix, time and level."""
    lines = [line.split("] ", 1)[1] for line in stderr.decode().splitlines() if line.startswith("shim: [")]
    return [line.removeprefix("debug: ") for line in lines]


def index_of(lines: list[str], start: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(start))


def notifying_init(harness, tmp_path, listener, scenario, *args):
    """A payload that speaks sd_notify as the container's systemd (systemd mode forced),
    and exits on SIGTERM (its stop signal here)."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    bundle = harness.python_bundle("notifier.py", scenario, *args, out_dir=str(out))
    proc = harness.start(None, "--systemd=always", "--stop-signal", "TERM", "--stop-timeout", "5",
                         "--log-level", "debug", bundle=bundle, env=dict(os.environ, NOTIFY_SOCKET=listener.path))
    return proc, out


def test_a_systemd_payload_boots_before_trio_is_imported(shim, tmp_path, listener):
    # STATUS= and READY=1 are relayed by the main thread before trio exists; the import
    # begins at READY=1, and READY=1 also told the stop sequence that signals are handled.
    proc, out = notifying_init(shim, tmp_path, listener, "sequence")
    listener.wait_for("READY=1")
    assert listener.lines()[:3] == [f"MAINPID={proc.pid}", "STATUS=warming", "READY=1"]
    wait_for_file(str(out / "done"))
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and time.monotonic() - began < 3  # no wait for the signals level
    lines = debug_lines(err)
    ready = index_of(lines, "notify: relayed from pid")
    assert lines[ready].endswith(": STATUS=warming") and lines[ready + 1].endswith(": READY=1")
    assert lines[ready + 2] == "trio import begins: the container is ready"
    assert lines[ready + 3] == "trio imported"


def test_a_stop_during_a_systemd_boot_imports_trio_at_once(shim, tmp_path, listener):
    proc, out = notifying_init(shim, tmp_path, listener, "send", "X_SYSTEMD_SIGNALS_LEVEL=2")
    wait_for_file(str(out / "done"))  # signals are handled, and READY=1 never comes
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and time.monotonic() - began < 3  # the level, heard before trio, counted
    lines = debug_lines(err)
    assert "trio import begins: a signal for trio to handle" in lines
    assert index_of(lines, "trio imported") < index_of(lines, "SIGTERM received: stopping container")


def test_a_systemd_payload_that_exits_during_boot_is_seen_at_once(shim, tmp_path, listener):
    proc, out = notifying_init(shim, tmp_path, listener, "env")  # exits 0 at once, READY=1 never comes
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "trio import begins: the container's init exited" in debug_lines(err)
