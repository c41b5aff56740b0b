"""The sd_notify relay against a host-side socket that records raw datagrams and their
senders (the real systemd manager is in test_systemd_units.py)."""

from __future__ import annotations

import os
import signal
import socket
import time

import psutil
import pytest

from tests.helpers.harness import assert_fds_flat, held_fds, wait_for_file, wait_for_trio

pytestmark = pytest.mark.integration


def notify_env(listener) -> dict:
    return dict(os.environ, NOTIFY_SOCKET=listener.path)


def start_notifier(harness, tmp_path, listener, scenario, *flags, extra=(), env=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    bundle = harness.python_bundle("notifier.py", scenario, *extra, out_dir=str(out))
    return harness.start(None, *flags, bundle=bundle, env=env or notify_env(listener)), out


def stop(proc) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)


def test_container_mode_relays_from_the_shims_pid(shim, tmp_path, listener):
    proc, out = start_notifier(shim, tmp_path, listener, "sequence", "--sdnotify=container")
    ready_at = listener.wait_for("READY=1")
    warming_at = listener.wait_for("STATUS=warming")
    assert warming_at <= ready_at
    assert listener.lines()[:3] == [f"MAINPID={proc.pid}", "STATUS=warming", "READY=1"]
    assert {pid for pid, _, _, _ in listener.messages} == {proc.pid}  # systemd sees the shim as the sender
    stop(proc)
    assert proc.returncode == 0
    assert listener.lines()[-1] == "STOPPING=1"


def test_shim_mode_reports_ready_once_started(shim, tmp_path, listener):
    proc, out = start_notifier(shim, tmp_path, listener, "env", "--sdnotify=shim")
    listener.wait_for("READY=1")
    proc.communicate(timeout=30)
    assert listener.messages[0][1] == f"MAINPID={proc.pid}\nREADY=1\nSTATUS=running".encode()
    env = (out / "env").read_text()
    assert "NOTIFY_SOCKET" not in env  # the container gets no socket in shim mode


# Stops at once on SIGTERM (sleep as PID 1 would ignore it until the stop timeout).
STOPPABLE = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]


def test_shim_mode_announces_the_stop(shim_runc, tmp_path, listener):
    proc = shim_runc.start(STOPPABLE, "--sdnotify=shim", env=notify_env(listener))
    listener.wait_for("READY=1")
    stop(proc)
    assert proc.returncode == 0
    assert listener.messages[-1][1] == b"STOPPING=1\nSTATUS=stopping"


def test_auto_is_shim_for_an_ordinary_payload(shim_runc, tmp_path, listener):
    proc = shim_runc.start(STOPPABLE, env=notify_env(listener))
    listener.wait_for("READY=1")
    stop(proc)
    assert proc.returncode == 0


def nothing_else_arrived(listener) -> list[bytes]:
    """Once the sender is gone: a sentinel of the test's own, queued behind anything it
    sent, arrives last; what came before it is everything it sent."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sentinel:
        sentinel.sendto(b"X_TEST_SENTINEL=1", listener.path)
    listener.wait_for("X_TEST_SENTINEL=1")
    return [data for _, data, _, _ in listener.messages if data != b"X_TEST_SENTINEL=1"]


def test_ignore_sends_nothing_and_mounts_nothing(shim_runc, tmp_path, listener):
    proc, out = start_notifier(shim_runc, tmp_path, listener, "env", "--sdnotify=ignore")
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert nothing_else_arrived(listener) == []
    assert "NOTIFY_SOCKET" not in (out / "env").read_text()


@pytest.mark.parametrize("mode", ["container", "shim", "auto"])
def test_without_a_host_socket_nothing_happens(shim_runc, tmp_path, mode):
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc, out = start_notifier(shim_runc, tmp_path, None, "env", f"--sdnotify={mode}", env=env)
    out_text, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err == b""
    assert "NOTIFY_SOCKET" not in (out / "env").read_text()


def test_runtime_never_sees_the_hosts_notify_socket(shim_runc, tmp_path, listener):
    record = tmp_path / "runtime-env"
    wrapper = tmp_path / "runtime"
    wrapper.write_text(f"#!/bin/sh\nenv >> {record}\nexec {shim_runc.runtime} \"$@\"\n")
    wrapper.chmod(0o755)
    real, shim_runc.runtime = shim_runc.runtime, str(wrapper)
    proc, out = start_notifier(shim_runc, tmp_path, listener, "env", "--sdnotify=container")
    proc.communicate(timeout=30)
    shim_runc.runtime = real
    assert proc.returncode == 0
    assert "NOTIFY_SOCKET" not in record.read_text()
    assert "NOTIFY_SOCKET=/run/notify/notify.sock" in (out / "env").read_text()


def test_hostile_payload_gets_nothing_forbidden_through(shim, tmp_path, listener):
    proc, out = start_notifier(shim, tmp_path, listener, "hostile", "--sdnotify=container")
    listener.wait_for("STATUS=survived")
    stop(proc)
    lines = listener.lines()
    assert lines == [f"MAINPID={proc.pid}", "READY=1", "STATUS=survived", "STOPPING=1"]
    assert all(fds == 0 for _, _, fds, _ in listener.messages)


def test_barrier_is_released_after_earlier_messages(shim, tmp_path, listener):
    proc, out = start_notifier(shim, tmp_path, listener, "barrier", "--sdnotify=container")
    assert wait_for_file(str(out / "barrier"), 15) == "barrier-ok"
    assert "READY=1" in listener.lines()  # relayed before the barrier was released
    stop(proc)


def test_a_process_outside_the_container_is_not_heard(shim_runc, tmp_path, listener):
    proc, out = start_notifier(shim_runc, tmp_path, listener, "ping", "--sdnotify=container")
    listener.wait_for("READY=1")
    path = os.path.join(shim_runc.state_dir, proc.container_id, "notify", "notify.sock")
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    outsider = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    outsider.sendto(b"STATUS=from-outside\nREADY=1", path)  # the host's root can reach it...
    outsider.close()
    os.kill(proc.pid, signal.SIGUSR1)  # the container answers on the same socket, behind it
    listener.wait_for("STATUS=ping-1")
    stop(proc)
    assert "STATUS=from-outside" not in listener.lines()  # ...but is not a process of the container


def test_a_flood_costs_no_fds_memory_or_messages(shim, tmp_path, listener):
    proc, out = start_notifier(shim, tmp_path, listener, "flood", "--sdnotify=container", extra=("10000",))
    shim_process = psutil.Process(proc.pid)
    wait_for_trio(proc.pid)
    # one more status relayed: trio's relay task runs (the main thread relayed until then),
    # with most of the flood still to come
    listener.wait_for_another()  # flood-done counts too, if the flood was that quick
    fds_before = held_fds(proc.pid)
    rss_before = shim_process.memory_info().rss
    listener.wait_for("STATUS=flood-done", timeout=30)
    statuses = [l for l in listener.lines() if l.startswith("STATUS=") and l[7:].isdigit()]
    assert len(statuses) == 10000 and statuses == [f"STATUS={i}" for i in range(10000)]
    assert_fds_flat(proc.pid, fds_before)
    assert shim_process.memory_info().rss - rss_before < 4 * 1024 * 1024
    began = time.monotonic()
    stop(proc)
    assert time.monotonic() - began < 2  # still responsive
    assert proc.returncode == 0


def test_an_unreachable_host_socket_costs_one_warning(shim_runc, tmp_path):
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "gone.sock"))
    proc, out = start_notifier(shim_runc, tmp_path, None, "sequence", "--sdnotify=container", env=env)
    wait_for_file(str(out / "done"), 15)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0  # the container ran and stopped normally
    assert err.decode().count("cannot reach NOTIFY_SOCKET") == 1
    assert len(err.decode().splitlines()) == 1
