"""Start-up: from a checked bundle to a running container, before trio is imported.

``import trio`` costs about 100 ms; the container's start must not wait for it. Everything
here is plain system calls, and the one reaper waits with blocking ``waitpid`` on the pids
it spawned. Signals stay blocked (pending) throughout, so none is lost or kills the shim.
"""

from __future__ import annotations

import os
import time

from shim.errors import SHIM_FAILED, ShimError
from shim.lifecycle.container import Container, signal_init
from shim.runtime.command import classify_create_failure, mentions_existing_container, one_line
from shim.runtime.invoke import Runtime
from shim.signals.catalog import SIGKILL

PID_FILE_NAME = "pidfile"


def create_container(runtime: Runtime, container_id: str, bundle_dir: str, pid_file: str,
                     own_pid_namespace: bool, keep_fds: tuple[int, ...] = ()) -> Container:
    """``runtime create``: the container exists, its init waits for ``start``.

    The container's stdout and stderr are pipes whose read ends the shim keeps; the write
    ends go to the runtime, which hands them to the container.
    """
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    argv = runtime.command.create(container_id, bundle_dir, pid_file, preserve_fds=len(keep_fds))
    log_offset = runtime.log_offset()
    started = time.monotonic()
    created = False
    try:
        try:
            pid = runtime.spawn(argv, stdin=0, stdout=stdout_w, stderr=stderr_w, keep_fds=keep_fds)
        except OSError as e:
            raise ShimError(f"runtime {runtime.command.path}: cannot execute: {e.strerror}") from None
        finally:
            os.close(stdout_w)
            os.close(stderr_w)
        status = runtime.reaper.wait_blocking(pid)
        if status != 0:
            # On failure create's stderr holds only the runtime's words (no payload ran).
            message = runtime.logged_error_since(log_offset) or _read_available(stderr_r)
            raise _create_failure(runtime, container_id, message, status)
        created = True
        init_pid = _read_pid_file(pid_file, runtime.name)
        # The init is our child now (re-parented when create exited) and is not reaped
        # until we say so, so its pid cannot be recycled before pidfd_open.
        pidfd = os.pidfd_open(init_pid)
        runtime.reaper.expect(init_pid)
    except BaseException:
        os.close(stdout_r)
        os.close(stderr_r)
        if created:  # created, but unusable: leave no runtime state behind
            remove_container(runtime, container_id)
        raise
    container = Container(container_id, init_pid, pidfd, stdout_r, stderr_r, own_pid_namespace)
    container.create_took = time.monotonic() - started
    return container


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


def _create_failure(runtime: Runtime, container_id: str, message: str, status: int) -> ShimError:
    text = one_line(message) if message.strip() else \
        f"exited with status {os.waitstatus_to_exitcode(status)} and no message"
    if mentions_existing_container(text):
        return ShimError(f"container ID {container_id} is already in use ({runtime.name}: {text})", SHIM_FAILED)
    return ShimError(f"{runtime.name} could not create container {container_id}: {text}",
                     classify_create_failure(text))


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
