"""Starting each contender the way its users do, and knowing when it is gone.

- the runtime alone: ``runtime run``;
- the shim: ``shim run`` in the foreground;
- conmon standalone, driven like podman drives it: sync and start pipes (socketpairs) in
  its environment, one byte on the start pipe, ``{"data": <pid>}`` back on the sync pipe,
  then ``runtime start`` by the caller; the container's exit shows as ``<exit-dir>/<ID>``;
- tini, catatonit, dumb-init: as the parent of the payload, on the host.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def wait_pid_exit(pid: int, timeout: float = 30) -> int:
    """Wait for any process (child or not) to be gone; returns the time it was seen gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return now_ns()
    try:
        select.select([fd], [], [], timeout)
        return now_ns()
    finally:
        os.close(fd)


class _Child:
    """A monitor the driver started itself (its child), with the payload's stdout."""

    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def readline(self) -> bytes:
        return self.proc.stdout.readline()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send the signal, return the time (ns) the monitor was gone."""
        os.kill(self.proc.pid, signum)
        self.proc.wait()
        return now_ns()


class ShimRun(_Child):
    def __init__(self, env, runtime: str, bundle: str, *flags: str, stdout=subprocess.PIPE, extra_env=None) -> None:
        self.container_id = env.new_id("shim")
        self.runtime = runtime
        argv = [*env.shim, "run", "-b", bundle, "-r", runtime, "--state-dir", env.state_dir(), *flags,
                self.container_id]
        self.started = now_ns()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                                     env={**os.environ, **(extra_env or {})})

    def finish(self) -> None:
        """Leave nothing behind, even after a failed measurement: a stop, then a kill."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.proc.wait()
        subprocess.run([self.runtime, "delete", "--force", self.container_id], capture_output=True)


class ConmonRun:
    """conmon standalone for one container; ``start()`` returns once the payload runs."""

    def __init__(self, env, runtime: str, bundle: str, *extra: str, extra_env=None) -> None:
        self.env = env
        self.runtime = runtime
        self.container_id = env.new_id("conmon")
        self.dir = os.path.join(env.workdir, "conmon", self.container_id)
        os.makedirs(os.path.join(self.dir, "exits"))
        self.log = os.path.join(self.dir, "ctr.log")
        self.exit_file = os.path.join(self.dir, "exits", self.container_id)
        self.conmon_pidfile = os.path.join(self.dir, "conmon.pid")
        self.bundle = bundle
        self.extra = list(extra)
        self.extra_env = extra_env or {}
        self.container_pid = 0
        self.conmon_pid = 0
        self.first_pid = 0  # the process started, which daemonizes into conmon_pid

    def start(self) -> int:
        """Launch conmon and the container; returns the time (ns) conmon was exec'd."""
        sync_parent, sync_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        start_parent, start_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = (sync_child.fileno(), start_child.fileno())
        child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "_OCI_SYNCPIPE": str(fds[0]),
                     "_OCI_STARTPIPE": str(fds[1]), **self.extra_env}
        argv = [self.env.conmon, "--api-version", "1", "-c", self.container_id, "-u", self.container_id,
                "-n", self.container_id, "-r", self.runtime, "-b", self.bundle,
                "-p", os.path.join(self.dir, "pidfile"), "-P", self.conmon_pidfile,
                "-l", f"k8s-file:{self.log}", "--exit-dir", os.path.join(self.dir, "exits"),
                "--socket-dir-path", self.dir, "--log-level", "error", *self.extra]
        began = now_ns()
        first = subprocess.Popen(argv, env=child_env, pass_fds=fds, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.first_pid = first.pid
        sync_child.close()
        start_child.close()
        start_parent.send(b"\0")  # podman moves conmon into its cgroup first, then says go
        first.wait()  # the first fork writes the conmon pid file and exits
        message = json.loads(sync_parent.recv(4096))
        sync_parent.close()
        start_parent.close()
        if message.get("data", -1) < 0:
            raise RuntimeError(f"conmon: {message}")
        self.container_pid = message["data"]
        with open(self.conmon_pidfile) as f:
            self.conmon_pid = int(f.read().strip())
        subprocess.run([self.runtime, "start", self.container_id], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return began

    def wait_exit_file(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.exit_file):
            if time.monotonic() > deadline:
                raise TimeoutError(self.exit_file)
            time.sleep(0.0002)
        return now_ns()

    def stdout_lines(self) -> list[str]:
        """The container's stdout, from conmon's k8s-file log."""
        lines = []
        with open(self.log) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 3)
                if len(parts) == 4 and parts[1] == "stdout":
                    lines.append(parts[3])
        return lines

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """SIGTERM to conmon (it forwards it to the container); returns when conmon is gone."""
        os.kill(self.conmon_pid, signum)
        return wait_pid_exit(self.conmon_pid)

    def finish(self) -> None:
        if self.conmon_pid:
            try:
                os.kill(self.conmon_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_pid_exit(self.conmon_pid, 5)
        subprocess.run([self.runtime, "delete", "--force", self.container_id], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class HostRun(_Child):
    """A peer init (tini, catatonit, dumb-init) or nothing, with the payload as its child."""

    def __init__(self, monitor: list[str], payload: list[str]) -> None:
        self.proc = subprocess.Popen([*monitor, *payload], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def peer_argv(name: str, path: str) -> list[str]:
    """How each peer init runs a child when it is not PID 1."""
    if name == "tini":
        return [path, "-s", "--"]  # -s: subreaper, as it is not PID 1 here
    if name == "dumb-init":
        return [path, "--single-child", "--"]  # signal the child itself, as the others do
    return [path, "--"]  # catatonit becomes a subreaper by itself
