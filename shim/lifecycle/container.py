"""What the shim knows about the container it runs."""

from __future__ import annotations

import _signal  # not signal: see shim/signals/catalog.py


def signal_init(pidfd: int, signum: int) -> None:
    """Signal a container's init through its pidfd (a recycled pid can never be hit); an
    init that is already gone is not an error: the reaper will tell."""
    try:
        _signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        pass


class Container:
    """A created container: its init's pid and pidfd, and the shim's ends of its stdio
    (None where the container's fd is not a pipe of the shim's)."""

    __slots__ = ("id", "init_pid", "pidfd", "stdin_fd", "stdout_fd", "stderr_fd", "own_pid_namespace",
                 "create_took", "start_took", "running_since")

    def __init__(self, id: str, init_pid: int, pidfd: int, stdout_fd: int | None, stderr_fd: int | None,
                 own_pid_namespace: bool, stdin_fd: int | None = None) -> None:
        self.id = id
        self.init_pid = init_pid
        self.pidfd = pidfd
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.own_pid_namespace = own_pid_namespace
        self.create_took = 0.0  # seconds `runtime create` took
        self.start_took = 0.0  # seconds `runtime start` took
        self.running_since = 0.0  # time.monotonic() when start returned

    def signal(self, signum: int) -> None:
        signal_init(self.pidfd, signum)
