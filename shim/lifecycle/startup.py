"""Start-up: from a checked bundle to a created container, before trio is imported.

``import trio`` costs some 50 ms of CPU; the container's start must not wait for it.
Everything here is plain system calls, and the one reaper waits with blocking ``waitpid``
on the pids it spawned. Signals stay blocked (pending) throughout, so none is lost or kills
the shim. Both fronts create containers here: ``shim run`` and the conmon-compatible one
differ only in the runtime's argv and in how the container's fds 0-2 are wired
(``StdioPlan``).
"""

from __future__ import annotations

import os
import time

from shim.errors import SHIM_FAILED, ShimError
from shim.lifecycle.container import Container, signal_init
from shim.runtime.command import classify_create_failure, mentions_existing_container, one_line, silent_failure
from shim.runtime.invoke import Runtime
from shim.signals.catalog import SIGKILL

PID_FILE_NAME = "pidfile"
# How long `runtime create` may take before it is killed and the container removed: podman's
# own limit for a monitor's answer (define.ContainerCreateTimeout). runc and crun take tens
# of milliseconds; a runtime stuck on a lock or a dead mount would hold the shim for ever.
CREATE_TIMEOUT = 240.0

# How each of the container's fds 0, 1, 2 is wired.
INHERIT = "inherit"  # the shim's own fd, handed straight through
PIPE = "pipe"  # a pipe; the shim keeps the other end
NULL = "null"  # /dev/null


class StdioPlan:
    """A front's choice for the container's stdin, stdout and stderr (pure)."""

    __slots__ = ("stdin", "stdout", "stderr")

    def __init__(self, stdin: str, stdout: str, stderr: str) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr


class CreateFailed(ShimError):
    """``runtime create`` (or exec, restore) failed; ``runtime_text`` is its own words,
    unabridged, for an engine that reports them itself."""

    def __init__(self, message: str, exit_code: int, runtime_text: str) -> None:
        super().__init__(message, exit_code)
        self.runtime_text = runtime_text


class _Stdio:
    """The fds of one ``StdioPlan``: three for the runtime, and the shim's ends."""

    def __init__(self, plan: StdioPlan) -> None:
        self.child: list[int] = []
        self._child_owned: list[int] = []
        self.stdin_w = self.stdout_r = self.stderr_r = None
        try:
            for target, mode in enumerate((plan.stdin, plan.stdout, plan.stderr)):
                if mode == INHERIT:
                    self.child.append(target)
                elif mode == NULL:
                    fd = os.open(os.devnull, (os.O_RDONLY if target == 0 else os.O_WRONLY) | os.O_CLOEXEC)
                    self._child_owned.append(fd)
                    self.child.append(fd)
                elif target == 0:
                    read_end, self.stdin_w = os.pipe()
                    self._child_owned.append(read_end)
                    self.child.append(read_end)
                else:
                    read_end, write_end = os.pipe()
                    if target == 1:
                        self.stdout_r = read_end
                    else:
                        self.stderr_r = read_end
                    self._child_owned.append(write_end)
                    self.child.append(write_end)
        except BaseException:
            self.close_child_ends()
            self.close_ours()
            raise

    def close_child_ends(self) -> None:
        """The runtime has them now (or failed to start)."""
        for fd in self._child_owned:
            os.close(fd)
        self._child_owned = []

    def close_ours(self) -> None:
        for fd in (self.stdin_w, self.stdout_r, self.stderr_r):
            if fd is not None:
                os.close(fd)
        self.stdin_w = self.stdout_r = self.stderr_r = None


def create_container(runtime: Runtime, container_id: str, argv: list[str], pid_file: str,
                     stdio: StdioPlan, own_pid_namespace: bool, keep_fds: tuple[int, ...] = (),
                     owns_container: bool = True, timeout: float | None = None) -> Container:
    """Run ``argv`` (the runtime's ``create``, or ``restore``/``exec --detach``) and return
    the container whose init (or exec'd process) it left waiting or running, re-parented
    to the shim.

    The runtime passes its own fds 0-2 on to the process; ``keep_fds`` reach it at the
    same numbers. On failure nothing is left behind: no fd, and no runtime state when the
    container is this call's (``owns_container``; an exec session's container is not).
    A runtime still running after ``timeout`` seconds (default ``CREATE_TIMEOUT``) is killed.
    """
    fds = _Stdio(stdio)
    log_offset = runtime.log_offset()
    started = time.monotonic()
    created = False
    try:
        try:
            pid = runtime.spawn(argv, stdin=fds.child[0], stdout=fds.child[1], stderr=fds.child[2], keep_fds=keep_fds)
        except OSError as e:
            raise CreateFailed(f"runtime {runtime.command.path}: cannot execute: {e.strerror}",
                               SHIM_FAILED, f"{runtime.command.path}: {e.strerror}") from None
        finally:
            fds.close_child_ends()
        timeout = timeout or CREATE_TIMEOUT
        status = _wait_for_runtime(runtime, pid, timeout)
        if status is None:
            created = True  # it may have got far: remove what it made
            text = f"create did not finish within {timeout:g} s (create timeout)"
            raise CreateFailed(f"{runtime.name} {text}: killed it, container {container_id} removed", SHIM_FAILED,
                               f"{runtime.command.path} {text}")
        if status != 0:
            # A runtime killed half-way could not clean up after itself: what it may have
            # created (the container, its init waiting to be started) is ours to remove.
            created = os.WIFSIGNALED(status)
            # On failure its stderr holds only the runtime's words (no payload ran).
            raw = _read_available(fds.stderr_r) if fds.stderr_r is not None else ""
            raise _create_failure(runtime, container_id, runtime.logged_error_since(log_offset) or raw, raw, status)
        created = True
        init_pid = _read_pid_file(pid_file, runtime.name)
        # The init is our child now (re-parented when the runtime exited) and is not reaped
        # until we say so, so its pid cannot be recycled before pidfd_open.
        pidfd = _open_child(init_pid, pid_file, runtime.name)
        runtime.reaper.expect(init_pid)
    except BaseException:
        fds.close_ours()
        if created and owns_container:  # created, but unusable: leave no runtime state behind
            remove_container(runtime, container_id)
        raise
    container = Container(container_id, init_pid, pidfd, fds.stdout_r, fds.stderr_r, own_pid_namespace,
                          stdin_fd=fds.stdin_w)
    container.create_took = time.monotonic() - started
    return container


def _wait_for_runtime(runtime: Runtime, pid: int, timeout: float) -> int | None:
    """The runtime's wait status; None when it ran out of ``timeout`` seconds, and then it
    is killed with its process group (``spawn`` gave it one of its own)."""
    import select

    pidfd = os.pidfd_open(pid)  # our unreaped child: the pid cannot be another process's
    try:
        finished = bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)
    if not finished:
        try:
            os.killpg(pid, SIGKILL)
        except ProcessLookupError:
            pass
    status = runtime.reaper.wait_blocking(pid)
    return status if finished else None


def start_container(runtime: Runtime, container: Container) -> None:
    """``runtime start``: the payload runs."""
    started = time.monotonic()
    result = runtime.run_blocking(runtime.command.start(container.id))
    if not result.ok:
        text = result.error_text()
        raise ShimError(f"{runtime.name} could not start container {container.id}: {text}",
                        classify_create_failure(text))
    container.running_since = time.monotonic()
    container.start_took = container.running_since - started


def remove_container(runtime: Runtime, container_id: str, pidfd: int | None = None,
                     init_pid: int | None = None):
    """Remove a container outside supervision, the one way: SIGKILL its init (when the
    shim holds its pidfd; the runtime's delete may fail, and an init left waiting on its
    exec fifo would never exit), ``runtime delete --force``, then reap what is left."""
    if pidfd is not None:
        signal_init(pidfd, SIGKILL)
    result = runtime.run_blocking(runtime.command.delete(container_id))
    if init_pid is not None and runtime.reaper.is_expected(init_pid):
        runtime.reaper.wait_blocking(init_pid)
    runtime.reaper.reap()
    return result


def delete_blocking(runtime: Runtime, container: Container, diagnostics) -> None:
    """Remove a container whose supervision never began (start failed, a stop came
    first) or broke down."""
    result = remove_container(runtime, container.id, container.pidfd, container.init_pid)
    text = result.error_text()
    if not result.ok and "not exist" not in text and "no such" not in text.lower():
        diagnostics.warning(f"{runtime.name} could not delete container {container.id}: {text}")


def _create_failure(runtime: Runtime, container_id: str, message: str, raw: str, status: int) -> CreateFailed:
    text = one_line(message) if message.strip() else silent_failure(status)
    if mentions_existing_container(text):
        return CreateFailed(f"container ID {container_id} is already in use ({runtime.name}: {text})",
                            SHIM_FAILED, raw or text)
    return CreateFailed(f"{runtime.name} could not create container {container_id}: {text}",
                        classify_create_failure(text), raw or text)


def _read_available(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks).decode("utf-8", "replace")


def _read_pid_file(path: str, runtime_name: str) -> int:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError as e:
        raise ShimError(f"{runtime_name} wrote no pid file {path}: {e.strerror}") from None
    if not text.isdigit() or int(text) <= 0:
        raise ShimError(f"{runtime_name} wrote a bad pid file {path}: {text!r}")
    return int(text)


def _open_child(pid: int, path: str, runtime_name: str) -> int:
    """A pidfd on the process the pid file names, which must be the shim's child: a pid
    file naming another process (or none) would have the shim signal a stranger and wait
    for its exit forever."""
    stranger = ShimError(f"{runtime_name} wrote pid {pid} to its pid file {path}, "
                         "which is not a process it left to the shim")
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, OverflowError):
        raise stranger from None
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)  # only a child is waitable
    except ChildProcessError:
        os.close(pidfd)
        raise stranger from None
    return pidfd
