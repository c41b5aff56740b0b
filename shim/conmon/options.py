"""conmon's command line (2.1.6, plus the log rotation flags of 2.2), parsed and checked
(pure: no file system access).

Engines pass every option podman or CRI-O knows, so each one is accepted with conmon's
meaning, including its quirks: ``--api-version`` takes no value (``--api-version 1`` sets
the flag and leaves ``1`` as an ignored positional word), values that start with a dash are
taken as they come (``--runtime-arg --log-format=json``), and positional words are ignored.
An unknown or malformed option is one line naming it, and exit code 1, as with conmon.
"""

from __future__ import annotations

from shim.cli.parser import Option, parse
from shim.errors import ShimError, UsageError

MONITOR_FAILED = 1  # conmon's exit code for its own failures (and for bad options)
CONMON_VERSION = "2.1.6"  # the conmon whose contract the front implements
LOG_LEVELS = {  # conmon's names (case-insensitive) -> the shim's own levels
    "error": "error", "fatal": "error", "panic": "error", "warn": "warning", "warning": "warning",
    "info": "info", "debug": "debug", "trace": "debug",
}
DEFAULT_SOCKET_DIR = "/var/run/crio"  # conmon's --socket-dir-path default
DEFAULT_MAX_FILES = 1  # backups kept by --log-size-max without --log-max-files


class MonitorError(ShimError):
    """A failure of the monitor itself: conmon's exit code 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, MONITOR_FAILED)


def _value(long: str, short: str | None = None, *, repeat: bool = False, dest: str | None = None,
           help: str = "") -> Option:
    return Option(long, short, metavar="VALUE", repeat=repeat, dest=dest, help=help)


def _flag(long: str, short: str | None = None, help: str = "") -> Option:
    return Option(long, short, help=help)


CONMON_OPTIONS = [
    _flag("api-version", help="sync-pipe messages use the key data (legacy: pid, exit_code)"),
    _value("bundle", "b", help="OCI bundle (default: the current directory)"),
    _value("cid", "c", help="container ID"),
    _value("conmon-pidfile", "P", help="write the monitor's pid here"),
    _value("container-pidfile", "p", help="the runtime's --pid-file"),
    _value("pidfile", dest="container_pidfile", help="old name of --container-pidfile"),
    _value("cuuid", "u", help="container UUID: names the attach socket's directory"),
    _flag("exec", "e", help="an exec session in a running container"),
    _flag("exec-attach", help="the exec session's client attaches (_OCI_ATTACHPIPE)"),
    _value("exec-process-spec", help="the exec session's OCI process spec"),
    _value("exit-command", help="run after the container exited"),
    _value("exit-command-arg", repeat=True, dest="exit_command_args", help="argument of --exit-command"),
    _value("exit-delay", help="seconds to wait before the exit command"),
    _value("exit-dir", help="write <DIR>/<cid> with the exit status"),
    _flag("leave-stdin-open", help="keep the container's stdin open when an attach client leaves"),
    _value("log-level", help="the monitor's own messages"),
    _value("log-path", "l", repeat=True, dest="log_paths", help="DRIVER:PATH, or a bare path (k8s-file)"),
    _value("log-size-max", help="bytes after which the k8s-file log is rotated"),
    _value("log-global-size-max", help="bytes after which nothing more is logged"),
    _value("log-tag", help="journald's CONTAINER_TAG and SYSLOG_IDENTIFIER"),
    _value("log-label", repeat=True, dest="log_labels", help="KEY=VALUE added to journald entries"),
    _flag("log-rotate", help="rotate at --log-size-max (always done here: never truncated)"),
    _value("log-max-files", help="rotated k8s-file logs kept"),
    _flag("no-container-partial-message", help="no CONTAINER_PARTIAL_MESSAGE on journald entries"),
    _value("name", "n", help="container name"),
    _flag("no-new-keyring", help="passed to the runtime's create"),
    _flag("no-pivot", help="passed to the runtime's create"),
    _flag("no-sync-log", help="do not fsync the logs at exit"),
    _value("persist-dir", "0", help="write <DIR>/exit and <DIR>/oom"),
    _flag("replace-listen-pid", help="set LISTEN_PID to the runtime's pid"),
    _value("restore", help="restore the container from this checkpoint"),
    _value("restore-arg", repeat=True, dest="restore_args", help="old name of --runtime-opt"),
    _value("runtime", "r", help="the OCI runtime's path"),
    _value("runtime-arg", repeat=True, dest="runtime_args", help="global runtime flag"),
    _value("runtime-opt", repeat=True, dest="runtime_opts", help="flag of the runtime's sub-command"),
    _value("sdnotify-socket", help="the host's NOTIFY_SOCKET to relay the container's messages to"),
    _value("socket-dir-path", help="where the attach sockets' short paths live"),
    _flag("stdin", "i", help="a pipe for the container's stdin"),
    _flag("sync", help="fork only once (the caller waits for the whole monitor)"),
    _flag("syslog", help="also send the monitor's messages to the journal or syslog"),
    _flag("systemd-cgroup", "s", help="passed to the runtime"),
    _flag("terminal", "t", help="a pseudo-terminal for the container"),
    _value("timeout", "T", help="kill the container after this many seconds"),
    _flag("version", help="print the version and exit"),
    _flag("full-attach", help="the attach socket at <bundle>/attach, ignoring --socket-dir-path"),
    _value("seccomp-notify-socket", help="not supported"),
    _value("seccomp-notify-plugins", help="not supported"),
    _flag("help", "h", help="show this help and exit"),
]


def version_text(shim_version: str) -> str:
    """``--version``: podman's probe needs ``conmon version X.Y.Z`` on the first line."""
    return f"conmon version {CONMON_VERSION}\ncommit: shim {shim_version}\n"


class ConmonOptions:
    """Everything the engine asked of its monitor, checked."""

    __slots__ = ("api_version", "bundle", "cid", "conmon_pidfile", "container_pidfile", "cuuid", "exec",
                 "exec_attach", "exec_process_spec", "exit_command", "exit_command_args", "exit_delay", "exit_dir",
                 "leave_stdin_open", "log_level", "log_drivers", "log_size_max", "log_global_size_max", "log_tag",
                 "log_labels", "log_max_files", "no_container_partial_message", "name", "no_new_keyring",
                 "no_pivot", "no_sync_log", "persist_dir", "replace_listen_pid", "restore", "runtime",
                 "runtime_args", "runtime_opts", "sdnotify_socket", "socket_dir_path", "stdin", "sync", "syslog",
                 "systemd_cgroup", "terminal", "timeout", "full_attach")

    def __init__(self, **values) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    @property
    def sync_key(self) -> str:
        """The sync-pipe key: ``data``, or the legacy ``pid`` / ``exit_code``."""
        if self.api_version:
            return "data"
        return "exit_code" if self.exec else "pid"

    @property
    def preserved_fds(self) -> int:
        """``--preserve-fds N`` among the runtime options: fds 3..N+2 go to the container."""
        return preserve_fds_of(self.runtime_opts)

    def __repr__(self) -> str:
        return "ConmonOptions(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


def preserve_fds_of(runtime_opts: list[str]) -> int:
    count = 0
    for i, word in enumerate(runtime_opts):
        if word == "--preserve-fds" and i + 1 < len(runtime_opts):
            count = _integer("runtime-opt --preserve-fds", runtime_opts[i + 1])
        elif word.startswith("--preserve-fds="):
            count = _integer("runtime-opt --preserve-fds", word.partition("=")[2])
    if count < 0:
        raise MonitorError(f"--runtime-opt --preserve-fds {count}: must not be negative")
    return count


def parse_conmon_options(argv: list[str]):
    """The raw flag values, or None for ``--help`` / a version string for ``--version``.

    Raises UsageError (turned into conmon's "option parsing failed" line) naming the word.
    """
    values, _positionals = parse(argv, CONMON_OPTIONS)  # conmon ignores positional words
    return values


def check_options(values: dict, cwd: str) -> ConmonOptions:
    """conmon's checks and defaults (pure); MonitorError names what is wrong."""
    from shim.logs.drivers import parse_log_drivers

    cid = values.get("cid")
    if not cid:
        raise MonitorError("Container ID not provided. Use --cid")
    exec_mode = bool(values.get("exec"))
    api = bool(values.get("api_version"))
    if values.get("restore") and exec_mode:
        raise MonitorError("Cannot use 'exec' and 'restore' at the same time")
    if values.get("exec_attach") and not exec_mode:
        raise MonitorError("Attach can only be specified with exec")
    if values.get("exec_attach") and not api:
        raise MonitorError("Attach can only be specified for a non-legacy exec session")
    if not values.get("cuuid") and (not exec_mode or api):
        raise MonitorError("Container UUID not provided. Use --cuuid")
    if not values.get("runtime"):
        raise MonitorError("Runtime path not provided. Use --runtime")
    if exec_mode and not values.get("exec_process_spec"):
        raise MonitorError("Exec process spec path not provided. Use --exec-process-spec")
    if values.get("seccomp_notify_socket") or values.get("seccomp_notify_plugins"):
        raise MonitorError("seccomp notify is not supported (conmon dropped it as well)")
    exit_delay = _integer("exit-delay", values.get("exit_delay", "0"))
    if exit_delay < 0:
        raise MonitorError("Delay before invoking exit command must be greater than or equal to 0")
    bundle = values.get("bundle")
    if bundle is None and not exec_mode:
        bundle = cwd
    level = str(values.get("log_level") or "warning").lower()
    if level not in LOG_LEVELS:
        raise MonitorError(f"No such log level {values.get('log_level')}")
    if values.get("exit_command_args") and not values.get("exit_command"):
        raise MonitorError("--exit-command-arg needs --exit-command")
    log_tag = values.get("log_tag")
    drivers = parse_log_drivers(list(values.get("log_paths") or []), log_tag)
    max_files = _integer("log-max-files", values.get("log_max_files", str(DEFAULT_MAX_FILES)))
    if max_files < 0:
        raise MonitorError(f"--log-max-files {max_files}: must not be negative")
    timeout = _integer("timeout", values.get("timeout", "0"))
    runtime_opts = list(values.get("runtime_opts") or []) + list(values.get("restore_args") or [])
    options = ConmonOptions(
        api_version=api, bundle=_absolute(bundle, cwd), cid=cid,
        conmon_pidfile=_absolute(values.get("conmon_pidfile"), cwd),
        container_pidfile=_absolute(values.get("container_pidfile") or f"pidfile-{cid}", cwd),
        cuuid=values.get("cuuid"), exec=exec_mode, exec_attach=bool(values.get("exec_attach")),
        exec_process_spec=_absolute(values.get("exec_process_spec"), cwd),
        exit_command=values.get("exit_command"), exit_command_args=list(values.get("exit_command_args") or []),
        exit_delay=exit_delay, exit_dir=_absolute(values.get("exit_dir"), cwd),
        leave_stdin_open=bool(values.get("leave_stdin_open")), log_level=LOG_LEVELS[level], log_drivers=drivers,
        log_size_max=_integer("log-size-max", values.get("log_size_max", "-1")),
        log_global_size_max=_integer("log-global-size-max", values.get("log_global_size_max", "-1")),
        log_tag=log_tag, log_labels=list(values.get("log_labels") or []), log_max_files=max_files,
        no_container_partial_message=bool(values.get("no_container_partial_message")),
        name=values.get("name"), no_new_keyring=bool(values.get("no_new_keyring")),
        no_pivot=bool(values.get("no_pivot")), no_sync_log=bool(values.get("no_sync_log")),
        persist_dir=_absolute(values.get("persist_dir"), cwd), replace_listen_pid=bool(values.get("replace_listen_pid")),
        restore=_absolute(values.get("restore"), cwd), runtime=values.get("runtime"),
        runtime_args=list(values.get("runtime_args") or []), runtime_opts=runtime_opts,
        sdnotify_socket=values.get("sdnotify_socket"),
        socket_dir_path=values.get("socket_dir_path") or DEFAULT_SOCKET_DIR,
        stdin=bool(values.get("stdin")), sync=bool(values.get("sync")), syslog=bool(values.get("syslog")),
        systemd_cgroup=bool(values.get("systemd_cgroup")), terminal=bool(values.get("terminal")),
        timeout=timeout, full_attach=bool(values.get("full_attach")),
    )
    options.preserved_fds  # checked now, before anything starts
    for label in options.log_labels:
        if "=" not in label:
            raise MonitorError(f"--log-label {label!r}: must be KEY=VALUE")
    return options


def _integer(flag: str, text) -> int:
    """conmon's integer options: a decimal number, with an optional sign."""
    word = str(text).strip()
    digits = word[1:] if word[:1] in "+-" else word
    if not digits.isascii() or not digits.isdigit():
        raise UsageError(f"Cannot parse integer value {text!r} for --{flag}")
    return int(word)


def _absolute(path, cwd: str) -> str | None:
    if path is None:
        return None
    import os

    return os.path.normpath(os.path.join(cwd, str(path)))
