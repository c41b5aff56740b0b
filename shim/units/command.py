"""``shim generate systemd``: the I/O around the pure generator.

It reads the bundle (to know whether the payload is systemd and which signal stops it,
as ``shim run`` will decide), finds the interpreter, the shim script and the runtime by
absolute path, then prints the units or writes them atomically into ``--files DIR``.
"""

from __future__ import annotations

import os
import sys

from shim.errors import SHIM_FAILED, ShimError, UsageError

SCRIPT_NAME = "shim"
SCRIPT_OPTIONS = ("-I", "-S", "-OO")  # as its shell line runs it: isolated, no site, no docstrings


def generate_command(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write("usage: shim generate systemd [options] ID (see shim generate systemd --help)\n")
        return 0 if argv else SHIM_FAILED
    if argv[0] != "systemd":
        raise UsageError(f"shim generate: unknown target {argv[0]!r} (targets: systemd)")
    from shim.units.options import generate_help, parse_generate

    request = parse_generate(argv[1:], os.getcwd())
    if request is None:
        sys.stdout.write(generate_help())
        return 0
    files = render_files(request, dict(os.environ))
    if request.files is None:
        sys.stdout.write("\n".join(text for _, text in files))
        return 0
    write_files(request.files, files)
    return 0


def render_files(request, env: dict[str, str]) -> list[tuple[str, str]]:
    """[(file name, text)] for the request, the service first."""
    from shim.bundle.config import load_bundle
    from shim.lifecycle.plan import choose_stop_signal
    from shim.runtime.locate import locate_runtime
    from shim.systemd.detect import systemd_mode
    from shim.units.options import service_spec
    from shim.units.render import render_service, render_socket

    options = request.run_options
    bundle = load_bundle(options.bundle)
    systemd = systemd_mode(options.systemd, bundle.args)
    spec = service_spec(request, interpreter=interpreter(), runtime_path=locate_runtime(options.runtime, env),
                        systemd_payload=systemd,
                        stop_signal=choose_stop_signal(options.stop_signal, bundle.annotations, systemd))
    files = [(spec.service_name, render_service(spec))]
    if spec.listen:
        files.append((spec.socket_name, render_socket(spec)))
    return files


def interpreter() -> list[str]:
    """This interpreter and the shim script installed with it, by absolute path.

    The interpreter is not resolved further: a virtualenv's ``bin/python`` is a symlink
    whose target would lose the virtualenv.
    """
    python = sys.executable
    if not python or not os.path.isabs(python) or not os.access(python, os.X_OK):
        raise ShimError(f"cannot tell which interpreter runs the shim (sys.executable is {python!r})")
    import sysconfig

    candidates = [os.path.join(sysconfig.get_path("scripts"), SCRIPT_NAME),
                  os.path.join(os.path.dirname(python), SCRIPT_NAME)]
    for script in candidates:
        if os.path.isfile(script):
            # the options of the script's own shell line (see shim/cli/scripts/shim),
            # without its shell: one exec fewer on every start of the unit
            return [python, *SCRIPT_OPTIONS, os.path.abspath(script)]
    raise ShimError(f"the shim script is not installed next to {python} (looked for {' and '.join(candidates)}); "
                    "install the shim with pip into this interpreter's environment")


def write_files(directory: str, files: list[tuple[str, str]]) -> None:
    """Each file atomically; if one cannot be written, the ones written before it are
    removed again: a service without the socket it requires must not be left to load."""
    from shim.state.files import remove_quietly, write_atomic

    if not os.path.isdir(directory):
        raise ShimError(f"--files {directory}: no such directory")
    written = []
    for name, text in files:
        path = os.path.join(os.path.abspath(directory), name)
        try:
            write_atomic(path, text.encode())
        except OSError as e:
            for done in written:
                remove_quietly(done)
            raise ShimError(f"--files {directory}: cannot write {name}: {e.strerror}") from None
        written.append(path)
    sys.stdout.write("".join(path + "\n" for path in written))
