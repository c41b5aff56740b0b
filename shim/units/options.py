"""``shim generate systemd``: its flags, its help, and the unit it describes (pure).

The flags that reach ``shim run`` are checked by ``shim run``'s own parser, so a unit can
never carry a command line that ``shim run`` would refuse when the unit starts.
"""

from __future__ import annotations

import os
import shlex

from shim import __version__, container_id
from shim.cli.parser import Option, format_help, parse
from shim.cli.run_options import parse_run_options
from shim.errors import UsageError
from shim.process.exit_status import SIGNAL_EXIT_OFFSET
from shim.signals.catalog import signal_name
from shim.units.listen import listen_stream
from shim.units.quoting import check_one_line
from shim.units.render import STOP_MARGIN_SECONDS, ServiceSpec, stop_timeout_sec

NAME_PREFIX = "shim-"
UNIT_NAME_MAX = 255  # systemd's limit, suffix included
_UNIT_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.-\\")
LONGEST_SUFFIX = ".service"

GENERATE_OPTIONS = [
    Option("bundle", "b", metavar="DIR", help="the OCI bundle (default: the current directory)"),
    Option("name", "n", metavar="NAME", help=f"the units' name (default: {NAME_PREFIX}ID): NAME.service, NAME.socket"),
    Option("socket", metavar="ADDR", repeat=True, dest="sockets",
           help="also a NAME.socket listening on ADDR: PORT, IPv4:PORT, [IPv6]:PORT, /path or @name"),
    Option("files", metavar="DIR", help="write the units into DIR (and print their paths) instead of printing them"),
    Option("runtime", "r", metavar="NAME|PATH",
           help="OCI runtime, pinned by absolute path (default: the one shim run would pick here)"),
    Option("runtime-arg", metavar="ARG", repeat=True, dest="runtime_args", help="passed on to shim run"),
    Option("state-dir", metavar="DIR", help="passed on to shim run"),
    Option("stop-signal", metavar="SIG", help="passed on to shim run"),
    Option("stop-timeout", metavar="SECONDS", help="passed on to shim run; sets TimeoutStopSec="),
    Option("sdnotify", metavar="MODE", help="passed on to shim run; ignore makes the unit Type=exec"),
    Option("systemd", metavar="MODE", help="passed on to shim run"),
    Option("log-level", metavar="LEVEL", help="passed on to shim run"),
    Option("help", "h", help="show this help and exit"),
]

GENERATE_USAGE = "shim generate systemd [options] ID"
GENERATE_SUMMARY = """\
Print a systemd service unit that runs the container ID under `shim run` (and, with
--socket, a socket unit that starts it on the first connection). Install it in
/etc/systemd/system (or ~/.config/systemd/user), then systemctl daemon-reload and
systemctl start NAME."""

UNIT_LINES = f"""\
what the service unit says, line by line:
  Type=notify         the unit is active once the container is ready: READY=1 from the
                      container (its systemd, or its own sd_notify), or, with
                      --sdnotify=shim, as soon as it started. --sdnotify=ignore makes it
                      Type=exec: active once the shim runs.
  NotifyAccess=main   the shim relays the container's messages from its own pid, the
                      unit's main pid; nothing else may speak for the unit.
  ExecStart=          the interpreter (-I -S -OO) and the shim by absolute path (no
                      PATH lookup, no pyenv shim), `shim run` with the bundle, the
                      runtime (pinned by absolute path) and the flags given here.
  KillMode=mixed      systemctl stop sends SIGTERM to the shim alone, which stops the
                      container its own way (the stop signal, SIGKILL after the stop
                      timeout, then delete); systemd SIGKILLs whatever is left in the
                      unit only after TimeoutStopSec, or once the shim is gone.
  Delegate=yes        the cgroup tree below the unit is the shim's: the container's
                      cgroup goes there (<unit>/container-ID; the shim itself moves to
                      <unit>/shim on cgroup v2), so systemd accounts for the container
                      and systemctl stop or kill reaches every process of it.
  TimeoutStopSec=     the longest a stop by the shim can take: the stop timeout (twice
                      for a systemd payload, which may first wait to accept signals)
                      plus {STOP_MARGIN_SECONDS:g} s for delete and drain.
  SuccessExitStatus=  128+N for the stop signal N: a container that died of the signal
                      it was asked to stop with stopped cleanly.
  Restart=on-failure  a container that fails (non-zero exit, killed by a signal) is
                      started again; the new shim removes what a dead one left behind.
  SyslogIdentifier=   the unit's name on the shim's and the container's log lines.
  RequiresMountsFor=  the bundle's file system is mounted before the unit starts.
With --socket: Requires= and After= the socket unit, whose ListenStream= lines hand the
listening sockets to the shim, and on to the container at the same fd numbers
(LISTEN_FDS); `systemctl enable NAME.service` enables the socket (Also=).
"""


def generate_help() -> str:
    return format_help(GENERATE_USAGE, GENERATE_SUMMARY, GENERATE_OPTIONS, UNIT_LINES)


class GenerateRequest:
    """What the command line asked for, checked; ``run_options`` is what ``shim run`` gets."""

    __slots__ = ("container_id", "name", "listen", "files", "run_options", "argv")

    def __init__(self, container_id: str, name: str, listen: list[str], files: str | None, run_options,
                 argv: list[str]) -> None:
        self.container_id = container_id
        self.name = name
        self.listen = listen
        self.files = files
        self.run_options = run_options
        self.argv = argv


def parse_generate(argv: list[str], cwd: str) -> GenerateRequest | None:
    """Parse ``shim generate systemd`` arguments; None means ``--help`` was asked for."""
    for word in argv:
        check_one_line(word, "argument")
    values, positionals = parse(argv, GENERATE_OPTIONS)
    if values.get("help"):
        return None
    if len(positionals) != 1:
        raise UsageError("shim generate systemd needs exactly one container ID" if not positionals else
                         f"shim generate systemd takes one container ID, got {len(positionals)}: {' '.join(positionals)}")
    cid = container_id.validate(positionals[0])
    run_options = parse_run_options(_run_argv(values, cid), cwd)
    run_options.bundle = os.path.normpath(run_options.bundle)
    name = unit_name(str(values["name"])) if values.get("name") is not None else NAME_PREFIX + cid
    listen = [listen_stream(str(a)) for a in values.get("sockets") or []]
    files = values.get("files")
    return GenerateRequest(cid, name, listen, None if files is None else str(files), run_options, list(argv))


def _run_argv(values: dict, cid: str) -> list[str]:
    """The flags as ``shim run`` would get them, for its parser to check."""
    argv = []
    for flag in ("bundle", "runtime", "state-dir", "stop-signal", "stop-timeout", "sdnotify", "systemd", "log-level"):
        value = values.get(flag.replace("-", "_"))
        if value is not None:
            argv += [f"--{flag}", str(value)]
    for arg in values.get("runtime_args") or []:
        argv += ["--runtime-arg", str(arg)]
    return argv + [cid]


def unit_name(requested: str) -> str:
    """``--name``: a unit name without its suffix (``web`` or ``web.service``)."""
    name = requested[:-len(".service")] if requested.endswith(".service") else requested
    if not name or len(name) + len(LONGEST_SUFFIX) > UNIT_NAME_MAX or not all(c in _UNIT_NAME_CHARS for c in name):
        raise UsageError(f"--name {requested!r}: a unit name is 1 to {UNIT_NAME_MAX - len(LONGEST_SUFFIX)} "
                         "characters of [A-Za-z0-9:_.\\-] (no @: templates are not generated)")
    return name


def run_argv(options, runtime_path: str) -> list[str]:
    """``shim run``'s arguments in the unit, in a fixed order: the bundle, the runtime and
    the stop timeout always; the other flags when they say something else than the default."""
    argv = ["run", "-b", options.bundle, "-r", runtime_path]
    for arg in options.runtime_args:
        argv.append(f"--runtime-arg={arg}")
    if options.state_dir is not None:
        argv += ["--state-dir", options.state_dir]
    if options.stop_signal is not None:
        argv += ["--stop-signal", signal_name(options.stop_signal)]
    argv += ["--stop-timeout", seconds(options.stop_timeout)]  # always: TimeoutStopSec= follows from it
    for flag, value, default in (("sdnotify", options.sdnotify, "auto"), ("systemd", options.systemd, "true"),
                                 ("log-level", options.log_level, "warning")):
        if value != default:
            argv += [f"--{flag}", value]
    return argv + [options.container_id]


def seconds(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def service_spec(request: GenerateRequest, *, interpreter: list[str], runtime_path: str, systemd_payload: bool,
                 stop_signal: int) -> ServiceSpec:
    """The unit for ``request``, given what ``command`` found on this machine: the
    interpreter and shim script, the runtime, and (from the bundle) whether the payload is
    systemd and which signal stops it."""
    options = request.run_options
    return ServiceSpec(
        name=request.name,
        container_id=request.container_id,
        bundle=options.bundle,
        exec_start=[*interpreter, *run_argv(options, runtime_path)],
        notify=options.sdnotify != "ignore",
        stop_timeout_sec=stop_timeout_sec(options.stop_timeout, systemd_payload),
        success_exit_status=SIGNAL_EXIT_OFFSET + stop_signal,
        listen=request.listen,
        generated_by=f"shim {__version__}: shim generate systemd {shlex.join(request.argv)}",
    )
