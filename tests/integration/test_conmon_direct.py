"""shim-conmon driven by hand as podman drives it, beside stock conmon where the two must
agree, and on the bad inputs an engine can hand a monitor: the runtime missing or
failing, a broken bundle, the engine gone before it heard the pid, a second monitor for
the same container. Each one: conmon's exit code, the runtime's own words, nothing left
behind (no runtime state, no socket, no fifo, no process)."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.helpers.engine import MONITORS, monitor_args, wait_for_monitor_exit, wait_for_path
from tests.helpers.podman import installed_monitor
from tests.helpers.runtimes import container_known

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("monitor", sorted(MONITORS))
def test_the_create_path_as_podman_drives_it(engine, monitor):
    bundle = engine.bundle(["/bin/sh", "-c", "echo hello; exit 3"])
    session = engine.session(monitor, [], bundle)
    session.go()
    assert session.first_process()[0] == 0  # the first process exits once the monitor runs
    message = session.read()
    pid = message["data"]
    assert set(message) == {"data"} and pid > 0
    monitor_pid = int(wait_for_path(os.path.join(session.work, "conmon.pid")))
    assert monitor_pid != session.proc.pid and os.path.exists(f"/proc/{monitor_pid}")
    engine.runtime_start(session.cid)
    exit_file = os.path.join(session.work, "exits", session.cid)
    assert wait_for_path(exit_file) == "3"  # digits, no newline
    log = open(os.path.join(session.work, "ctr.log"), "rb").read()
    assert b" stdout F hello\n" in log
    for name in ("attach", "ctl", "winsz"):  # the engine's bundle files...
        assert os.path.lexists(os.path.join(bundle, name)) == (monitor == "conmon" and name != "attach")


@pytest.mark.parametrize("monitor", sorted(MONITORS))
def test_a_runtime_failure_is_the_runtimes_words_on_the_sync_pipe(engine, monitor):
    bundle = engine.bundle(["/no/such/command"])
    session = engine.session(monitor, [], bundle)
    session.go()
    session.first_process()
    message = session.read()
    assert message["data"] == -1 and "no such file or directory" in message["message"]
    wait_for_monitor_exit(session.work)
    assert not container_known(engine.runtime, session.cid)  # it never existed for the runtime


def test_the_runtime_missing_is_one_line_and_exit_1(engine, tmp_path):
    bundle = engine.bundle(["true"])
    session = engine.session("shim-conmon", [], bundle)
    session.close()
    args = monitor_args("x" * 16, str(tmp_path / "no-runtime"), bundle, str(tmp_path))
    proc = subprocess.run([installed_monitor(), *args], capture_output=True)
    assert proc.returncode == 1
    assert proc.stderr.decode().count("\n") == 1 and "Runtime path" in proc.stderr.decode()
    assert os.listdir(bundle) == ["config.json"]


@pytest.mark.parametrize("argv, words", [
    (["--bogus"], "unknown flag --bogus"),
    (["--api-version=1"], "takes no value"),
    (["-c", "x"], "Container UUID not provided"),
])
def test_bad_options_are_one_line_and_exit_1(argv, words):
    proc = subprocess.run([installed_monitor(), *argv], capture_output=True)
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode().count("\n") == 1 and words in proc.stderr.decode()


def test_a_broken_bundle(engine, tmp_path):
    bundle = tmp_path / "broken"
    bundle.mkdir()
    (bundle / "config.json").write_text("{not json")
    session = engine.session("shim-conmon", [], str(bundle))
    session.go()
    assert session.first_process()[0] == 0
    message = session.read()
    assert message["data"] == -1 and message["message"]  # the runtime's own words
    wait_for_monitor_exit(session.work)
    assert sorted(os.listdir(bundle)) == ["config.json"]  # no socket, no fifo left


def test_the_engine_gone_before_the_start_byte_creates_nothing(engine):
    bundle = engine.bundle(["true"])
    session = engine.session("shim-conmon", [], bundle)
    session.start.close()  # podman died before it moved the monitor to its cgroup
    code, _, err = session.first_process()
    assert code == 1 and b"start pipe" in err
    assert os.listdir(bundle) == ["config.json"] and not container_known(engine.runtime, session.cid)


def test_the_engine_gone_before_it_heard_the_pid_leaves_nothing(engine):
    bundle = engine.bundle(["sleep", "100"])
    session = engine.session("shim-conmon", [], bundle)
    session.go()
    session.sync.close()  # podman died after the start byte
    assert session.first_process()[0] == 0
    wait_for_monitor_exit(session.work)
    assert not container_known(engine.runtime, session.cid)  # created for nobody: deleted
    assert os.listdir(bundle) == ["config.json"]


def test_a_second_monitor_for_the_same_container_is_refused(engine):
    bundle = engine.bundle(["sleep", "100"])
    first = engine.session("shim-conmon", [], bundle)
    first.go()
    first.first_process()
    assert first.read()["data"] > 0
    second = engine.session("shim-conmon", [], bundle)
    second.go()
    second.first_process()
    message = second.read()
    assert message["data"] == -1 and "already has a monitor" in message["message"]
    # The first monitor's attach socket still answers.
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    client.connect(os.path.join(bundle, "attach"))
    client.close()
    subprocess.run([engine.runtime, "kill", first.cid, "KILL"], check=True)
    assert wait_for_path(os.path.join(first.work, "exits", first.cid)) == "137"


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_SEQPACKET])
def test_stream_sockets_and_the_legacy_keys_for_cri_o(engine, kind):
    bundle = engine.bundle(["sh", "-c", "exit 4"])
    session = engine.session("shim-conmon", [], bundle, kind=kind, legacy=True)
    session.go()
    session.first_process()
    message = session.read()
    assert set(message) == {"pid"} and message["pid"] > 0  # no --api-version: CRI-O's keys
    engine.runtime_start(session.cid)
    assert wait_for_path(os.path.join(session.work, "exits", session.cid)) == "4"
