"""The client side of the fork server: ``shim-conmon`` as the engine runs it hands its
monitor over to the warm server instead of starting an interpreter's worth of imports.

Everything goes or nothing does: the request carries the client's whole context, the
monitor the server forks answers with its pid, and only once that pid is in
``--conmon-pidfile`` does the client say go and leave. Any failure on the way (no server,
a stale one, no answer in time) costs one fallback: the client runs the monitor itself, as
if there were no server, and the monitor the server may have forked never hears go and
ends. A client that finds no server starts one for the next containers.
"""

from __future__ import annotations

import os
import sys

import _socket as socket

from shim.conmon.fork_protocol import MAX_FDS, MAX_MESSAGE, Request, code_identity, parse_reply, reply
from shim.conmon.options import MonitorError
from shim.state.files import write_atomic

ANSWER_TIMEOUT = 5.0  # seconds to wait for the forked monitor's pid before going on alone
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hand_off(path: str, argv: list[str], env: dict[str, str], fds: list[int], pidfile: str | None,
             diagnostics) -> bool:
    """True when a monitor forked by the server took over (its pid is written); False: the
    caller runs the monitor itself."""
    identity = code_identity(PACKAGE_DIR, sys.executable)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(path)
        except OSError as e:
            diagnostics.debug(f"no fork server at {path} ({e.strerror}): starting one, and monitoring alone")
            start_server(path, env)
            return False
        if len(fds) > MAX_FDS:
            return False
        request = Request(identity, argv, env, os.getcwd(), _umask(), _rlimits(), _own_cgroups(), fds)
        sock.settimeout(ANSWER_TIMEOUT)
        try:
            sock.send(request.encode())
            answer = parse_reply(sock.recv(MAX_MESSAGE))
            if answer.get("stale"):
                diagnostics.debug(f"the fork server at {path} runs other code: replacing it, and monitoring alone")
                start_server(path, env)
                return False
            if not answer.get("ready"):
                return False
            sock.sendmsg([b"fds"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _pack_fds(fds))])
            answer = parse_reply(sock.recv(MAX_MESSAGE))
        except (OSError, ValueError) as e:
            diagnostics.debug(f"the fork server at {path} did not answer ({e}): monitoring alone")
            return False
        pid = answer.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return False
        if pidfile is not None:
            try:
                write_atomic(pidfile, str(pid).encode())
            except OSError as e:
                raise MonitorError(f"cannot write the monitor's pid to {pidfile}: {e.strerror}") from None
        try:
            sock.send(reply(go=True))
        except OSError:
            return False  # the monitor is gone already; the pidfile names a dead pid, as with a crash
        return True
    finally:
        sock.close()


def _pack_fds(fds: list[int]) -> bytes:
    # SCM_RIGHTS wants C ints. Not array.array: importing array imports collections.abc
    # and collections, some 3 ms of every client's start.
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def interpreter_flags(flags) -> list[str]:
    """The options the client's interpreter runs with (its script's shell line chose them),
    for the server: the same isolation, no `site`, and the same optimisation (its bytecode,
    and no docstrings in the memory every forked monitor shares)."""
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
        spawn([sys.executable, *interpreter_flags(sys.flags), script, "--fork-server", path], env=keep, stdin=devnull, stdout=devnull,
              stderr=devnull, new_session=True)
    except OSError:
        pass
    finally:
        os.close(devnull)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _rlimits() -> dict[str, list[int]]:
    import resource

    limits = {}
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            try:
                limits[name] = list(resource.getrlimit(getattr(resource, name)))
            except (OSError, ValueError):
                pass
    return limits


def _own_cgroups() -> str:
    try:
        with open("/proc/self/cgroup") as f:
            return f.read()
    except OSError:
        return ""
