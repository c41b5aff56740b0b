"""``shim``: the entry point of the console script and of ``python -m shim``.

Start-up is a feature: only the standard library's cheapest modules load before the
container runs. ``shim run`` blocks every signal it will route before anything else, so a
signal that arrives during start-up stays pending instead of killing the shim.
"""

from __future__ import annotations

import os
import sys

from shim import __version__
from shim.errors import SHIM_FAILED, ShimError, UsageError
from shim.process.exit_status import SIGNAL_EXIT_OFFSET

TOP_HELP = f"""\
usage: shim [--version] [--help] COMMAND [options]

shim {__version__}: one supervisor process per OCI container. It runs the runtime
(crun, runc), reaps every child as a subreaper, relays the container's output,
forwards signals, and exits with the container's status.

commands:
  run ID     run a container from an OCI bundle in the foreground (see shim run --help)
  demo       build a small busybox bundle and run it, showing what the shim does
  generate systemd ID
             print systemd units that run a container with the shim
             (see shim generate systemd --help)

Exit codes: the container's own; 125 when the shim fails, 126 when the container's
command cannot be executed, 127 when it is not found.
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        try:
            return dispatch(argv)
        except BaseExceptionGroup as group:  # from trio's nursery: say what went wrong inside
            raise first_leaf(group) from group
    except ShimError as e:
        _say(f"shim: {e.message}")
        return e.exit_code
    except KeyboardInterrupt:
        # SIGINT during the interpreter's own start, before the shim blocked it: nothing
        # was started yet, so this is a stop before create.
        from shim.signals.catalog import SIGINT

        return SIGNAL_EXIT_OFFSET + SIGINT
    except Exception as e:  # a bug: still one line, and the traceback on request
        if os.environ.get("SHIM_DEBUG"):
            import traceback

            traceback.print_exc()
        _say(f"shim: internal error: {type(e).__name__}: {e} (set SHIM_DEBUG=1 for a traceback)")
        return SHIM_FAILED


def first_leaf(group: BaseExceptionGroup) -> BaseException:
    """The first exception that is not a group, for a one-line report."""
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


def main_and_exit() -> None:
    """Run ``main`` and leave at once: the container is gone and every file is written, so
    tearing down the interpreter (some 250 modules once trio is loaded) would only delay
    the exit status a service manager or an engine is waiting for."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, AttributeError):  # gone, or None: the shim started with that fd closed
        pass
    os._exit(code)


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(TOP_HELP)
        return 0 if argv else SHIM_FAILED
    command, rest = argv[0], argv[1:]
    if command == "--version":
        sys.stdout.write(f"shim version {__version__}\n")
        return 0
    if command == "run":
        return run_command(rest)
    if command == "demo":
        from shim.demo.command import demo_command

        return demo_command(rest)
    if command == "generate":
        from shim.units.command import generate_command

        return generate_command(rest)
    raise UsageError(f"unknown command {command!r} (commands: run, demo, generate; see shim --help)")


def run_command(argv: list[str]) -> int:
    from shim.signals.mask import block_routed_signals

    block_routed_signals()
    from shim.cli.run_options import parse_run_options, run_help
    from shim.process.spawn import seal_inherited_fds

    options = parse_run_options(argv, os.getcwd())
    if options is None:
        sys.stdout.write(run_help())
        return 0
    ensure_stdio_open()
    seal_inherited_fds()
    from shim.lifecycle.run import run

    return run(options, dict(os.environ))


def ensure_stdio_open() -> None:
    """Point a closed fd 0, 1 or 2 at /dev/null, so no pipe of ours lands there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _say(line: str) -> None:
    try:
        sys.stdout.flush()
    except (OSError, AttributeError):  # gone, or None: the shim started with fd 1 closed
        pass
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:  # nobody reads stderr any more: the exit code still tells
        pass
