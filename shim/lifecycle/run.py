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
from shim.runtime.invoke import Runtime
from shim.runtime.locate import find_executable, locate_runtime
from shim.signals.catalog import signal_name
from shim.signals.mask import take_pending_stop_request
from shim.state.files import remove_quietly, write_atomic
from shim.state.statedir import StateDir, default_state_root


def run(options, env: dict[str, str]) -> int:
    """Run the container; return the shim's exit code. Raises ShimError on failure."""
    diagnostics = Diagnostics(options.log_level)
    plan = plan_run(options, env)
    runtime_path = locate_runtime(options.runtime, env)
    reaper = Reaper()
    stop = take_pending_stop_request()
    if stop is not None:
        diagnostics.info(f"{signal_name(stop)} before the container was created: nothing to do")
        report_exit(options, SIGNAL_EXIT_OFFSET + stop, reaper, env, diagnostics)
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
    report_exit(options, exit_status, reaper, env, diagnostics)
    return exit_status


def plan_run(options, env: dict[str, str]):
    """Everything checked and decided before any runtime state exists."""
    check_output_paths(options, env)
    bundle = load_bundle(options.bundle)
    plan = make_plan(bundle, options, env, os.getpid())
    if plan.activation is not None:
        from shim.activation.listen_fds import check_open

        check_open(plan.activation)
        plan.has_shell = os.path.lexists(os.path.join(plan.config["root"]["path"], "bin", "sh"))
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


def check_output_paths(options, env: dict[str, str]) -> None:
    """Flags naming places to write or run must be usable before anything starts."""
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
    if options.exit_command is not None:
        found = find_executable(options.exit_command, env.get("PATH", ""))
        if found is None:
            raise ShimError(f"--exit-command {options.exit_command}: not found or not executable")
        options.exit_command = found


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
    container = startup.create_container(runtime, options.container_id, state.path,
                                         state.file(startup.PID_FILE_NAME), plan.own_pid_namespace,
                                         keep_fds=plan.passed_fds)
    supervised = False
    try:
        stop = take_pending_stop_request()
        if stop is not None:
            diagnostics.info(f"{signal_name(stop)} before start: deleting container {container.id} unstarted")
            return SIGNAL_EXIT_OFFSET + stop
        startup.start_container(runtime, container)
        close_all(plan.passed_fds)  # the container has them now
        if options.pid_file:  # once the payload runs, so the file means "running"
            write_or_warn(options.pid_file, str(container.init_pid), diagnostics)
        if notify is not None:
            notify.container_started(container.init_pid)
        diagnostics.info(
            f"runtime {runtime.name} ({runtime.command.path}) created container {container.id} in "
            f"{container.create_took * 1000:.0f} ms and started it in {container.start_took * 1000:.0f} ms; "
            f"its init is pid {container.init_pid}")
        supervised = True
        status = supervise(runtime, container, plan, notify, options, diagnostics)
        return exit_code(status)
    finally:
        if not supervised:
            startup.delete_blocking(runtime, container, diagnostics)
        os.close(container.pidfd)
        if options.pid_file:
            remove_quietly(options.pid_file)


def supervise(runtime: Runtime, container, plan, notify, options, diagnostics) -> int:
    """Route signals at once, then hand over to trio, imported only now that the container
    runs. If supervision fails, the container is killed and deleted all the same."""
    from shim.signals.router import Handoff, SignalRouter
    from shim.stdio.sink import NONBLOCKING, SOCKET, Writer

    handoff = Handoff()
    router = SignalRouter(container.pidfd, handoff, on_forward_error=lambda signum, e: diagnostics.warning(
        f"could not forward {signal_name(signum)} to the container: {e.strerror}"))
    stderr = Writer.open(2)
    diagnostics.use_writer(stderr if stderr.kind in (NONBLOCKING, SOCKET) else None)
    router.start()
    try:
        from shim.process.scheduling import at_idle_priority

        # The container is starting now, as busy as the shim: it goes first (see scheduling).
        trio = at_idle_priority(lambda: __import__("trio"))

        from shim.lifecycle.supervise import Supervisor
        from shim.signals.stop_sequence import StopSequence

        stop = StopSequence(plan.stop_signal, options.stop_timeout, signals_ready=not plan.waits_for_signals_level)
        supervisor = Supervisor(runtime, container, stop, diagnostics, handoff, stderr, notify)
        status = trio.run(supervisor.run)
    except BaseException:
        startup.delete_blocking(runtime, container, diagnostics)
        raise
    finally:
        router.stop()
        diagnostics.use_writer(None)
        stderr.close()
    diagnostics.info(
        f"container {container.id} {describe(status)} after {supervisor.ran_for:.2f} s; output drained, "
        f"container deleted and {runtime.reaper.orphans_reaped} orphans reaped in {supervisor.cleanup_took * 1000:.0f} ms")
    return status


def report_exit(options, exit_status: int, reaper: Reaper, env: dict[str, str], diagnostics) -> None:
    """The exit file, then the exit command: the container is gone."""
    if options.exit_dir is not None:
        write_or_warn(os.path.join(options.exit_dir, options.container_id), str(exit_status), diagnostics)
    if options.exit_command is not None:
        run_exit_command(options, reaper, env, diagnostics)


def write_or_warn(path: str, text: str, diagnostics) -> None:
    """Files written while or after the container ran: a failure (the directory checked at
    the start went away, a full disk) costs the file, not the container's exit status."""
    try:
        write_atomic(path, text.encode())
    except OSError as e:
        diagnostics.warning(f"could not write {path}: {e.strerror}")


def run_exit_command(options, reaper: Reaper, env: dict[str, str], diagnostics) -> None:
    """Run ``--exit-command`` and wait for it, as conmon does.

    The shim stops being a subreaper first, so that what the command leaves running
    (podman's cleanup may start helpers) is not tied to the shim's exit.
    """
    from shim.process.spawn import spawn
    from shim.runtime.invoke import runtime_environment

    set_subreaper(False)
    argv = [options.exit_command, *options.exit_command_args]
    try:
        pid = spawn(argv, env=runtime_environment(env), stdin=0, stdout=1, stderr=2)
    except OSError as e:
        diagnostics.warning(f"exit command {options.exit_command}: cannot execute: {e.strerror}")
        return
    reaper.expect(pid)
    status = reaper.wait_blocking(pid)
    if status != 0:
        diagnostics.warning(f"exit command {options.exit_command} {describe(status)}")
    reaper.reap()
