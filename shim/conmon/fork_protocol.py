"""The fork server's protocol and its rules (pure).

The client is ``shim-conmon``, a bash script (shim/cli/scripts/shim-conmon): it cannot pass
fds, so the server takes them. The steps:

1. client -> server: one line ``PID STARTTIME\\n`` into the server's FIFO (the client's pid
   and its start time, field 22 of ``/proc/PID/stat``, so a recycled pid is never taken for
   the client). Then the client waits on the server's idle FIFO, which nobody writes, for a
   signal or ``ANSWER_TIMEOUT``.
2. The server checks the process is that client (start time, user, the shim-conmon script),
   reads its argv, environment, cwd, umask and rlimits from /proc, takes its fds with
   ``pidfd_getfd`` (those without ``FD_CLOEXEC``: the engine's; not the client's FIFOs) and
   forks a monitor. Or it refuses (another interpreter's code after an upgrade, ``--sync``,
   options it cannot parse, an fd it cannot take, a client whose namespaces, privileges or
   scheduling differ from the server's): SIGUSR2, and the client runs the monitor itself.
3. The monitor waits until the engine has placed the client (its start byte is readable),
   enters the client's cgroups, writes ``--conmon-pidfile`` and sends SIGUSR1: the client
   exits 0 and the engine reads the pidfile. Only then does the monitor read the start byte.

Who decides: whoever first creates the client's claim file (``O_EXCL``): the monitor before
its SIGUSR1, the server before its SIGUSR2, or the client that waited ``ANSWER_TIMEOUT`` in
vain and then monitors alone. So no signal reaches a client that went on alone, and no two
monitors run for one container. The monitor that loses ends without having touched the
start byte. A claim stays as long as its client lives (a forked monitor may still try it
until then); the server removes the claims of clients that are gone.
"""

from __future__ import annotations

import os

SERVER_NAME = "conmon-fork-server"
DISABLE_VARIABLE = "SHIM_CONMON_FORK_SERVER"  # "0", or the path of a server of its own
HANDOFF_VARIABLE = "SHIM_CONMON_HANDOFF"  # why the client runs the monitor itself (see client_verdict)
ANSWER_TIMEOUT = 5.0  # the client's, in seconds (the script says the same)
O_CLOEXEC_FLAG = 0o2000000  # the flag in /proc/PID/fdinfo/N: O_CLOEXEC's value there


class ServerFiles:
    """The paths a server and its clients share, all beside ``path`` (the requests FIFO) in
    a directory only the user can use."""

    __slots__ = ("requests", "idle", "lock", "pid")

    def __init__(self, path: str) -> None:
        self.requests = path
        self.idle = path + ".idle"
        self.lock = path + ".lock"
        self.pid = path + ".pid"

    def claim(self, client: "ClientRef") -> str:
        return f"{self.requests}.{client.pid}-{client.start}.claim"


class ClientRef:
    """A client as it names itself in a request."""

    __slots__ = ("pid", "start")

    def __init__(self, pid: int, start: int) -> None:
        self.pid = pid
        self.start = start

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClientRef) and (self.pid, self.start) == (other.pid, other.start)

    def __repr__(self) -> str:
        return f"ClientRef({self.pid}, {self.start})"


class Request:
    """What a monitor needs of its client: as the engine started the client, and its
    options as the server checked them (shim.conmon.options.ConmonOptions)."""

    __slots__ = ("options", "env", "cwd", "umask", "rlimits", "fd_targets")

    def __init__(self, options, env: dict[str, str], cwd: str, umask: int, rlimits: dict[str, tuple[int, int]],
                 fd_targets: list[int]) -> None:
        self.options = options
        self.env = env
        self.cwd = cwd
        self.umask = umask
        self.rlimits = rlimits
        self.fd_targets = fd_targets


def split_requests(buffer: bytes) -> tuple[list[ClientRef], bytes]:
    """The complete request lines in ``buffer`` and what remains of it. Lines that are not
    two decimal numbers are dropped (only the user can write the FIFO: a mistake, not an
    attack)."""
    *lines, rest = buffer.split(b"\n")
    clients = []
    for line in lines:
        words = line.split()
        if len(words) == 2 and all(w.isdigit() and len(w) < 20 for w in words) and int(words[0]) > 0:
            clients.append(ClientRef(int(words[0]), int(words[1])))
    return clients, rest[-64:]  # a line never needs more; junk without a newline stays bounded


def stat_field(stat: str, number: int) -> str:
    """Field ``number`` (from 1, as proc(5) counts) of ``/proc/PID/stat``, from 3 on; the
    name in field 2 may hold spaces and parentheses."""
    return stat[stat.rindex(")") + 2:].split()[number - 3]


def start_time(stat: str) -> int:
    """Field 22 of ``/proc/PID/stat``."""
    return int(stat_field(stat, 22))


def status_ids_and_umask(status: str) -> tuple[list[int], int | None]:
    """The uids (real, effective, saved, fs) and the umask from ``/proc/PID/status``."""
    uids: list[int] = []
    umask = None
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "Uid":
            uids = [int(v) for v in value.split()]
        elif key == "Umask":
            umask = int(value.strip(), 8)
    return uids, umask


def split_nul(data: bytes) -> list[str]:
    """``/proc/PID/cmdline`` or ``environ``: NUL-terminated strings."""
    items = data.split(b"\0")
    if items and items[-1] == b"":
        items.pop()
    return [item.decode("utf-8", "surrogateescape") for item in items]


def environment(data: bytes) -> dict[str, str]:
    env = {}
    for item in split_nul(data):
        key, sep, value = item.partition("=")
        if sep and key:
            env.setdefault(key, value)
    return env


def client_argv(cmdline: list[str]) -> tuple[str, list[str]] | None:
    """(script, the engine's arguments) when ``cmdline`` is a shell running a script; None
    for any other process. The server then checks the script is shim-conmon."""
    if len(cmdline) < 2 or os.path.basename(cmdline[0]) not in ("bash", "sh"):
        return None
    return cmdline[1], cmdline[2:]


def fd_flags(fdinfo: str) -> int:
    for line in fdinfo.splitlines():
        key, _, value = line.partition(":")
        if key == "flags":
            return int(value.strip(), 8)
    raise ValueError("no flags in fdinfo")


# What a forked monitor inherits from the server instead of from its client: where it is
# (namespaces), what it may do (ids, capabilities, no_new_privs, seccomp, its LSM label)
# and how it is scheduled. The monitor and the runtime it starts must have the engine's: an
# engine in a mount namespace of its own (a unit's PrivateTmp=, `unshare -m`) mounts the
# container's root there, and one in a hardened unit (CapabilityBoundingSet=,
# NoNewPrivileges=, SystemCallFilter=, CPUAffinity=, Nice=) must not get a runtime with
# more. A client whose context differs from the server's monitors alone.
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
STATUS_FIELDS = ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "Seccomp_filters", "CapInh", "CapPrm", "CapEff",
                 "CapBnd", "CapAmb", "Cpus_allowed_list", "Mems_allowed_list")


def status_context(status: str) -> dict[str, str]:
    """The fields of ``/proc/PID/status`` that a forked monitor inherits."""
    found = {}
    for line in status.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in STATUS_FIELDS:
            found[key] = " ".join(value.split())
    return found


def scheduling_context(stat: str) -> dict[str, str]:
    """The nice value and scheduling policy (fields 19 and 41 of ``/proc/PID/stat``)."""
    return {"nice": stat_field(stat, 19), "policy": stat_field(stat, 41)}


def context_differences(client: dict[str, str], server: dict[str, str]) -> list[str]:
    """What of the client's context a monitor forked by the server would not have (a
    kind missing on one side, as a namespace the kernel lacks, counts as different)."""
    return sorted(name for name in set(client) | set(server) if client.get(name) != server.get(name))


def claim_owner(name: str, requests_name: str) -> ClientRef | None:
    """The client a claim file in the server's directory is named after (see
    ServerFiles.claim), or None for another file."""
    prefix, suffix = requests_name + ".", ".claim"
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    pid, dash, start = name[len(prefix):-len(suffix)].partition("-")
    if not (dash and pid.isdigit() and start.isdigit()):
        return None
    return ClientRef(int(pid), int(start))


def client_verdict(text: str | None) -> str:
    """``SHIM_CONMON_HANDOFF`` as the client sets it for the monitor it starts itself: why
    it did not hand off (``off``, ``absent``, ``refused``, ``timeout``), or ``direct`` when
    no client set it (the monitor's script was run by hand)."""
    return text if text in ("off", "absent", "refused", "timeout") else "direct"


def server_path(euid: int, env: dict[str, str], uid_map: str) -> str | None:
    """The server's requests FIFO, or None when no server is used (the client script finds
    it the same way).

    One server per user, in a directory only that user can use; ``$SHIM_CONMON_FORK_SERVER``
    (set through containers.conf's ``conmon_env_vars``) is ``0`` for none, or the path of a
    server of its own. Root uses /run/shim, other users ``$XDG_RUNTIME_DIR``; so does
    rootless podman's root, root only in the user's namespace (``uid_map``, this process's
    ``/proc/self/uid_map``, does not map every id to itself), whose server is the user's."""
    choice = env.get(DISABLE_VARIABLE, "")
    if choice == "0":
        return None
    if choice.startswith("/"):
        return choice
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if euid == 0 and (uid_map.split()[:3] == ["0", "0", "4294967295"] or not runtime_dir):
        return f"/run/shim/{SERVER_NAME}"
    return os.path.join(runtime_dir, "shim", SERVER_NAME) if runtime_dir else None


def code_identity(package_dir: str, interpreter: str) -> str:
    """What code a process runs: the interpreter and every module of the package, by
    name, size and modification time. A server whose identity differs from the code on
    disk was started before an upgrade. A scandir walk, no more (some 0.5 ms)."""
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
