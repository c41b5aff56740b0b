"""What the monitor sets up on the host before the container exists, and removes after.

In the bundle (podman's ``userdata`` directory): the attach socket (``attach``, with a short
symlink under ``--socket-dir-path`` unless ``--full-attach``), the control fifos (``ctl``
and ``winsz``), and with ``--sdnotify-socket`` the container's notify socket at
``notify/notify.sock`` (podman mounts ``notify/`` at ``/run/notify``). Elsewhere: the log
files. All of it exists before ``runtime create``: the engine attaches, resizes and the
container may notify as soon as the engine hears the pid.
"""

from __future__ import annotations

import os
from functools import partial

from shim.conmon.options import MonitorError


class HostSide:
    def __init__(self, options, diagnostics) -> None:
        self.options = options
        self.diagnostics = diagnostics
        self.notify = None
        self.attach_socket = None
        self.attach = None  # AttachClients, once supervision runs
        self.stdin = None
        self.ctl = self.winsz = None
        self.logs: list = []
        self.k8s_log = None
        self.console = None  # the console socket, with -t
        self.terminal = None  # the pty master and window size, with -t

    @classmethod
    def prepare(cls, options, diagnostics) -> "HostSide":
        host = cls(options, diagnostics)
        try:
            host._open_notify()
            host._open_logs()
            if not options.log_drivers.passthrough:
                host._open_attach()
            if options.terminal:
                host._open_console()
        except BaseException:
            host.close()
            raise
        return host

    def _open_notify(self) -> None:
        options = self.options
        if not options.sdnotify_socket:
            return
        from shim.notify.session import CONTAINER, NotifySession

        # podman sends MAINPID itself: the monitor relays, and says nothing of its own.
        self.notify = NotifySession(CONTAINER, options.sdnotify_socket, self.diagnostics, announce=False)
        directory = os.path.join(options.bundle, "notify")
        try:
            self.notify.open_container_socket(directory, owner=None)
        except OSError as e:
            raise MonitorError(f"notify socket in {directory}: {e.strerror}") from None

    def _open_logs(self) -> None:
        options = self.options
        if options.log_drivers.k8s_file:
            from shim.logs.k8s_file import K8sFileLog

            try:
                self.k8s_log = K8sFileLog(options.log_drivers.k8s_file, self.diagnostics,
                                          max_size=options.log_size_max, max_files=options.log_max_files,
                                          global_max_size=options.log_global_size_max,
                                          sync_at_end=not options.no_sync_log)
            except OSError as e:
                raise MonitorError(f"Failed to open log file {options.log_drivers.k8s_file}: {e.strerror}") from None
            self.logs.append(self.k8s_log)
        if options.log_drivers.journald:
            from shim.logs.journald import JournaldLog

            self.logs.append(JournaldLog(options.cid, options.name, options.log_tag, options.log_labels,
                                         self.diagnostics, partial_marker=not options.no_container_partial_message))

    def _open_attach(self) -> None:
        from shim.stdio.attach import AttachSocket, short_path_dir
        from shim.stdio.control import open_control_fifos

        options = self.options
        symlink = None if options.full_attach else short_path_dir(options.socket_dir_path, options.cuuid)
        try:
            self.attach_socket = AttachSocket(options.bundle, symlink)
            self.ctl, self.winsz = open_control_fifos(options.bundle)
        except OSError as e:
            raise MonitorError(f"attach socket and control fifos in {options.bundle}: {e.strerror}") from None

    def _open_console(self) -> None:
        from shim.stdio.console import ConsoleSocket, Terminal

        try:
            self.console = ConsoleSocket()
        except OSError as e:
            raise MonitorError(f"console socket: {e.strerror}") from None
        self.terminal = Terminal()

    def take_terminal(self, container) -> None:
        """The runtime made the pty: its master is the container's input and output."""
        master = self.console.receive_master()
        self.console.close()
        self.console = None
        self.terminal.attach(master)
        for fifo in (self.ctl, self.winsz):  # a size asked for before the pty existed (exec)
            if fifo is not None:
                fifo.read_available(self.on_control)
        container.stdin_fd = master
        container.stdout_fd = os.dup(master)  # output lives on when input is closed (exec -it)

    def output_path(self, container):
        """The output destinations and the services of the supervision (inside trio)."""
        from shim.stdio.attach import AttachClients, StdinPipe
        from shim.stdio.output import Output

        destinations = list(self.logs)
        services = []
        before_read = None
        if container.stdin_fd is not None:
            # A terminal takes input from attach clients always; only -i makes a client's
            # EOF the container's (conmon's rule).
            close_on_eof = self.options.stdin and not self.options.leave_stdin_open
            self.stdin = StdinPipe(container.stdin_fd, close_on_client_eof=close_on_eof)
            container.stdin_fd = None  # the pipe object owns it now
        if self.attach_socket is not None:
            self.attach = AttachClients(self.attach_socket, self.stdin, self.diagnostics)
            destinations.append(self.attach)
            services.append(self.attach.serve)
            before_read = self.attach.accept_waiting
            services.append(partial(self.ctl.serve, self.on_control))
            services.append(partial(self.winsz.serve, self.on_control))
        early = {}
        if self.ctl is not None:
            early = {fifo.fd: partial(fifo.read_available, self.on_control) for fifo in (self.ctl, self.winsz)}
        return Output(destinations, before_read=before_read, early_services=early), services

    def on_control(self, message) -> None:
        from shim.stdio.control import Malformed, ReopenLogs, Resize

        if isinstance(message, ReopenLogs):
            if self.k8s_log is not None:
                self.k8s_log.reopen()
        elif isinstance(message, Resize):
            if self.terminal is not None:
                self.terminal.resize(message.rows, message.cols)
        elif isinstance(message, Malformed):
            self.diagnostics.warning(f"ignored a control message that does not parse: {message.line[:60]!r}")

    def close_attach(self) -> None:
        if self.attach is not None:
            self.attach.close()
        elif self.attach_socket is not None:
            self.attach_socket.close()

    def close(self) -> None:
        self.close_attach()
        for fifo in (self.ctl, self.winsz):
            if fifo is not None:
                fifo.close()
        self.ctl = self.winsz = None
        if self.stdin is not None:
            self.stdin.close()
        for log in self.logs:
            log.close()
        self.logs = []
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        if self.console is not None:
            self.console.close()
            self.console = None
