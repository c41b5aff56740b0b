"""The fork server's protocol and its rules (pure).

A client (``shim-conmon`` as the engine starts it) and the server talk over a unix
SEQPACKET socket, one JSON message each way per step:

1. client -> server: the request: its argv, environment, cwd, umask, rlimits and cgroups,
   the code identity it was built from, and the numbers its fds will have;
2. server -> client: ``{"ready": true}``, or ``{"stale": true}`` when the server runs other
   code (an upgrade happened): the client goes on alone and the server retires;
3. client -> server: the fds themselves (``SCM_RIGHTS``): its stdio, the engine's pipes,
   preserved and held fds. Only a server that answered gets them: fds queued at a hung
   server would keep the engine's pipes open (a caller waiting for EOF would wait forever);
4. monitor -> client: ``{"pid": N}``, from the monitor the server forked (it holds the
   client's connection from then on; the server has let go of it);
5. client -> monitor: ``{"go": true}`` once N is in ``--conmon-pidfile``. A monitor that
   never hears it (the client died, or gave up and runs the monitor itself) ends
   without having started anything.
"""

from __future__ import annotations

import os

from shim.bundle.json_lite import dumps, loads

PROTOCOL = 1
SOCKET_NAME = "conmon-fork-server.sock"
MAX_MESSAGE = 1 << 20  # an environment and argv fit many times over
MAX_FDS = 250  # one SCM_RIGHTS message carries at most 253 on Linux
DISABLE_VARIABLE = "SHIM_CONMON_FORK_SERVER"  # "0", or a socket path (see socket_path)


class Request:
    __slots__ = ("identity", "argv", "env", "cwd", "umask", "rlimits", "cgroups", "fd_targets")

    def __init__(self, identity: str, argv: list[str], env: dict[str, str], cwd: str, umask: int,
                 rlimits: dict[str, list[int]], cgroups: str, fd_targets: list[int]) -> None:
        self.identity = identity
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.umask = umask
        self.rlimits = rlimits
        self.cgroups = cgroups
        self.fd_targets = fd_targets

    def encode(self) -> bytes:
        return dumps({"protocol": PROTOCOL, **{name: getattr(self, name) for name in self.__slots__}}).encode()

    @classmethod
    def decode(cls, data: bytes) -> "Request":
        """ValueError for anything that is not a request of this protocol."""
        message = loads(data.decode("utf-8"))
        if not isinstance(message, dict) or message.get("protocol") != PROTOCOL:
            raise ValueError("not a request of this protocol")
        fields = {name: message.get(name) for name in cls.__slots__}
        checks = {"identity": str, "argv": list, "env": dict, "cwd": str, "umask": int, "rlimits": dict,
                  "cgroups": str, "fd_targets": list}
        for name, kind in checks.items():
            if not isinstance(fields[name], kind):
                raise ValueError(f"{name} is not a {kind.__name__}")
        if not all(isinstance(a, str) for a in fields["argv"]) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in fields["env"].items()):
            raise ValueError("argv and env must be strings")
        targets = fields["fd_targets"]
        if len(targets) > MAX_FDS or len(set(targets)) != len(targets) or not all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 65536 for t in targets):
            raise ValueError("fd targets are not distinct fd numbers")
        return cls(**fields)


def reply(**fields) -> bytes:
    return dumps(fields).encode()


def parse_reply(data: bytes) -> dict:
    message = loads(data.decode("utf-8")) if data else {}
    if not isinstance(message, dict):
        raise ValueError("not a reply")
    return message


def socket_path(euid: int, env: dict[str, str], sync: bool = False) -> str | None:
    """Where the server listens, or None when no server is used.

    One server per user, in a directory only that user can use; ``$SHIM_CONMON_FORK_SERVER``
    (set through containers.conf's ``conmon_env_vars``) is ``0`` for none, or the path of a
    socket of its own. ``--sync`` callers wait for the monitor itself, as their child: no
    server for them."""
    choice = env.get(DISABLE_VARIABLE, "")
    if choice == "0" or sync:
        return None
    if choice.startswith("/"):
        return choice
    if euid == 0:
        return f"/run/shim/{SOCKET_NAME}"
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime_dir, "shim", SOCKET_NAME) if runtime_dir else None


def code_identity(package_dir: str, interpreter: str) -> str:
    """What code a process runs: the interpreter and every module of the package, by
    name, size and modification time. A server whose identity differs from its client's
    was started before an upgrade. On every client's path: a scandir walk, no more."""
    from _sha256 import sha256

    digest = sha256(interpreter.encode())
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(os.path.join(package_dir, relative)) as entries:
            found = sorted((entry.name, entry) for entry in entries)
        for name, entry in found:
            if entry.is_dir(follow_symlinks=False):
                if name != "__pycache__":
                    pending.append(f"{relative}{name}/")
            elif name.endswith(".py"):
                info = entry.stat()
                digest.update(f"{relative}{name}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()