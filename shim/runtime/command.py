"""Runtime command lines and failure messages (pure).

The shim always asks the runtime for a JSON log (``--log FILE --log-format json``, which
runc and crun both accept as global flags, and which podman passes to conmon too): create's
stderr is the container's stderr, so the runtime's own error text would otherwise be mixed
into the container's output.
"""

from __future__ import annotations

from shim.bundle.json_lite import loads
from shim.errors import COMMAND_NOT_EXECUTABLE, COMMAND_NOT_FOUND, SHIM_FAILED


class RuntimeCommand:
    """Builds the argv of each runtime operation for one runtime binary."""

    def __init__(self, path: str, global_args: list[str], log_path: str | None) -> None:
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.global_args = list(global_args)
        self.log_path = log_path

    def _prefix(self) -> list[str]:
        argv = [self.path, *self.global_args]
        if self.log_path and not _mentions_flag(self.global_args, "--log"):
            argv += ["--log", self.log_path]
            if not _mentions_flag(self.global_args, "--log-format"):
                argv += ["--log-format", "json"]
        return argv

    def create(self, container_id: str, bundle: str, pid_file: str, preserve_fds: int = 0,
               flags: list[str] = (), options: list[str] = (), console_socket: str | None = None) -> list[str]:
        """``create``. ``flags`` (``--no-pivot``, ``--no-new-keyring``) come right after the
        pid file and ``options`` (an engine's ``--runtime-opt``s) after them, in conmon's order."""
        argv = self._prefix() + ["create", "--bundle", bundle, "--pid-file", pid_file]
        if preserve_fds:
            argv += ["--preserve-fds", str(preserve_fds)]
        return argv + list(flags) + list(options) + _console(console_socket) + [container_id]

    def restore(self, container_id: str, bundle: str, pid_file: str, image_path: str,
                flags: list[str] = (), options: list[str] = (), console_socket: str | None = None) -> list[str]:
        """``restore --detach`` from a CRIU image: the container runs as soon as it returns."""
        argv = self._prefix() + ["restore", "--bundle", bundle, "--pid-file", pid_file, *flags,
                                 "--detach", "--image-path", image_path, "--work-path", bundle]
        return argv + list(options) + _console(console_socket) + [container_id]

    def exec(self, container_id: str, pid_file: str, process_spec: str, tty: bool = False,
             options: list[str] = (), console_socket: str | None = None) -> list[str]:
        """``exec --detach`` of a process spec in a running container."""
        argv = self._prefix() + ["exec", "--pid-file", pid_file, "--process", process_spec, "--detach"]
        if tty:
            argv.append("--tty")
        return argv + list(options) + _console(console_socket) + [container_id]

    def start(self, container_id: str) -> list[str]:
        return self._prefix() + ["start", container_id]

    def kill(self, container_id: str, signum: int, all_processes: bool = False) -> list[str]:
        return self._prefix() + ["kill"] + (["--all"] if all_processes else []) + [container_id, str(signum)]

    def delete(self, container_id: str) -> list[str]:
        return self._prefix() + ["delete", "--force", container_id]


def _console(path: str | None) -> list[str]:
    return ["--console-socket", path] if path else []


def _mentions_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def last_logged_error(log_text: str) -> str | None:
    """The message of the last error-level entry of a runtime's JSON log, if any."""
    message = None
    for line in log_text.splitlines():
        try:
            entry = loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal") and isinstance(entry.get("msg"), str):
            message = entry["msg"]
    return message


def silent_failure(wait_status: int) -> str:
    """What a runtime that failed without a word did, in words (pure)."""
    from shim.process.exit_status import exit_code, killed_by
    from shim.signals.catalog import signal_name

    signum = killed_by(wait_status)
    if signum is not None:  # a crash (SIGSEGV) or a kill: nobody will hear from it
        return f"killed by {signal_name(signum)}, without a message"
    return f"exited with status {exit_code(wait_status)} and no message"


def one_line(text: str) -> str:
    """Collapse a multi-line runtime message into one line for ``shim: ...``."""
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def classify_create_failure(message: str) -> int:
    """Map a runtime's create/start error to the shim's exit code.

    126 when the container's command exists but cannot be executed, 127 when it does not
    exist, 125 for anything else (the same split podman makes). Only messages about
    executing the container's command count: runc says ``exec: "X": ...``, crun talks about
    the ``executable``; a missing bind-mount source is a plain failure, not 127.
    """
    text = message.lower()
    about_exec = 'exec: "' in text or "executable" in text
    if not about_exec:
        return SHIM_FAILED
    if "not found" in text or "no such file or directory" in text:
        return COMMAND_NOT_FOUND
    return COMMAND_NOT_EXECUTABLE


def mentions_existing_container(message: str) -> bool:
    """True when the runtime refused because the ID is taken (runc and crun wording)."""
    text = message.lower()
    return "already exists" in text or "container with id exists" in text
