"""Running runtime commands: spawned through the one reaper, stderr captured.

Each command can run before trio starts (``run_blocking``, on the start-up path) or inside
it (``run``). The runtime never sees the host's ``NOTIFY_SOCKET`` (runc and crun would act
on it themselves) nor the ``LISTEN_*`` variables meant for the container.
"""

from __future__ import annotations

import os

from shim.process.reaper import Reaper
from shim.process.spawn import open_devnull, spawn
from shim.runtime.command import RuntimeCommand, last_logged_error, one_line, silent_failure

HIDDEN_FROM_RUNTIME = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID")
STDERR_KEEP = 16384  # the tail of a runtime's stderr kept for error messages


def runtime_environment(env: dict[str, str]) -> dict[str, str]:
    """The shim's environment minus what is not the runtime's business (pure)."""
    return {k: v for k, v in env.items() if k not in HIDDEN_FROM_RUNTIME}


class RuntimeResult:
    __slots__ = ("status", "stderr", "logged_error")

    def __init__(self, status: int, stderr: str, logged_error: str | None) -> None:
        self.status = status
        self.stderr = stderr
        self.logged_error = logged_error

    @property
    def ok(self) -> bool:
        return self.status == 0

    def error_text(self) -> str:
        """The runtime's own words for a failure, as one line."""
        text = self.logged_error or self.stderr
        if text.strip():
            return one_line(text)
        return silent_failure(self.status)


class Runtime:
    """One runtime binary, driven through the shim's reaper."""

    def __init__(self, command: RuntimeCommand, reaper: Reaper, env: dict[str, str], hide_host_notify: bool = True) -> None:
        """``hide_host_notify``: keep the host's NOTIFY_SOCKET and LISTEN_* from the runtime
        (``shim run``, which handles them itself). An engine's monitor passes its environment
        through unchanged, as conmon does: the engine already chose what is in it."""
        self.command = command
        self.reaper = reaper
        self.env = runtime_environment(env) if hide_host_notify else dict(env)

    @property
    def name(self) -> str:
        return self.command.name

    def spawn(self, argv: list[str], *, stdin: int, stdout: int, stderr: int,
              keep_fds: tuple[int, ...] = ()) -> int:
        pid = spawn(argv, env=self.env, stdin=stdin, stdout=stdout, stderr=stderr, keep_fds=keep_fds)
        self.reaper.expect(pid)
        return pid

    def log_offset(self) -> int:
        try:
            return os.stat(self.command.log_path).st_size if self.command.log_path else 0
        except FileNotFoundError:
            return 0

    def logged_error_since(self, offset: int) -> str | None:
        if not self.command.log_path:
            return None
        try:
            with open(self.command.log_path, "rb") as f:
                f.seek(offset)
                return last_logged_error(f.read().decode("utf-8", "replace"))
        except FileNotFoundError:
            return None

    def _start(self, argv: list[str]) -> tuple[int, int, int]:
        offset = self.log_offset()
        read_fd, write_fd = os.pipe()
        devnull = open_devnull()
        try:
            pid = self.spawn(argv, stdin=devnull, stdout=devnull, stderr=write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
            os.close(devnull)
        return pid, read_fd, offset

    def run_blocking(self, argv: list[str]) -> RuntimeResult:
        """Run one runtime command to completion without trio."""
        pid, read_fd, offset = self._start(argv)
        chunks = []
        try:
            while chunk := os.read(read_fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(read_fd)
        status = self.reaper.wait_blocking(pid)
        return RuntimeResult(status, _tail(chunks), self.logged_error_since(offset))

    async def run(self, argv: list[str]) -> RuntimeResult:
        """Run one runtime command to completion inside trio."""
        import trio

        pid, read_fd, offset = self._start(argv)
        chunks = []
        async with trio.lowlevel.FdStream(read_fd) as stream:
            while chunk := await stream.receive_some(65536):
                chunks.append(chunk)
        status = await self.reaper.wait(pid)
        return RuntimeResult(status, _tail(chunks), self.logged_error_since(offset))


def _tail(chunks: list[bytes]) -> str:
    return b"".join(chunks)[-STDERR_KEEP:].decode("utf-8", "replace")
