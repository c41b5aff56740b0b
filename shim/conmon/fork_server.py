"""The fork server: engine-mode monitors forked from a warm interpreter.

Every module a monitor needs (trio included) is imported once, here; each monitor is a
fork of this process, so it starts at once and shares the server's pages until it writes
them (a few MB of its own instead of an interpreter's fifteen). The server never runs a
trio loop and never starts a thread, so a fork of it is a clean process. It lives in no
service manager: the first client that finds none starts it (through the monitor it runs
itself), it serves its own user's clients only (its FIFO is in a directory only that user
can enter, and it checks each client's uid), and it leaves after ``IDLE_TIMEOUT`` without
a request.

Its client is the shim-conmon bash script, which cannot pass fds: the server takes them
(shim.conmon.fork_protocol has the protocol). Monitors are forked twice (grandchildren,
adopted as conmon's are; the server keeps no children and waits for none) and owe the
server nothing once forked: it can die at any moment without costing a container. A
forked monitor takes on the client's fds at their numbers, its environment, cwd, umask,
rlimits and cgroups (the engine placed the client in the container's monitor cgroup), and
then is the engine front's monitor exactly (shim.conmon.monitor).
"""

from __future__ import annotations

import fcntl
import gc
import os
import select
import sys

import _signal

from shim.conmon.fork_protocol import (NAMESPACES, O_CLOEXEC_FLAG, ClientRef, Request, ServerFiles, claim_owner,
                                       client_argv, code_identity, context_differences, environment, fd_flags,
                                       scheduling_context, split_nul, split_requests, start_time, status_context,
                                       status_ids_and_umask)
from shim.conmon.sync_pipe import START_PIPE, fd_from_env, wait_for_start
from shim.signals.catalog import SIGCHLD, SIGUSR1, SIGUSR2

IDLE_TIMEOUT = 60.0  # seconds without a request before the server leaves (default)
IDLE_VARIABLE = "SHIM_CONMON_FORK_SERVER_IDLE"  # another number of seconds
CLIENT_EXIT_TIMEOUT = 5.0  # a client told to go that does not exit: its claim is removed anyway
CLIENT_SCRIPT = "shim-conmon"  # beside the server's own script
_WARM = ("shim.conmon.monitor", "shim.conmon.host", "shim.conmon.daemon", "shim.lifecycle.supervise",
         "shim.lifecycle.startup", "shim.lifecycle.exit", "shim.stdio.attach", "shim.stdio.control",
         "shim.stdio.console", "shim.stdio.relay", "shim.stdio.early", "shim.stdio.output", "shim.logs.k8s_file",
         "shim.logs.journald", "shim.logs.journal_protocol", "shim.notify.session", "shim.notify.container_socket",
         "shim.notify.upstream", "shim.notify.membership", "shim.notify.protocol", "shim.process.oom",
         "shim.runtime.invoke", "shim.runtime.command", "shim.signals.router", "shim.signals.mask",
         "shim.process.trio_import", "shim.process.pidfd", "shim.process.libc", "shim.cli.parser", "shim.cgroups.membership",
         "shim.logs.drivers", "shim.state.files", "resource", "termios", "tty")


class Refused(Exception):
    """The server cannot fork this client's monitor: the client runs it itself."""


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
    from shim.process.pidfd import fd_getter
    from shim.process.trio_import import import_trio

    watch = _watch_for_upgrades(PACKAGE_DIR)
    for name in _WARM:
        importlib.import_module(name)
    import_trio(idle=False)
    identity = code_identity(PACKAGE_DIR, sys.executable)
    files = ServerFiles(path)
    listener = _listen(files)
    if listener is None:
        return 0  # another server has the path
    requests_fd, lock_fd, inode = listener
    _signal.signal(SIGCHLD, _signal.SIG_IGN)  # its children are reaped by the kernel, never waited for
    gc.freeze()  # what the server imported stays out of every monitor's collections
    idle = idle_timeout(dict(os.environ))
    script = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), CLIENT_SCRIPT)
    getfd = fd_getter()
    context = _own_context()
    pending = b""
    upgraded = False
    try:
        while not upgraded:
            if not select.select([requests_fd], [], [], idle)[0]:
                return 0
            clients, pending = split_requests(pending + _read(requests_fd))
            for client in clients:
                if upgraded or (watch.changed() if watch else code_identity(PACKAGE_DIR, sys.executable) != identity):
                    upgraded = True  # new code on disk: this server is not the one to fork it
                    _refuse(files, client, script)
                else:
                    _serve_one(files, client, script, getfd, context)
            _sweep_claims(files)
    finally:
        _retire(files, requests_fd, lock_fd, inode, script)
        if watch:
            watch.close()
    # Its successor, for the clients to come: a fresh interpreter loads the new code.
    from shim.conmon.fork_client import start_server

    start_server(path, dict(os.environ))
    return 0


def _watch_for_upgrades(package_dir: str):
    """An inotify watch on the package, or None (no inotify instances or watches left):
    then each request walks the package instead (code_identity)."""
    from shim.conmon.upgrade_watch import UpgradeWatch

    try:
        return UpgradeWatch(package_dir)
    except OSError:
        return None


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return b""


def _listen(files: ServerFiles):
    """Make the requests FIFO (0700 directory), unless a live server holds it; serialised by
    a lock beside it, so that two clients starting servers at once end up with one."""
    directory = os.path.dirname(files.requests)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lock_fd = os.open(files.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_fd)
        return None
    from shim.state.files import write_atomic

    # We hold the lock: what is at these paths is a dead server's. Each FIFO is made under
    # another name and renamed, and the pid file, which clients look for first, comes last.
    try:
        for fifo in (files.idle, files.requests):
            staging = fifo + ".new"
            for stale in (staging, fifo):
                try:
                    os.unlink(stale)
                except FileNotFoundError:
                    pass
            os.mkfifo(staging, 0o600)
            os.rename(staging, fifo)
        # read-write: no end of file when the last client closes its end
        requests_fd = os.open(files.requests, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        write_atomic(files.pid, str(os.getpid()).encode(), mode=0o600)
        _sweep_claims(files)
        return requests_fd, lock_fd, os.fstat(requests_fd).st_ino
    except OSError:  # a directory gone, a full disk: clients monitor alone
        os.close(lock_fd)
        return None


def _retire(files: ServerFiles, requests_fd: int, lock_fd: int, inode: int, script: str) -> None:
    """Leave: no client finds this server any more, and the ones that asked meanwhile are
    refused (they would wait ``ANSWER_TIMEOUT`` for nothing)."""
    try:
        with open(files.pid) as f:
            if f.read() == str(os.getpid()):
                os.unlink(files.pid)
    except (OSError, ValueError):
        pass
    try:
        if os.stat(files.requests).st_ino == inode:
            os.unlink(files.requests)
            os.unlink(files.idle)  # (clients that wait on it keep their open end)
    except FileNotFoundError:
        pass
    clients, _ = split_requests(_read(requests_fd))
    for client in clients:
        _refuse(files, client, script)
    _sweep_claims(files)
    os.close(requests_fd)
    os.close(lock_fd)


def _sweep_claims(files: ServerFiles) -> None:
    """Remove the claims of clients that are gone (no monitor can try them any more)."""
    directory, name = os.path.split(files.requests)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for found in names:
        client = claim_owner(found, name)
        if client is None:
            continue
        if _still_running(client):
            continue
        try:
            os.unlink(os.path.join(directory, found))
        except OSError:
            pass


def _still_running(client: ClientRef) -> bool:
    """The process the client named itself as is alive (not a later one with its pid)."""
    try:
        return _stat_if_running(client) is not None
    except (OSError, ValueError):
        return False


def _stat_if_running(client: ClientRef) -> str | None:
    """``/proc/PID/stat`` of the process the client named itself as, or None when a later
    process has its pid."""
    with open(f"/proc/{client.pid}/stat") as f:
        stat = f.read()
    return stat if start_time(stat) == client.start else None


def _serve_one(files: ServerFiles, client: ClientRef, script: str, getfd, context: dict[str, str]) -> None:
    """One client: a monitor forked for it, or a refusal; nothing for what is not a waiting
    client of this user (a recycled pid, a process of another). ``context``: the
    server's, which its monitors inherit (fork_protocol.context_differences)."""
    try:
        pidfd = os.pidfd_open(client.pid)
    except OSError:
        return  # gone
    fds: list[int] = []
    try:
        try:
            found = _client_of_this_server(client, script)
        except (OSError, ValueError):
            return
        if found is None:
            return
        argv, umask, client_context = found
        try:
            differences = context_differences(client_context, context)
            if differences:
                raise Refused(f"the client's context differs from the server's: {', '.join(differences)}")
            request, fds = _take_client(client, pidfd, argv, umask, files, getfd)
        except (Refused, OSError, ValueError):
            _refuse_client(files, client, pidfd)
            return
        _fork_monitor(files, client, request, fds)
    finally:
        os.close(pidfd)
        for fd in fds:
            os.close(fd)


def _client_of_this_server(client: ClientRef, script: str) -> tuple[list[str], int, dict[str, str]] | None:
    """The engine's argv for the monitor, the client's umask and its context, when
    ``client`` is a live shim-conmon of this server's installation and user, started when
    it says."""
    stat = _stat_if_running(client)
    if stat is None:
        return None
    proc = f"/proc/{client.pid}"
    with open(f"{proc}/status") as f:
        status = f.read()
    uids, umask = status_ids_and_umask(status)
    if not uids or any(uid != os.geteuid() for uid in uids[:2]) or umask is None:
        return None
    with open(f"{proc}/cmdline", "rb") as f:
        found = client_argv(split_nul(f.read()))
    if found is None or os.path.realpath(found[0]) != os.path.realpath(script):
        return None
    return found[1], umask, _context(proc, status, stat)


def _take_client(client: ClientRef, pidfd: int, argv: list[str], umask: int, files: ServerFiles,
                 getfd) -> tuple[Request, list[int]]:
    """The client as a monitor takes it on: its context, and its fds (duplicates here)."""
    from shim.conmon.monitor import check_before_start
    from shim.conmon.options import check_options, parse_conmon_options
    from shim.errors import ShimError

    proc = f"/proc/{client.pid}"
    cwd = os.readlink(f"{proc}/cwd")
    try:
        options = check_options(parse_conmon_options(argv), cwd)
    except ShimError as e:  # the client's own monitor reports it, as without a server
        raise Refused(e.message) from None
    if options.sync:
        raise Refused("--sync: the caller waits for the monitor as its child")
    with open(f"{proc}/environ", "rb") as f:
        env = environment(f.read())
    request = Request(options, env, cwd, umask, _rlimits(client.pid), [])
    ours = {_identity(os.stat(path)) for path in (files.requests, files.idle)}
    fds: list[int] = []
    try:
        for target in sorted(int(name) for name in os.listdir(f"{proc}/fd")):
            with open(f"{proc}/fdinfo/{target}") as f:
                if fd_flags(f.read()) & O_CLOEXEC_FLAG:
                    continue  # bash's own (its script)
            if _identity(os.stat(f"{proc}/fd/{target}")) in ours:
                continue  # the client's FIFOs
            fds.append(getfd(pidfd, target))
            request.fd_targets.append(target)
        start = env.get(START_PIPE)
        if start is not None and not (start.isdigit() and int(start) in request.fd_targets):
            raise Refused(f"{START_PIPE}={start!r} is not one of the client's fds")
        taken = dict(zip(request.fd_targets, fds))
        try:
            check_before_start(options, cwd, lambda n: n in taken and os.isatty(taken[n]))
        except ShimError as e:
            raise Refused(e.message) from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _context(proc: str, status: str, stat: str) -> dict[str, str]:
    """What a monitor forked here would inherit from the server, of the process at
    ``proc`` (its /proc directory; ``status`` and ``stat`` are read there)."""
    context = status_context(status)
    context.update(scheduling_context(stat))
    for name in NAMESPACES:
        try:
            context[f"{name} namespace"] = "%d:%d" % _identity(os.stat(f"{proc}/ns/{name}"))
        except FileNotFoundError:  # a kernel without this kind of namespace
            continue
    try:
        with open(f"{proc}/attr/current") as f:
            context["LSM label"] = f.read().rstrip("\0\n")
    except OSError:  # no LSM that labels processes
        pass
    return context


def _own_context() -> dict[str, str]:
    with open("/proc/self/status") as f:
        status = f.read()
    with open("/proc/self/stat") as f:
        stat = f.read()
    return _context("/proc/self", status, stat)


def _rlimits(pid: int) -> dict[str, tuple[int, int]]:
    import resource

    return {name: resource.prlimit(pid, getattr(resource, name))
            for name in dir(resource) if name.startswith("RLIMIT_")}


def _refuse(files: ServerFiles, client: ClientRef, script: str) -> None:
    """Refuse a client of this server that asked while it cannot serve (see _refuse_client)."""
    try:
        pidfd = os.pidfd_open(client.pid)
    except OSError:
        return
    try:
        if _client_of_this_server(client, script) is not None:
            _refuse_client(files, client, pidfd)
    except (OSError, ValueError):
        pass
    finally:
        os.close(pidfd)


def _refuse_client(files: ServerFiles, client: ClientRef, pidfd: int, claimed: bool = False) -> None:
    """SIGUSR2: the client runs its monitor itself. Only with the client's claim made here
    (or already made, ``claimed``): a client that already went on alone gets no signal."""
    import signal

    if not claimed and not _claim(files.claim(client)):
        return
    try:
        signal.pidfd_send_signal(pidfd, SIGUSR2)
    except OSError:
        pass


def _claim(path: str) -> bool:
    """The client's decision is ours (see fork_protocol)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))
        return True
    except FileExistsError:
        return False


def _fork_monitor(files: ServerFiles, client: ClientRef, request: Request, fds: list[int]) -> None:
    """Twice, as conmon forks: the monitor's parent is then whoever adopts orphans (PID 1 or
    the nearest subreaper), and that is who must learn its exit status (systemd watches a
    unit's monitor as its main process: a status reaped here would never reach it). The
    intermediate child is reaped by the kernel (SIGCHLD ignored): the server waits for
    nothing."""
    if os.fork() == 0:
        code = 1
        try:
            if os.fork() == 0:
                code = _become_monitor(files, client, request, fds)
            else:
                code = 0
        finally:
            os._exit(code)


def _become_monitor(files: ServerFiles, client: ClientRef, request: Request, fds: list[int]) -> int:
    """In the grandchild: wait until the engine placed the client, claim the container and tell
    the client, take on the client's context and cgroups, then be its monitor."""
    from shim.signals.mask import block_routed_signals

    # First: with SIGCHLD ignored, as the server has it, the kernel would reap the
    # monitor's children and no status would ever reach it.
    _signal.signal(SIGCHLD, _signal.SIG_DFL)
    block_routed_signals()
    os.setsid()
    _place_fds(fds, request.fd_targets)  # and nothing of the server's stays open
    try:
        pidfd = os.pidfd_open(client.pid)
    except OSError:
        return 1
    env = dict(request.env)
    start_fd = fd_from_env(env, START_PIPE)  # the server checked it is one of the client's fds
    placed = _engine_placed(start_fd, pidfd)
    if placed is None:
        return 1  # the client is gone (it went on alone): nothing was started
    cgroups = _cgroups_of(client.pid)  # read while the client is there; joined once it has left
    claim = files.claim(client)
    if not _claim(claim):
        return 1  # the client went on alone
    try:
        if not placed:  # the engine closed the start pipe unwritten: the client says so, as conmon
            _refuse_client(files, client, pidfd, claimed=True)
            return 1
        if not _tell_the_client(request, pidfd):
            return 1
    finally:
        try:
            os.unlink(claim)
        except OSError:
            pass
        os.close(pidfd)
    # After the client has gone: on cgroup v1 the first move can wait some 10 ms for an
    # RCU grace period, and the engine need not wait for it.
    _join_cgroups(cgroups)
    if not _take_the_start_byte(request, env, start_fd):
        return 1
    os.environ.clear()
    os.environ.update(env)
    os.chdir(request.cwd)
    os.umask(request.umask)
    _set_rlimits(request.rlimits)
    from shim.conmon.monitor import run_forked

    return run_forked(request.options, env, frozenset(request.fd_targets))


def _engine_placed(start_fd: int | None, pidfd: int) -> bool | None:
    """Wait until the engine has put the client where the monitor must be: its start byte
    is readable (not read: a client that goes on alone reads it). False when the engine
    closed the pipe without a byte, None when the client exited first."""
    if start_fd is None:
        return True
    ready = select.select([pidfd, start_fd], [], [])[0]
    if pidfd in ready:
        return None
    return _bytes_waiting(start_fd) > 0


def _bytes_waiting(fd: int) -> int:
    """FIONREAD: what a read would return now (0 at end of file), pipe or socket alike."""
    import termios

    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, bytes(4)), sys.byteorder)


def _tell_the_client(request: Request, pidfd: int) -> bool:
    """Write our pid to ``--conmon-pidfile``, SIGUSR1 the client, and wait until it has
    exited (it reads nothing; the claim it may still look at stays until then)."""
    import signal

    from shim.state.files import write_atomic

    try:
        if request.options.conmon_pidfile:
            write_atomic(request.options.conmon_pidfile, str(os.getpid()).encode())
        signal.pidfd_send_signal(pidfd, SIGUSR1)
    except OSError:
        try:
            signal.pidfd_send_signal(pidfd, SIGUSR2)  # the client's own monitor says what failed
        except OSError:
            pass
        return False
    select.select([pidfd], [], [], CLIENT_EXIT_TIMEOUT)
    return True


def _take_the_start_byte(request: Request, env: dict[str, str], start_fd: int | None) -> bool:
    """Read the engine's start byte, as the client would have before it forked. False when
    the engine closed the pipe unwritten: nothing may be started."""
    from shim.errors import ShimError

    if start_fd is None:
        return True
    try:
        if not wait_for_start(start_fd):
            return False
    except ShimError:
        return False
    if not request.options.exec_attach:
        os.close(start_fd)  # the monitor has no start pipe after the first byte (but to exec-attach)
        del env[START_PIPE]
        request.fd_targets.remove(start_fd)
    return True


def _place_fds(fds: list[int], targets: list[int]) -> None:
    """Put each taken fd at the number it had in the client, and nothing else above 2."""
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


def _set_rlimits(limits: dict[str, tuple[int, int]]) -> None:
    import resource

    for name, (soft, hard) in limits.items():
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        try:
            resource.setrlimit(kind, (soft, hard))
        except (OSError, ValueError):
            pass  # above the server's hard limit without CAP_SYS_RESOURCE: keep the server's


def _cgroups_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f.read()
    except OSError:
        return ""


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
