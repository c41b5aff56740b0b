"""``shim run``: one container from flags to exit status.

Reads like tini's main(): each step is a function with one job and its own error.
"""

from __future__ import annotations

import os

from shim.bundle.config import load_bundle
from shim.diagnostics import Diagnostics
from shim.errors import ShimError
from shim.lifecycle import startup
from shim.lifecycle.plan import NOTIFY_DIRECTORY, make_plan, render_bytes
from shim.process.exit_status import SIGNAL_EXIT_OFFSET, describe, exit_code
from shim.process.reaper import Reaper
from shim.process.spawn import close_all
from shim.process.subreaper import set_subreaper
from shim.runtime.command import RuntimeCommand
from shim.runtime.invoke import Runtime, runtime_environment
from shim.runtime.locate import find_executable, locate_runtime
from shim.signals.catalog import SIGWINCH, signal_name
from shim.signals.mask import take_pending_stop_request
from shim.state.files import remove_quietly, write_atomic
from shim.state.statedir import StateDir, default_state_root

# shim run is the container's only keeper: it starts it, deletes it, and ends what it left.
RUN_STDIO = startup.StdioPlan(stdin=startup.INHERIT, stdout=startup.PIPE, stderr=startup.PIPE)
# A systemd payload that reports to the shim boots without trio's import beside it: the
# import begins at READY=1, or when something needs trio, or after this many seconds of boot.
SYSTEMD_BOOT_WAIT = 10.0


def run(options, env: dict[str, str]) -> int:
    """Run the container; return the shim's exit code. Raises ShimError on failure."""
    diagnostics = Diagnostics(options.log_level, timestamps=True)
    exit_command = check_output_paths(options, env)
    plan = plan_run(options, env)
    runtime_path = locate_runtime(options.runtime, env)
    reaper = Reaper()
    stop = take_pending_stop_request()
    if stop is not None:
        diagnostics.info(f"{signal_name(stop)} before the container was created: nothing to do")
        report_exit(options, exit_command, SIGNAL_EXIT_OFFSET + stop, reaper, env, diagnostics)
        return SIGNAL_EXIT_OFFSET + stop
    set_subreaper(True)
    state = StateDir.claim(options.state_dir or default_state_root(os.geteuid(), env), options.container_id)
    try:
        runtime = Runtime(RuntimeCommand(runtime_path, options.runtime_args, state.file("runtime.log")),
                          reaper, env)
        if state.reclaimed:
            delete_leftover(runtime, options.container_id, diagnostics)
        host_side = HostSide.prepare(plan, state, options.container_id, diagnostics)
        try:
            exit_status = run_container(runtime, state, plan, host_side.notify, options, diagnostics)
        finally:
            host_side.close()
    finally:
        state.release()
    report_exit(options, exit_command, exit_status, reaper, env, diagnostics)
    diagnostics.debug(f"leaving with exit status {exit_status}")
    return exit_status


def plan_run(options, env: dict[str, str]):
    """Everything checked and decided before any runtime state exists."""
    bundle = load_bundle(options.bundle)
    plan = make_plan(bundle, options, env, os.getpid())
    if plan.activation is not None:
        from shim.activation.listen_fds import check_open

        check_open(plan.activation)
        plan.has_shell = os.path.lexists(os.path.join(plan.config["root"]["path"], "bin", "sh"))
    if plan.terminal:
        from shim.stdio.console import stdin_is_a_terminal

        if not stdin_is_a_terminal():
            raise ShimError(f"{options.bundle}/config.json: process.terminal is true, but the shim's stdin is not "
                            "a terminal (run it from one, or set process.terminal to false)")
    if plan.systemd:
        from shim.systemd.cgroups import host_cgroup_layout

        plan.cgroup_layout = host_cgroup_layout()
    return plan


class HostSide:
    """What the shim sets up on the host for one container before create, and removes at
    the end: the effective config.json, the notify session, a name=systemd cgroup."""

    def __init__(self, notify, made_cgroups: list[str]) -> None:
        self.notify = notify
        self._made_cgroups = made_cgroups

    @classmethod
    def prepare(cls, plan, state: StateDir, container_id: str, diagnostics) -> "HostSide":
        host_side = cls(open_notify(plan, state, diagnostics), [])
        try:
            config, systemd_cgroup = plan.render(state.path, container_id)
            if systemd_cgroup is not None:
                from shim.systemd.cgroups import prepare_systemd_cgroup

                prepare_systemd_cgroup(systemd_cgroup, host_side._made_cgroups)
            write_atomic(state.file("config.json"), render_bytes(config), 0o600)
        except BaseException:
            host_side.close()
            raise
        return host_side

    def close(self) -> None:
        if self.notify is not None:
            self.notify.close()
        if self._made_cgroups:
            from shim.systemd.cgroups import remove_cgroups

            remove_cgroups(self._made_cgroups)


def check_output_paths(options, env: dict[str, str]) -> str | None:
    """Flags naming places to write or run must be usable before anything starts; returns
    the exit command's absolute path."""
    if options.exit_dir is not None:
        if not os.path.isdir(options.exit_dir):
            raise ShimError(f"--exit-dir {options.exit_dir}: no such directory")
        if not os.access(options.exit_dir, os.W_OK | os.X_OK):
            raise ShimError(f"--exit-dir {options.exit_dir}: not writable")
    if options.pid_file is not None:
        directory = os.path.dirname(options.pid_file)
        if not os.path.isdir(directory):
            raise ShimError(f"--pid-file {options.pid_file}: its directory does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ShimError(f"--pid-file {options.pid_file}: its directory is not writable")
    if options.log_path is not None:  # the log is created now, so that it can be written later
        try:
            os.close(os.open(options.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                             0o600))
        except OSError as e:
            raise ShimError(f"--log-path {options.log_path}: cannot open: {e.strerror}") from None
    if options.exit_command is not None:
        found = find_executable(options.exit_command, env.get("PATH", ""))
        if found is None:
            raise ShimError(f"--exit-command {options.exit_command}: not found or not executable")
        return found
    return None


def delete_leftover(runtime: Runtime, container_id: str, diagnostics) -> None:
    """The last shim of this ID died without cleaning up (SIGKILL, a watchdog's SIGABRT):
    its container is ours to remove, so that this run (often a restart) can create it."""
    if startup.remove_container(runtime, container_id).ok:
        diagnostics.warning(f"removed container {container_id}, left behind by a shim that died")


def open_notify(plan, state: StateDir, diagnostics):
    """The sd_notify session, if this run reports to a service manager at all."""
    if plan.notify_mode is None:
        return None
    from shim.notify.container_socket import container_root_ids
    from shim.notify.session import CONTAINER, NotifySession

    notify = NotifySession(plan.notify_mode, plan.host_notify_socket, diagnostics)
    if plan.notify_mode == CONTAINER:
        directory = state.file(NOTIFY_DIRECTORY)
        try:
            notify.open_container_socket(directory, container_root_ids(plan.config))
        except OSError as e:
            notify.close()
            raise ShimError(f"notify socket in {directory}: {e.strerror}") from None
    return notify


def run_container(runtime: Runtime, state: StateDir, plan, notify, options, diagnostics) -> int:
    """Create, start, supervise; the container is deleted whatever happens."""
    pid_file = state.file(startup.PID_FILE_NAME)
    terminal = None
    stdio = RUN_STDIO
    if plan.terminal:
        from shim.stdio.console import OwnTerminal

        terminal = OwnTerminal()
        stdio = startup.StdioPlan(startup.NULL, startup.NULL, startup.PIPE)  # the pty, and the runtime's words
    try:
        argv = runtime.command.create(options.container_id, state.path, pid_file, preserve_fds=len(plan.passed_fds),
                                      console_socket=terminal.console.path if terminal else None)
        diagnostics.debug(f"runtime create of container {options.container_id} begins")
        container = startup.create_container(runtime, options.container_id, argv, pid_file, stdio,
                                             plan.own_pid_namespace, keep_fds=plan.passed_fds,
                                             timeout=options.create_timeout)
        diagnostics.debug(f"runtime create done; the container's init is pid {container.init_pid}")
        try:
            if terminal is not None:
                terminal.take(container)
        except BaseException:
            startup.delete_blocking(runtime, container, diagnostics)
            os.close(container.pidfd)
            raise
        return start_and_supervise(runtime, container, plan, notify, terminal, options, diagnostics)
    finally:
        if terminal is not None:
            terminal.close()


def start_and_supervise(runtime: Runtime, container, plan, notify, terminal, options, diagnostics) -> int:
    supervised = False
    try:
        stop = take_pending_stop_request()
        if stop is not None:
            diagnostics.info(f"{signal_name(stop)} before start: deleting container {container.id} unstarted")
            return SIGNAL_EXIT_OFFSET + stop
        diagnostics.debug("runtime start begins")
        startup.start_container(runtime, container)
        diagnostics.debug("runtime start done")
        close_all(plan.passed_fds)  # the container has them now
        if options.pid_file:  # once the payload runs, so the file means "running"
            from shim.lifecycle.exit import write_or_warn

            write_or_warn(options.pid_file, str(container.init_pid), diagnostics)
        if notify is not None:
            notify.container_started(container.init_pid)
        diagnostics.info(
            f"runtime {runtime.name} ({runtime.command.path}) created container {container.id} in "
            f"{container.create_took * 1000:.0f} ms and started it in {container.start_took * 1000:.0f} ms; "
            f"its init is pid {container.init_pid}")
        if terminal is not None:
            terminal.enter_raw_mode()
        supervised = True
        status = supervise(runtime, container, plan, notify, terminal, options, diagnostics)
        return exit_code(status)
    finally:
        if not supervised:
            startup.delete_blocking(runtime, container, diagnostics)
        os.close(container.pidfd)
        if options.pid_file:
            remove_quietly(options.pid_file)


def supervise(runtime: Runtime, container, plan, notify, terminal, options, diagnostics) -> int:
    """Hand over to the shared supervision. If it fails, the container is killed and
    deleted all the same."""
    from shim.lifecycle.supervise import RUN_DRAIN_TIMEOUT, Ending, supervise as supervise_container
    from shim.stdio.sink import NONBLOCKING, SOCKET, Writer

    stderr = Writer.open(2)
    diagnostics.use_writer(stderr if stderr.kind in (NONBLOCKING, SOCKET) else None)

    def make_supervisor(handoff):
        from shim.lifecycle.supervise import Supervisor
        from shim.signals.stop_sequence import StopSequence

        stop = StopSequence(plan.stop_signal, options.stop_timeout, signals_ready=not plan.waits_for_signals_level)
        ending = Ending(kill_leftovers=True, delete=True, drain_timeout=RUN_DRAIN_TIMEOUT, reap_all=True)
        if terminal is None:
            return Supervisor(runtime, container, diagnostics, handoff, output, ending, stop=stop, notify=notify)
        return Supervisor(runtime, container, diagnostics, handoff, output, ending, stop=stop, notify=notify,
                          services=[terminal.forward_input], signal_handlers={SIGWINCH: terminal.window_changed})

    # With a terminal, SIGWINCH means "our window changed": the pty's new size signals the
    # container's foreground process group itself.
    kept = frozenset({SIGWINCH}) if terminal is not None else frozenset()
    # A systemd payload that talks to the shim boots first, and trio comes after (see
    # shim.process.trio_import.TrioLoader); with a terminal, keystrokes need trio at once.
    await_ready = SYSTEMD_BOOT_WAIT if plan.waits_for_signals_level and terminal is None else None
    try:
        output = open_output(options, container.id, stderr, diagnostics)  # the container runs: delete it if this fails
        outcome = supervise_container(runtime, container, diagnostics, output, make_supervisor, kept_signals=kept,
                                      notify=notify, await_ready=await_ready)
    except BaseException:
        startup.delete_blocking(runtime, container, diagnostics)
        raise
    finally:
        diagnostics.use_writer(None)
        stderr.close()
    diagnostics.info(
        f"container {container.id} {describe(outcome.status)} after {outcome.ran_for:.2f} s; output drained, "
        f"container deleted and {runtime.reaper.orphans_reaped} orphans reaped in {outcome.cleanup_took * 1000:.0f} ms")
    return outcome.status


def open_output(options, container_id: str, stderr, diagnostics):
    """The destinations --log-driver chose (see shim.logs)."""
    from shim.stdio.output import Output

    destinations = []
    try:
        for driver in options.log_drivers:
            if driver == "passthrough":
                from shim.stdio.sink import OwnStdio

                destinations.append(OwnStdio(stderr, diagnostics))
            elif driver == "k8s-file":
                from shim.logs.k8s_file import K8sFileLog

                destinations.append(K8sFileLog(options.log_path, diagnostics, max_size=options.log_size_max,
                                               max_files=options.log_max_files))
            elif driver == "journald":
                from shim.logs.journald import JournaldLog

                destinations.append(JournaldLog(container_id, None, options.log_tag, [], diagnostics))
    except OSError as e:
        for destination in destinations:
            destination.close()
        raise ShimError(f"--log-path {options.log_path}: cannot open: {e.strerror}") from None
    return Output(destinations)


def report_exit(options, exit_command: str | None, exit_status: int, reaper: Reaper, env: dict[str, str],
                diagnostics) -> None:
    """The exit file, then the exit command: the container is gone."""
    if options.exit_dir is None and exit_command is None:
        return  # without importing what would do it: this is on the way to the exit status
    from shim.lifecycle.exit import run_exit_command, write_or_warn

    if options.exit_dir is not None:
        write_or_warn(os.path.join(options.exit_dir, options.container_id), str(exit_status), diagnostics)
    if exit_command is not None:
        run_exit_command([exit_command, *options.exit_command_args], runtime_environment(env), reaper, diagnostics)
