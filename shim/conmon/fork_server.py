"""The fork server: engine-mode monitors forked from a warm interpreter.

Every module a monitor needs (trio included) is imported once, here; each monitor is a
fork of this process, so it starts at once and shares the server's pages until it writes
them (a few MB of its own instead of an interpreter's fifteen). The server never runs a
trio loop and never starts a thread, so a fork of it is a clean process. It lives in no
service manager: the first client that finds none starts it, it serves the clients of its
own user only (``SO_PEERCRED``), and it leaves after ``IDLE_TIMEOUT`` without a request.

Monitors are forked twice (grandchildren: the server keeps no children) and owe the
server nothing once forked: it can die at any moment without costing a container. A
forked monitor takes on the client's fds at their numbers, its environment, cwd, umask,
rlimits and cgroups (the engine placed the client in the container's monitor cgroup), and
then is the engine front's monitor exactly (shim.conmon.monitor).
"""

from __future__ import annotations

import array
import fcntl
import gc
import os
import select
import sys

import _socket as socket

from shim.conmon.fork_protocol import MAX_FDS, MAX_MESSAGE, Request, code_identity, reply

IDLE_TIMEOUT = 60.0  # seconds without a request before the server leaves (default)
IDLE_VARIABLE = "SHIM_CONMON_FORK_SERVER_IDLE"  # another number of seconds
REQUEST_TIMEOUT = 2.0  # a client that connects and says nothing does not hold the server up
_WARM = ("shim.conmon.monitor", "shim.conmon.host", "shim.conmon.daemon", "shim.lifecycle.supervise",
         "shim.lifecycle.startup", "shim.lifecycle.exit", "shim.stdio.attach", "shim.stdio.control",
         "shim.stdio.console", "shim.stdio.relay", "shim.stdio.early", "shim.stdio.output", "shim.logs.k8s_file",
         "shim.logs.journald", "shim.logs.journal_protocol", "shim.notify.session", "shim.notify.container_socket",
         "shim.notify.upstream", "shim.notify.membership", "shim.notify.protocol", "shim.process.oom",
         "shim.runtime.invoke", "shim.runtime.command", "shim.signals.router", "shim.signals.mask",
         "shim.process.trio_import", "shim.cli.parser", "shim.cgroups.membership", "resource", "termios", "tty")


def idle_timeout(env: dict[str, str]) -> float:
    try:
        seconds = float(env.get(IDLE_VARIABLE, IDLE_TIMEOUT))
    except ValueError:
        return IDLE_TIMEOUT
    return seconds if 0 < seconds < float("inf") else IDLE_TIMEOUT


def serve(path: str) -> int:
    """The server's life; returns its exit status."""
    import importlib

    from shim.conmon.fork_client import PACKAGE_DIR
    from shim.process.trio_import import import_trio

    for name in _WARM:
        importlib.import_module(name)
    import_trio(idle=False)
    identity = code_identity(PACKAGE_DIR, sys.executable)
    listener = _listen(path)
    if listener is None:
        return 0  # another server has the socket
    sock, lock_fd, inode = listener
    gc.freeze()  # what the server imported stays out of every monitor's collections
    idle = idle_timeout(dict(os.environ))
    try:
        while True:
            if not select.select([sock], [], [], idle)[0]:
                return 0
            if not _serve_one(sock, identity):
                return 0
    finally:
        _retire(path, sock, lock_fd, inode)


def _listen(path: str):
    """Bind ``path`` (0700 directory), unless a live server holds it; serialised by a lock
    beside it, so that two clients starting servers at once end up with one."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_fd)
        return None
    # Bound and listening under another name first: a client that finds the socket at
    # ``path`` must be able to connect (between bind and listen it would be refused). We
    # hold the lock, so no other server is binding or listening; what is there is stale.
    staging = path + ".new"
    for stale in (staging, path):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.bind(staging)
        os.chmod(staging, 0o600)
        sock.listen(64)
        os.rename(staging, path)
        return sock, lock_fd, os.stat(path).st_ino
    except OSError:  # a path too long for a socket, a directory gone: clients monitor alone
        sock.close()
        os.close(lock_fd)
        return None


def _retire(path: str, sock, lock_fd: int, inode: int) -> None:
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock.close()
    os.close(lock_fd)


def _serve_one(sock, identity: str) -> bool:
    """One client; False when the server must retire (it runs stale code)."""
    try:
        fd, _ = sock._accept()
    except OSError:
        return True
    conn = socket.socket(fileno=fd)
    fds: list[int] = []
    try:
        credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(credentials[4:8], sys.byteorder) != os.geteuid():
            return True  # another user's client: no answer at all
        conn.settimeout(REQUEST_TIMEOUT)
        request = Request.decode(conn.recv(MAX_MESSAGE))
        if request.identity != identity:
            conn.send(reply(stale=True))
            return False
        conn.send(reply(ready=True))
        _, ancillary, flags, _ = conn.recvmsg(16, socket.CMSG_SPACE(MAX_FDS * 4), socket.MSG_CMSG_CLOEXEC)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                received = array.array("i")
                received.frombytes(payload[: len(payload) - len(payload) % received.itemsize])
                fds.extend(received)
        if flags & socket.MSG_CTRUNC or len(fds) != len(request.fd_targets):
            return True
        _fork_monitor(sock, conn, request, fds)
        return True
    except (OSError, ValueError):
        return True
    finally:
        conn.close()
        for fd in fds:
            os.close(fd)


def _fork_monitor(listener, conn, request: Request, fds: list[int]) -> None:
    child = os.fork()
    if child == 0:
        code = 1
        try:
            if os.fork() == 0:
                code = _become_monitor(listener, conn, request, fds)
            else:
                code = 0
        finally:
            os._exit(code)
    os.waitpid(child, 0)


def _become_monitor(listener, conn, request: Request, fds: list[int]) -> int:
    """In the grandchild: tell the client our pid, wait for go, take on the client's
    context, and be its monitor."""
    from shim.signals.mask import block_routed_signals

    block_routed_signals()
    listener.close()
    os.setsid()
    try:
        conn.settimeout(None)
        conn.send(reply(pid=os.getpid()))
        if b'"go"' not in conn.recv(4096):
            return 1  # the client died, or went on alone: nothing was started
    except OSError:
        return 1
    conn.close()
    _place_fds(fds, request.fd_targets)
    os.environ.clear()
    os.environ.update(request.env)
    os.chdir(request.cwd)
    os.umask(request.umask)
    _set_rlimits(request.rlimits)
    _join_cgroups(request.cgroups)
    from shim.conmon.monitor import run_forked

    return run_forked(request.argv, dict(request.env), frozenset(request.fd_targets))


def _place_fds(fds: list[int], targets: list[int]) -> None:
    """Put each received fd at the number it had in the client, and nothing else above 2."""
    staged = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1000) for fd in fds]
    keep = set(staged)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep and fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass
    for source, target in zip(staged, targets):
        os.dup2(source, target, inheritable=True)
        os.close(source)


def _set_rlimits(limits: dict[str, list[int]]) -> None:
    import resource

    for name, (soft, hard) in limits.items():
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        try:
            resource.setrlimit(kind, (soft, hard))
        except (OSError, ValueError):
            pass  # above the server's hard limit without CAP_SYS_RESOURCE: keep the server's


def _join_cgroups(proc_cgroup: str) -> None:
    """Enter every cgroup the client was in (the engine's monitor cgroup): v1
    hierarchies and the unified one, where this process sees them mounted. Best effort:
    an unprivileged user may not move itself."""
    from shim.cgroups.membership import hierarchies

    try:
        with open("/proc/self/mountinfo") as f:
            found = hierarchies(proc_cgroup, f.read()) or []
    except OSError:
        found = []
    pid = str(os.getpid()).encode()
    for directory in (h.directory(h.own_path) for h in found):
        try:
            fd = os.open(os.path.join(directory, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, pid)
        except OSError:
            pass
        finally:
            os.close(fd)
