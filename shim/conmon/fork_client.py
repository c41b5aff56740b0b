"""The fork server's client side, in Python: what the monitor does when the shim-conmon
script runs it instead of handing off (shim/cli/scripts/shim-conmon is the client).

The script says why in ``SHIM_CONMON_HANDOFF`` (fork_protocol.client_verdict): no server
answered (start one, for the containers to come), the server refused or did not answer in
time, or servers are off.
"""

from __future__ import annotations

import os
import sys

from shim.conmon.fork_protocol import HANDOFF_VARIABLE, client_verdict, server_path

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def take_verdict(env: dict[str, str]) -> str:
    """The client's verdict, removed from ``env`` and from this process's environment (it
    is the script's word to this monitor, not the container's)."""
    text = env.pop(HANDOFF_VARIABLE, None)
    os.environ.pop(HANDOFF_VARIABLE, None)
    return client_verdict(text)


def after_the_client(verdict: str, env: dict[str, str], diagnostics) -> None:
    """Start a server when the client found none, for the containers to come."""
    if verdict in ("refused", "timeout"):
        diagnostics.debug(f"the fork server {'refused' if verdict == 'refused' else 'did not answer'}: "
                          "monitoring alone")
    if verdict == "absent":
        with open("/proc/self/uid_map") as f:
            path = server_path(os.geteuid(), env, f.read())
        if path is not None:
            diagnostics.debug(f"no fork server at {path}: starting one, and monitoring alone")
            start_server(path, env)


def interpreter_flags(flags) -> list[str]:
    """The options this interpreter runs with (its script's shell line chose them), for the
    server: the same isolation, no `site`, and the same optimisation (its bytecode, and no
    docstrings in the memory every forked monitor shares)."""
    return [*(["-I"] if flags.isolated else []), *(["-S"] if flags.no_site else []),
            *(["-" + "O" * flags.optimize] if flags.optimize else [])]


def start_server(path: str, env: dict[str, str]) -> None:
    """Start a server for the containers to come, detached from the engine (a session of
    its own, stdio on /dev/null); best effort."""
    from shim.process.spawn import open_devnull, spawn

    script = os.path.abspath(sys.argv[0])
    if not os.path.isfile(script):
        return
    keep = {k: v for k, v in env.items() if k in ("PATH", "HOME", "XDG_RUNTIME_DIR", "LANG",
                                                  "SHIM_CONMON_FORK_SERVER_IDLE")}
    devnull = open_devnull()
    try:
        spawn([sys.executable, *interpreter_flags(sys.flags), script, "--fork-server", path], env=keep, stdin=devnull,
              stdout=devnull, stderr=devnull, new_session=True)
    except OSError:
        pass
    finally:
        os.close(devnull)
