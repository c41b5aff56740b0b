"""Driving a conmon-compatible monitor by hand, the way podman does (libpod's
createOCIContainer): SEQPACKET socketpairs for the sync and start pipes, one start byte,
the first process's exit, ``{"data": pid}``, then ``runtime start`` by the engine.

Works with the shim's ``shim-conmon`` and with stock conmon alike, so a test can hold
them side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

# The monitors a test can drive side by side: the shim's, and stock conmon.
MONITORS = {"shim-conmon": os.path.join(os.path.dirname(__import__("sys").executable), "shim-conmon"),
            "conmon": shutil.which("conmon") or "/usr/bin/conmon"}


class Session:
    """One monitor process and the engine's ends of its pipes."""

    def __init__(self, monitor: str, args: list[str], *, env: dict | None = None, cwd: str | None = None,
                 attach_pipe: bool = False, kind: int = socket.SOCK_SEQPACKET, extra_fds: tuple = ()) -> None:
        self.sync, sync_child = socket.socketpair(socket.AF_UNIX, kind)
        self.start, start_child = socket.socketpair(socket.AF_UNIX, kind)
        # podman's layout: preserved fds first (3..), then the sync and start pipes.
        base = 3 + len(extra_fds)
        fds = {base: sync_child.fileno(), base + 1: start_child.fileno()}
        # No fork server: these sessions are about the monitor itself (the fork server's
        # tests give it one of their own).
        environment = {"PATH": os.environ["PATH"], "_OCI_SYNCPIPE": str(base), "_OCI_STARTPIPE": str(base + 1),
                       "SHIM_CONMON_FORK_SERVER": "0"}
        if attach_pipe:
            self.attach, attach_child = socket.socketpair(socket.AF_UNIX, kind)
            fds[base + 2] = attach_child.fileno()
            environment["_OCI_ATTACHPIPE"] = str(base + 2)
        for i, fd in enumerate(extra_fds):
            fds[3 + i] = fd
        environment.update(env or {})
        # bash puts each fd at its number, as Go's ExtraFiles does (dash takes one digit).
        redirects = " ".join(f"{target}>&{source}" for target, source in fds.items())
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$@" {redirects}', "bash", monitor, *args],
                                     pass_fds=list(fds.values()), env=environment, cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for child in (sync_child, start_child):
            child.close()
        if attach_pipe:
            attach_child.close()

    def go(self) -> None:
        """The start byte (podman writes one 0x00 after moving the monitor's cgroup)."""
        self.start.send(b"\0")

    def first_process(self, timeout: float = 30) -> tuple[int, bytes, bytes]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def read(self, pipe=None, timeout: float = 30) -> dict | None:
        """One JSON message, or None at EOF."""
        pipe = pipe or self.sync
        pipe.settimeout(timeout)
        data = pipe.recv(65536)
        return json.loads(data) if data else None

    def close(self) -> None:
        for sock in (self.sync, self.start, getattr(self, "attach", None)):
            if sock is not None:
                sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def monitor_args(cid: str, runtime: str, bundle: str, work: str, *extra: str) -> list[str]:
    """podman's create argv, trimmed to what a hand-made bundle needs."""
    return ["--api-version", "1", "-c", cid, "-u", cid, "-r", runtime, "-b", bundle,
            "-p", os.path.join(work, "pidfile"), "-n", cid, "--exit-dir", os.path.join(work, "exits"),
            "--full-attach", "-l", f"k8s-file:{os.path.join(work, 'ctr.log')}", "--log-level", "debug",
            "--conmon-pidfile", os.path.join(work, "conmon.pid"), *extra]


def wait_for_path(path: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    with open(path) as f:
        return f.read()


def wait_for_monitor_exit(work: str, timeout: float = 30) -> None:
    """Until the daemonized monitor (its pid in ``<work>/conmon.pid``) is gone."""
    import select

    monitor = int(wait_for_path(os.path.join(work, "conmon.pid"), timeout))
    try:
        pidfd = os.pidfd_open(monitor)
    except ProcessLookupError:
        return
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            raise TimeoutError(f"monitor {monitor} still running after {timeout} s")
    finally:
        os.close(pidfd)
