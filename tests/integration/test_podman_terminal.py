"""Terminals and exec sessions through podman with the shim as monitor: ``run -it``,
``attach`` and detach, ``exec`` (attached, ``-i``, ``-it``, ``-d``), healthchecks."""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE
from tests.helpers.pty_session import PtySession

pytestmark = pytest.mark.integration


@pytest.fixture
def terminal(podman):
    sessions = []

    def start(*args: str, rows: int = 24, cols: int = 80) -> PtySession:
        session = PtySession(podman.argv(*args), env=podman.env, rows=rows, cols=cols)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


SIZE_ANSWER = re.compile(rb"S=(\d+ \d+)=E")


def shell_size(session: PtySession) -> bytes:
    """Ask the shell in the container for its terminal's size (the echo of the command
    itself has no digits where the answer has)."""
    start = len(session.output)
    session.write(b"echo S=$(stty size)=E\r")
    return session.read_until_match(SIZE_ANSWER, start).group(1)


def test_run_it_a_shell_answers_and_follows_the_window(terminal):
    session = terminal("run", "--rm", "-it", IMAGE, "sh", rows=33, cols=77)
    session.write(b"echo $((40 + 2))-answer\r")
    session.read_until(b"42-answer")
    assert shell_size(session) == b"33 77"  # podman's initial size reached the pty
    session.resize(40, 100)
    deadline = time.monotonic() + 20
    while shell_size(session) != b"40 100":  # podman -> ctl fifo -> monitor -> pty
        assert time.monotonic() < deadline, "the resize never arrived"
        time.sleep(0.1)
    session.write(b"exit 3\r")
    assert session.wait() == 3


def test_run_t_ends_lines_like_a_terminal(podman):
    # A pty's output goes to the log as stdout, with \r\n line ends (450-interactive).
    cid = podman.out("run", "-d", "-t", IMAGE, "echo", "hello")
    assert podman.out("wait", cid) == "0"
    assert podman("logs", cid).stdout == b"hello\r\n"


def test_attach_to_an_it_container_and_detach(podman, terminal):
    cid = podman.out("run", "-dit", IMAGE, "sh")
    session = terminal("attach", cid)
    session.write(b"echo attached-$((6 * 7))\r")
    session.read_until(b"attached-42")
    # ctrl-p, then ctrl-q: podman's default detach keys, each in a read of its own (as
    # typed; podman's CopyDetachable does not see keys that arrive in one read).
    session.write(b"\x10")
    time.sleep(0.2)
    session.write(b"\x11")
    assert session.wait() == 0
    assert podman.out("inspect", "--format", "{{.State.Running}}", cid) == "true"
    podman("rm", "-f", "-t", "0", cid)


@pytest.fixture
def running(podman):
    cid = podman.out("run", "-d", IMAGE, "sleep", "1000")
    yield cid
    podman("rm", "-f", "-t", "0", cid)


@pytest.mark.parametrize("command, code", [
    (["true"], 0), (["false"], 1), (["/etc"], 126), (["/no/such/command"], 127), (["sh", "-c", "exit 42"], 42),
])
def test_exec_exit_codes(podman, running, command, code):
    assert podman("exec", running, *command, check=False).returncode == code


def test_exec_stdin_is_byte_exact(podman, running):
    data = os.urandom(1536 * 1024)
    proc = podman("exec", "-i", running, "md5sum", input=data)
    import hashlib

    assert proc.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()


def test_exec_output_is_not_truncated(podman, running):
    proc = podman("exec", running, "sh", "-c", "head -c 20480 /dev/zero | tr '\\0' y; echo; echo e >&2")
    assert proc.stdout == b"y" * 20480 + b"\n" and proc.stderr == b"e\n"


def test_exec_it(podman, running, terminal):
    session = terminal("exec", "-it", running, "sh", rows=30, cols=90)
    session.write(b"tty; stty size; exit 5\r")
    assert session.wait() == 5
    assert b"/dev/pts/" in session.output and b"30 90" in session.output


def test_exec_detached(podman, running):
    podman("exec", "-d", running, "sh", "-c", "echo from-exec-d > /tmp/mark")
    deadline = time.monotonic() + 20
    while podman("exec", running, "cat", "/tmp/mark", check=False).stdout != b"from-exec-d\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_healthcheck_healthy_and_unhealthy(podman):
    cid = podman.out("run", "-d", "--health-cmd", "test -e /tmp/ok && echo fine", IMAGE, "sleep", "1000")
    unhealthy = podman("healthcheck", "run", cid, check=False)
    assert unhealthy.returncode == 1 and b"unhealthy" in unhealthy.stdout + unhealthy.stderr
    podman("exec", cid, "touch", "/tmp/ok")
    assert podman("healthcheck", "run", cid).returncode == 0
    log = podman.out("inspect", "--format", "{{range .State.Health.Log}}{{.Output}}|{{end}}", cid)
    assert "fine" in log
    podman("rm", "-f", "-t", "0", cid)
