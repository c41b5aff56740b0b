"""Becoming the engine's monitor: wait for the start pipe, fork, and detach.

The engine moves its monitor into the right cgroup before it writes the start pipe, so
nothing may be spawned before that byte arrives. Then, unless ``--sync``, the monitor
forks: the first process writes the monitor's pid to ``--conmon-pidfile`` and exits 0
(the engine waits for exactly that), and the child goes on as the monitor, in a session of
its own, with the engine's stdio replaced by /dev/null (unless the container's output
passes through it).

The child waits until its pid is on disk before it does anything: an engine that reads
the pidfile the moment its child exited must find the monitor there, and a pidfile that
cannot be written must not leave a monitor nobody knows about.
"""

from __future__ import annotations

import os

from shim.conmon.options import MonitorError
from shim.process.subreaper import set_subreaper
from shim.state.files import write_atomic

_GO = b"g"


def daemonize(pidfile: str | None) -> None:
    """Fork. Returns in the monitor; the first process leaves with status 0 once the
    monitor's pid is written (1 if it cannot be: the monitor then exits too)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_w)
        go = os.read(ready_r, 1)
        os.close(ready_r)
        if go != _GO:
            os._exit(1)
        return
    os.close(ready_r)
    code = 0
    if pidfile is not None:
        try:
            write_atomic(pidfile, str(pid).encode())
        except OSError as e:
            os.write(2, f"shim-conmon: cannot write the monitor's pid to {pidfile}: {e.strerror}\n".encode())
            code = 1
    if code == 0:
        os.write(ready_w, _GO)
    os._exit(code)


def write_own_pid(pidfile: str | None) -> None:
    """``--sync``: no fork; the monitor is this process."""
    if pidfile is not None:
        try:
            write_atomic(pidfile, str(os.getpid()).encode())
        except OSError as e:
            raise MonitorError(f"cannot write the monitor's pid to {pidfile}: {e.strerror}") from None


def become_monitor(keep_stdio: bool) -> None:
    """A session of its own, the engine's stdio let go, and every orphan of the container
    re-parented here."""
    if not keep_stdio:
        detach_stdio()
    try:
        os.setsid()
    except PermissionError:
        pass  # already a session leader (--sync under a caller that made it one)
    try:
        set_subreaper(True)
    except OSError as e:
        raise MonitorError(f"cannot become a subreaper: {e.strerror}") from None


def detach_stdio() -> None:
    """The engine may wait for its child's stdout to close: hand back fds 0, 1 and 2."""
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
