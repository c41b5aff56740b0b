"""``shim run``: its flags, their defaults and checks (pure: no file system access).

Flag names are part of the contract (see the README). Checks that need the file system
(the bundle, the runtime, the exit directory) happen when the run starts, still before any
runtime state exists.
"""

from __future__ import annotations

import os

from shim import container_id
from shim.cli.parser import Option, format_help, parse
from shim.errors import UsageError
from shim.lifecycle.startup import CREATE_TIMEOUT
from shim.signals.catalog import parse_signal

SDNOTIFY_MODES = ("auto", "container", "shim", "ignore")
SYSTEMD_MODES = ("true", "false", "always")
LOG_LEVELS = ("error", "warning", "info", "debug")
DEFAULT_STOP_TIMEOUT = 10.0
LOG_DRIVERS = ("passthrough", "k8s-file", "journald", "none")
DEFAULT_LOG_MAX_FILES = 1

RUN_OPTIONS = [
    Option("bundle", "b", metavar="DIR", help="OCI bundle directory (default: the current directory)"),
    Option("runtime", "r", metavar="NAME|PATH", help="OCI runtime (default: crun where it works here, else runc)"),
    Option("runtime-arg", metavar="ARG", repeat=True, dest="runtime_args",
           help="global flag for the runtime, before its sub-command"),
    Option("state-dir", metavar="DIR",
           help="where the shim keeps <ID>/ (default: /run/shim as root, else $XDG_RUNTIME_DIR/shim)"),
    Option("pid-file", metavar="PATH", help="write the container's init pid here (removed at exit)"),
    Option("exit-dir", metavar="DIR", help="write <DIR>/<ID> with the exit status, atomically"),
    Option("exit-command", metavar="PROG", help="run PROG after the container is gone"),
    Option("exit-command-arg", metavar="ARG", repeat=True, dest="exit_command_args",
           help="argument for --exit-command"),
    Option("stop-signal", metavar="SIG",
           help="signal that asks the container to stop (default: the bundle's "
                "org.opencontainers.image.stopSignal, else TERM; RTMIN+3 in systemd mode)"),
    Option("stop-timeout", metavar="SECONDS",
           help=f"grace time after the stop signal before SIGKILL (default: {DEFAULT_STOP_TIMEOUT:g})"),
    Option("create-timeout", metavar="SECONDS",
           help=f"kill `runtime create` if it has not finished by then, and remove the container "
                f"(default: {CREATE_TIMEOUT:g})"),
    Option("sdnotify", metavar="MODE", help="readiness relay: auto, container, shim or ignore (default: auto)"),
    Option("systemd", metavar="MODE", help="systemd mode: true (detect), false or always (default: true)"),
    Option("log-driver", metavar="DRIVER", repeat=True, dest="log_drivers",
           help="where the container's output goes: passthrough (the shim's stdout and stderr, the "
                "default), k8s-file, journald or none; several may be given"),
    Option("log-path", metavar="PATH", help="the k8s-file log (required with --log-driver k8s-file)"),
    Option("log-size-max", metavar="BYTES", help="rotate the k8s-file log at this size (renamed, never truncated)"),
    Option("log-max-files", metavar="N", help=f"rotated k8s-file logs kept (default: {DEFAULT_LOG_MAX_FILES})"),
    Option("log-tag", metavar="TAG", help="journald's CONTAINER_TAG and SYSLOG_IDENTIFIER (default: the ID)"),
    Option("log-level", metavar="LEVEL", help="the shim's own messages: error, warning, info or debug (default: warning)"),
    Option("help", "h", help="show this help and exit"),
]

RUN_USAGE = "shim run [options] ID"
RUN_SUMMARY = (
    "Run the container ID from an OCI bundle in the foreground and exit with its status:\n"
    "the container's exit code, or 128+N when signal N killed it."
)
RUN_EPILOG = """\
exit codes:
  0-255  the container's own exit code; 128+N when signal N killed its init
  125    the shim failed: bad flags, bundle missing or invalid, runtime not found,
         ID invalid or in use, runtime create/start failed (with the runtime's words)
  126    the container's command exists but cannot be executed
  127    the container's command was not found

signals:
  SIGTERM and SIGINT stop the container: its stop signal, then SIGKILL after
  --stop-timeout; a second one kills at once. Every other catchable signal is
  forwarded to the container's init unchanged.

systemd mode:
  With --systemd=true the shim recognises a systemd payload (/sbin/init,
  /usr/sbin/init, /usr/local/sbin/init, or a command named systemd, also after
  /bin/sh -c) and gives it what it needs: tmpfs on /run, /run/lock, /tmp and
  /var/log/journal, a writable cgroup, container= in its environment, and
  SIGRTMIN+3 as the stop signal. Trade-off: systemd then keeps the logs in its
  own journal inside the container, which tools reading stdout do not see.
"""


class RunOptions:
    """Everything ``shim run`` was asked to do."""

    __slots__ = ("container_id", "bundle", "runtime", "runtime_args", "state_dir", "pid_file",
                 "exit_dir", "exit_command", "exit_command_args", "stop_signal", "stop_timeout", "create_timeout",
                 "sdnotify", "systemd", "log_level", "log_drivers", "log_path", "log_size_max",
                 "log_max_files", "log_tag")

    def __init__(self, **values: object) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"RunOptions({fields})"


def run_help() -> str:
    return format_help(RUN_USAGE, RUN_SUMMARY, RUN_OPTIONS, RUN_EPILOG)


def parse_run_options(argv: list[str], cwd: str) -> RunOptions | None:
    """Parse ``shim run`` arguments; None means ``--help`` was asked for."""
    values, positionals = parse(argv, RUN_OPTIONS)
    if values.get("help"):
        return None
    if len(positionals) != 1:
        raise UsageError("shim run needs exactly one container ID" if not positionals
                         else f"shim run takes one container ID, got {len(positionals)}: {' '.join(positionals)}")
    stop_signal = values.get("stop_signal")
    if stop_signal is not None:
        stop_signal = parse_signal(str(stop_signal))
    if values.get("exit_command_args") and not values.get("exit_command"):
        raise UsageError("--exit-command-arg needs --exit-command")
    return RunOptions(
        container_id=container_id.validate(positionals[0]),
        bundle=os.path.join(cwd, str(values.get("bundle") or ".")),
        runtime=values.get("runtime"),
        runtime_args=list(values.get("runtime_args") or []),
        state_dir=_absolute(values.get("state_dir"), cwd),
        pid_file=_absolute(values.get("pid_file"), cwd),
        exit_dir=_absolute(values.get("exit_dir"), cwd),
        exit_command=values.get("exit_command"),
        exit_command_args=list(values.get("exit_command_args") or []),
        stop_signal=stop_signal,
        stop_timeout=_parse_timeout(values.get("stop_timeout")),
        create_timeout=_parse_create_timeout(values.get("create_timeout")),
        sdnotify=_choice("sdnotify", values.get("sdnotify"), SDNOTIFY_MODES, "auto"),
        systemd=_choice("systemd", values.get("systemd"), SYSTEMD_MODES, "true"),
        log_level=_choice("log-level", values.get("log_level"), LOG_LEVELS, "warning"),
        **_log_options(values, cwd),
    )


def _log_options(values: dict, cwd: str) -> dict:
    """--log-driver (repeatable, or comma-separated) and the flags that go with it."""
    drivers: list[str] = []
    for word in values.get("log_drivers") or ["passthrough"]:
        for driver in str(word).split(","):
            if driver not in LOG_DRIVERS:
                raise UsageError(f"--log-driver must be one of {', '.join(LOG_DRIVERS)}, not {driver!r}")
            if driver not in drivers:
                drivers.append(driver)
    if "none" in drivers and len(drivers) > 1:
        raise UsageError("--log-driver none cannot be combined with other drivers")
    log_path = _absolute(values.get("log_path"), cwd)
    if "k8s-file" in drivers and log_path is None:
        raise UsageError("--log-driver k8s-file needs --log-path")
    if log_path is not None and "k8s-file" not in drivers:
        raise UsageError("--log-path is for --log-driver k8s-file")
    size_max = _non_negative("log-size-max", values.get("log_size_max"), 0)
    max_files = _non_negative("log-max-files", values.get("log_max_files"), DEFAULT_LOG_MAX_FILES)
    return {"log_drivers": drivers, "log_path": log_path, "log_size_max": size_max or -1,
            "log_max_files": max_files, "log_tag": values.get("log_tag")}


def _non_negative(flag: str, value: object, default: int) -> int:
    if value is None:
        return default
    text = str(value)
    if not text.isascii() or not text.isdigit():
        raise UsageError(f"--{flag} must be a whole number >= 0, not {value!r}")
    return int(text)


def _absolute(path: object, cwd: str) -> str | None:
    return None if path is None else os.path.normpath(os.path.join(cwd, str(path)))


def _choice(flag: str, value: object, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise UsageError(f"--{flag} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _parse_timeout(value: object) -> float:
    if value is None:
        return DEFAULT_STOP_TIMEOUT
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if not (0 <= seconds < float("inf")):
        raise UsageError(f"--stop-timeout must be a number of seconds >= 0, not {value!r}")
    return seconds


def _parse_create_timeout(value: object) -> float:
    if value is None:
        return CREATE_TIMEOUT
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = 0.0
    if not (0 < seconds < float("inf")):
        raise UsageError(f"--create-timeout must be a number of seconds > 0, not {value!r}")
    return seconds
