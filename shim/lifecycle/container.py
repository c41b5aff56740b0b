"""What the shim knows about the container it runs."""

from __future__ import annotations


class Container:
    """A created container: its init's pid and pidfd, and the read ends of its output."""

    __slots__ = ("id", "init_pid", "pidfd", "stdout_fd", "stderr_fd", "own_pid_namespace",
                 "create_took", "start_took", "running_since")

    def __init__(self, id: str, init_pid: int, pidfd: int, stdout_fd: int, stderr_fd: int,
                 own_pid_namespace: bool) -> None:
        self.id = id
        self.init_pid = init_pid
        self.pidfd = pidfd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.own_pid_namespace = own_pid_namespace
        self.create_took = 0.0  # seconds `runtime create` took
        self.start_took = 0.0  # seconds `runtime start` took
        self.running_since = 0.0  # time.monotonic() when start returned
