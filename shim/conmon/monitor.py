"""``shim-conmon``: the shim as an engine's container monitor, a drop-in conmon.

What this front decides (the rest is the shared lifecycle):
- the engine starts, stops and deletes the container: the monitor only runs
  ``runtime create`` (with conmon's exact argv) and watches; a stop request to the
  monitor (SIGTERM, SIGINT, SIGQUIT) is forwarded to the container like any other signal;
- output goes to the log drivers the engine chose (``-l``) and to attach clients, or, with
  ``passthrough``, the container writes to the engine's own stdio;
- the container's pid goes to the engine on the sync pipe, its end to the exit files and
  the exit command, and the monitor's own exit status is the container's.

Reads like conmon's ``main`` without its globals: wait for the start pipe, fork, set up
the host side, create, report the pid, supervise, report the exit.
"""

from __future__ import annotations

import os
import sys

from shim import __version__
from shim.conmon.options import MONITOR_FAILED, MonitorError, check_options, parse_conmon_options, version_text
from shim.diagnostics import Diagnostics
from shim.errors import ShimError, UsageError
from shim.signals.catalog import SIGKILL

IDENTIFIER = "shim-conmon"
ENGINE_DRAIN_TIMEOUT = 2.0  # podman waits 5 s for the exit file once the container is gone
LISTEN_PID_WRAPPER = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"]


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fork-server"] and len(argv) == 2:  # started by a client: see fork_server
        from shim.conmon.fork_server import serve

        return serve(argv[1])
    from shim.signals.mask import block_routed_signals

    block_routed_signals()  # from the first line: no signal may kill the monitor
    inherited = _open_fds()  # before the monitor opens anything of its own
    env = dict(os.environ) if env is None else env
    from shim.conmon.fork_client import take_verdict

    verdict = take_verdict(env)
    diagnostics = Diagnostics(name=IDENTIFIER)
    try:
        values = parse_conmon_options(argv)
    except UsageError as e:
        diagnostics.error(f"option parsing failed: {e.message}")
        return MONITOR_FAILED
    if values.get("version"):
        sys.stdout.write(version_text(__version__))
        return 0
    if values.get("help"):
        sys.stdout.write(usage())
        return 0
    return _monitor(values, env, inherited, verdict)


def run_forked(options, env: dict[str, str], inherited: frozenset[int]) -> int:
    """The monitor the fork server forked for a client (shim.conmon.fork_server): the same
    monitor, from the point where it is on its own; the server checked the options."""
    return _run(options, env, inherited, forked=True)


def _monitor(values: dict, env: dict[str, str], inherited: frozenset[int], verdict: str) -> int:
    try:
        options = check_options(values, os.getcwd())
    except ShimError as e:
        Diagnostics(name=IDENTIFIER).error(e.message)
        return MONITOR_FAILED
    return _run(options, env, inherited, forked=False, verdict=verdict)


def _run(options, env: dict[str, str], inherited: frozenset[int], forked: bool, verdict: str | None = None) -> int:
    diagnostics = Diagnostics(options.log_level, name=IDENTIFIER)
    if options.syslog:
        from shim.logs.journal_protocol import SystemLog

        diagnostics.also_to(SystemLog(IDENTIFIER, options.cid))
    try:
        monitor = Monitor(options, env, diagnostics, inherited)
        monitor.client_verdict = verdict
        return monitor.run_forked() if forked else monitor.run()
    except Exception as e:  # a bug: one line where the monitor's messages go
        diagnostics.error(f"internal error: {type(e).__name__}: {e}")
        return MONITOR_FAILED


def check_before_start(options, cwd: str, is_tty) -> None:
    """What conmon checks before it forks (the fork server checks it for its clients, in
    their cwd and of their stdio: ``is_tty(n)`` for the client's fd n)."""
    runtime = os.path.join(cwd, options.runtime)
    if not os.access(runtime, os.X_OK):
        raise MonitorError(f"Runtime path {options.runtime} is not valid: "
                           f"{'not executable' if os.path.exists(runtime) else 'no such file'}")
    if options.log_drivers.passthrough and any(is_tty(fd) for fd in (0, 1, 2)):
        raise MonitorError("cannot use a tty with passthrough logging mode to prevent attacks via TIOCSTI")
    if options.bundle is not None and not os.path.isdir(options.bundle):
        raise MonitorError(f"bundle {options.bundle}: no such directory")


def main_and_exit() -> None:
    """The ``shim-conmon`` script: run, then leave at once (the interpreter's teardown
    would only delay the exit status the engine is waiting for)."""
    code = main()
    try:
        sys.stdout.flush()
    except OSError:
        pass
    os._exit(code)


def usage() -> str:
    from shim.cli.parser import format_help
    from shim.conmon.options import CONMON_OPTIONS

    return format_help(
        "shim-conmon [conmon's options]",
        "The shim as an engine's container monitor: conmon 2.1.6's command line, pipes and files.\n"
        "podman runs it with `podman --conmon PATH` or `conmon_path = [\"PATH\"]` in containers.conf.",
        CONMON_OPTIONS, "exit status: the container's (255 when it timed out); 1 when the monitor failed")


def _open_fds() -> frozenset[int]:
    return frozenset(int(name) for name in os.listdir("/proc/self/fd"))


class Monitor:
    """One container, from the engine's start byte to the monitor's exit."""

    def __init__(self, options, env: dict[str, str], diagnostics, inherited: frozenset[int]) -> None:
        from shim.conmon.sync_pipe import ATTACH_PIPE, START_PIPE, SYNC_PIPE, EnginePipe, fd_from_env

        self.options = options
        self.env = env
        self.inherited = inherited
        self.diagnostics = diagnostics
        self.sync = EnginePipe(fd_from_env(env, SYNC_PIPE), options.sync_key)
        self.start_fd = fd_from_env(env, START_PIPE)
        self.attach_pipe = EnginePipe(fd_from_env(env, ATTACH_PIPE) if options.exec_attach else None, "data")
        self.engine_fds = {fd for fd in (self.sync.fd, self.start_fd, self.attach_pipe.fd) if fd is not None}
        # conmon's "other fds": what the engine passed besides its pipes (podman's port
        # reservations, slirp's sync pipe), held until the container is gone.
        self.held_fds = sorted(fd for fd in inherited if fd > 2 and fd not in self.engine_fds)
        self.pid_reported = False
        self.engine_gone = False
        self.trio_loader = None
        self.client_verdict = None  # why the shim-conmon script did not hand off (fork_client)

    # -- the table of contents -------------------------------------------------------
    def run(self) -> int:
        try:
            self.check_before_start()
            self.wait_for_the_engine()
        except ShimError as e:  # still the engine's child: its stderr is the engine's
            self.diagnostics.error(e.message)
            return MONITOR_FAILED
        if self.client_verdict is not None:
            from shim.conmon.fork_client import after_the_client

            after_the_client(self.client_verdict, self.env, self.diagnostics)
        self.detach()
        return self.run_detached()

    def run_detached(self) -> int:
        """The monitor's life once it is on its own (forked here, or by the fork server)."""
        try:
            return self.monitor()
        except ShimError as e:
            self.report_failure(e.message)
            return MONITOR_FAILED

    def run_forked(self) -> int:
        """In a monitor the fork server forked: the start byte is read and our pid is in the
        pidfile (fork_server); what remains is detaching and monitoring."""
        from shim.conmon.daemon import become_monitor
        from shim.process.spawn import seal_inherited_fds

        if self.start_fd is not None and not self.options.exec_attach:
            os.close(self.start_fd)
            self.engine_fds.discard(self.start_fd)
            self.start_fd = None
        seal_inherited_fds(keep=frozenset(self.preserved_fds))
        try:
            become_monitor(keep_stdio=self.options.log_drivers.passthrough)
        except ShimError as e:
            self.report_failure(e.message)
            return MONITOR_FAILED
        return self.run_detached()

    def check_before_start(self) -> None:
        check_before_start(self.options, os.getcwd(), os.isatty)

    def wait_for_the_engine(self) -> None:
        """Nothing may run before the engine placed the monitor in its cgroup."""
        from shim.conmon.sync_pipe import wait_for_start

        if self.start_fd is None:
            return
        if not wait_for_start(self.start_fd):
            raise MonitorError("the engine closed the start pipe without a start byte: nothing was created")
        if not self.options.exec_attach:
            os.close(self.start_fd)
            self.engine_fds.discard(self.start_fd)
            self.start_fd = None

    def detach(self) -> None:
        from shim.conmon.daemon import become_monitor, daemonize, write_own_pid
        from shim.process.spawn import seal_inherited_fds

        if self.options.sync:
            write_own_pid(self.options.conmon_pidfile)
        else:
            daemonize(self.options.conmon_pidfile)
        # The runtime gets fds 0-2 and the preserved ones, nothing else the engine leaked.
        seal_inherited_fds(keep=frozenset(self.preserved_fds))
        become_monitor(keep_stdio=self.options.log_drivers.passthrough)

    @property
    def preserved_fds(self) -> tuple[int, ...]:
        return tuple(range(3, 3 + self.options.preserved_fds))

    def monitor(self) -> int:
        from shim.conmon.host import HostSide
        from shim.process.trio_import import TrioLoader

        # trio loads while the runtime creates the container (see TrioLoader), at normal
        # priority: the monitor answers the engine while it loads.
        self.trio_loader = TrioLoader(idle=False)

        lock = lock_bundle(self.options.bundle, self.options.cid) if self.options.bundle else -1
        try:
            host = HostSide.prepare(self.options, self.diagnostics)
            try:
                self.attach_handshake()
                return self.run_container(host)
            finally:
                host.close()
        finally:
            if lock >= 0:
                os.close(lock)

    def attach_handshake(self) -> None:
        """An attached exec session: tell the engine its attach socket is ready, then wait
        until the engine says it is connected before the runtime runs the command (or its
        first output would go to nobody)."""
        from shim.conmon.sync_pipe import wait_for_start

        if not self.options.exec_attach:
            return
        self.attach_pipe.send(0)
        if self.start_fd is not None:
            started = wait_for_start(self.start_fd, "start")
            os.close(self.start_fd)
            self.engine_fds.discard(self.start_fd)
            self.start_fd = None
            if not started:
                raise MonitorError("the engine closed the start pipe before the exec session started")

    def run_container(self, host) -> int:
        from shim.lifecycle.startup import CreateFailed
        from shim.process import oom

        runtime = self.make_runtime()
        engine_score = oom.read_own_score()
        try:
            container = self.create(runtime, host)
        except CreateFailed as e:
            self.diagnostics.warning(f"runtime stderr: {e.runtime_text}")
            # The engine shows the runtime's own words (podman prefers its oci-log file).
            self.report_failure(e.runtime_text.strip() or e.message)
            return MONITOR_FAILED
        oom.set_own_score(oom.MONITOR_SCORE)  # after the spawn: the runtime kept the engine's
        try:
            if self.options.log_drivers.passthrough:
                from shim.conmon.daemon import detach_stdio

                detach_stdio()  # the runtime has the engine's stdio now
            watch = oom.OomWatch.of_process(container.init_pid)
            if host.notify is not None:
                host.notify.container_started(container.init_pid)
            try:
                outcome = self.supervise(runtime, container, host)
            except Exception as e:  # a bug: the engine must still hear how the container ended
                outcome = self.end_after_failure(runtime, container, e)
        finally:
            os.close(container.pidfd)
        if self.engine_gone:
            if not self.options.exec:
                from shim.lifecycle.startup import remove_container

                remove_container(runtime, self.options.cid)
            return MONITOR_FAILED
        return self.report_exit(runtime, outcome, watch, host, engine_score)

    # -- the steps ---------------------------------------------------------------------
    def make_runtime(self):
        from shim.process.reaper import Reaper
        from shim.runtime.command import RuntimeCommand
        from shim.runtime.invoke import Runtime

        global_args = (["--systemd-cgroup"] if self.options.systemd_cgroup else []) + self.options.runtime_args
        # No --log of our own: the engine passes the runtime's log flags it wants.
        return Runtime(RuntimeCommand(self.options.runtime, global_args, None), Reaper(), self.env,
                       hide_host_notify=False)

    def create(self, runtime, host):
        from shim.lifecycle import startup

        options = self.options
        console = host.console.path if host.console is not None else None
        flags = (["--no-pivot"] if options.no_pivot else []) + (["--no-new-keyring"] if options.no_new_keyring else [])
        if options.exec:
            argv = runtime.command.exec(options.cid, options.container_pidfile, options.exec_process_spec,
                                        tty=options.terminal, options=options.runtime_opts, console_socket=console)
        elif options.restore:
            argv = runtime.command.restore(options.cid, options.bundle, options.container_pidfile, options.restore,
                                           flags=flags, options=options.runtime_opts, console_socket=console)
        else:
            argv = runtime.command.create(options.cid, options.bundle, options.container_pidfile, flags=flags,
                                          options=options.runtime_opts, console_socket=console)
        argv = self.with_listen_pid(argv)
        if options.log_drivers.passthrough:
            stdio = startup.StdioPlan(startup.INHERIT, startup.INHERIT, startup.INHERIT)
        elif options.terminal:
            # The pty carries input and output; the stderr pipe keeps the runtime's own
            # words from before the pty existed.
            stdio = startup.StdioPlan(startup.NULL, startup.NULL, startup.PIPE)
        else:
            stdio = startup.StdioPlan(startup.PIPE if options.stdin else startup.NULL, startup.PIPE, startup.PIPE)
        # The container shares the engine's pid namespace or not: the bundle says, but the
        # engine ends leftovers itself, so the monitor never needs to know.
        container = startup.create_container(runtime, options.cid, argv, options.container_pidfile, stdio,
                                             own_pid_namespace=True, keep_fds=self.preserved_fds,
                                             owns_container=not options.exec)
        if host.console is not None:
            try:
                host.take_terminal(container)
            except BaseException:
                os.close(container.pidfd)
                if not options.exec:
                    startup.remove_container(runtime, options.cid)
                raise
        return container

    def with_listen_pid(self, argv: list[str]) -> list[str]:
        """conmon's LISTEN_PID rule: the runtime gets its own pid in LISTEN_PID when the
        variable named the monitor's parent, or always with --replace-listen-pid (its pid
        is only known in the child, hence the shell that execs the runtime)."""
        text = self.env.get("LISTEN_PID")
        if text is None:
            return argv
        if not text.isascii() or not text.isdigit() or int(text) <= 0:
            raise MonitorError(f"Invalid LISTEN_PID {text[:10]}")
        if self.options.replace_listen_pid or int(text) == os.getppid():
            return LISTEN_PID_WRAPPER + argv
        return argv

    def supervise(self, runtime, container, host):
        from shim.lifecycle.supervise import Ending, supervise

        ending = Ending(kill_leftovers=False, delete=False, drain_timeout=ENGINE_DRAIN_TIMEOUT, reap_all=False)

        output, services = host.output_path(container)

        def make_supervisor(handoff):
            from shim.lifecycle.supervise import Supervisor

            return Supervisor(runtime, container, self.diagnostics, handoff, output, ending, notify=host.notify,
                              services=services, timeout=self.options.timeout or None)

        # The engine stops containers itself: SIGTERM, SIGINT and SIGQUIT to the monitor
        # are forwarded like every other signal.
        def report_pid():
            self.sync.send(container.init_pid)
            self.pid_reported = True
            if self.sync.gone:  # nobody will ever start, stop or delete this container
                self.diagnostics.warning(f"the engine is gone before it heard of container {self.options.cid}: "
                                         "removing it")
                self.engine_gone = True
                container.signal(SIGKILL)

        return supervise(runtime, container, self.diagnostics, output, make_supervisor, stop_requests=frozenset(),
                         loader=self.trio_loader, announce=report_pid)

    def end_after_failure(self, runtime, container, error: BaseException):
        """Supervision broke down (a bug): kill the container and report its end, rather
        than leave the engine waiting for an exit file that never comes."""
        from shim.lifecycle.supervise import Outcome
        from shim.signals.catalog import SIGKILL

        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        message = f"internal error while supervising container {self.options.cid}: {type(error).__name__}: {error}"
        if not self.pid_reported:
            self.sync.send(-1, message)
            self.pid_reported = True
        self.diagnostics.error(message + "; killing it")
        container.signal(SIGKILL)
        return Outcome(runtime.reaper.wait_blocking(container.init_pid), False, 0.0, 0.0)

    def report_exit(self, runtime, outcome, watch, host, engine_score) -> int:
        """conmon's order: OOM, the engine's held fds, the exit files, the exit command."""
        from shim.lifecycle.exit import run_exit_command, write_or_warn
        from shim.process import oom
        from shim.process.exit_status import exit_code

        options = self.options
        status = -1 if outcome.timed_out else exit_code(outcome.status)
        if watch.killed():
            self.diagnostics.info(f"container {options.cid} had a process killed for lack of memory")
            for directory in (options.bundle, options.persist_dir):
                if directory is not None:
                    write_or_warn(os.path.join(directory, "oom"), "", self.diagnostics)
        self.close_held_fds()  # podman's port reservations are free before it hears of the exit
        host.close_attach()  # clients see EOF before the exit file, as with conmon
        text = str(status)
        if options.persist_dir is not None:
            write_or_warn(os.path.join(options.persist_dir, "exit"), text, self.diagnostics)
        if options.exit_dir is not None:
            write_or_warn(os.path.join(options.exit_dir, options.cid), text, self.diagnostics)
        if options.exec:  # podman 4.3 reads the exit file; the message is for older engines
            self.sync.send(status, "command timed out" if outcome.timed_out else None)
        what = f"exec session {options.cuuid} of container" if options.exec else "container"
        self.diagnostics.info(f"{what} {options.cid} exited {text}")
        if options.exit_command is None:
            return status & 0xFF
        if engine_score is not None:
            oom.set_own_score(engine_score)  # the exit command must not inherit -1000
        if options.exit_delay:
            import time

            time.sleep(options.exit_delay)
        command_status = run_exit_command([options.exit_command, *options.exit_command_args], self.env,
                                          runtime.reaper, self.diagnostics)
        if command_status:  # conmon exits with the exit command's failure
            return exit_code(command_status) & 0xFF
        return status & 0xFF

    def close_held_fds(self) -> None:
        for fd in self.held_fds:
            if fd not in self.engine_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.held_fds = []

    def report_failure(self, message: str) -> None:
        """Before the pid went out: the engine reads ``-1`` and the message."""
        self.diagnostics.error(message)
        if not self.pid_reported:
            self.sync.send(-1, message)


def lock_bundle(bundle: str, container_id: str) -> int:
    """One monitor per bundle: a second one (a race, a confused engine) must not replace the
    first one's attach socket and fifos. An advisory lock on the directory itself, held for
    the monitor's life (released by the kernel whichever way the monitor ends)."""
    import fcntl

    fd = os.open(bundle, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MonitorError(f"container {container_id} already has a monitor (it holds {bundle})") from None
    return fd
