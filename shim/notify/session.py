"""The sd_notify side of one run, by ``--sdnotify`` mode.

- ``container``: the container gets a socket of its own (``/run/notify/notify.sock``) and
  its allowed messages are relayed; the shim adds ``MAINPID`` once the container runs.
- ``shim``: the shim reports ``READY=1`` itself once ``runtime start`` succeeded.
- ``ignore``: nothing is sent, and the container gets no socket.
- ``auto``: ``container`` for a systemd payload, else ``shim``.
Without ``$NOTIFY_SOCKET`` in the shim's environment nothing is ever sent, in any mode.
In every mode that sends, the shim says ``STOPPING=1`` when it starts a stop.
"""

from __future__ import annotations

import os

CONTAINER = "container"
SHIM = "shim"


def resolve_mode(flag: str, systemd: bool, host_socket: str | None) -> str | None:
    """The effective mode (``container``, ``shim``) or None when nothing is sent (pure)."""
    if not host_socket or flag == "ignore":
        return None
    if flag == "auto":
        return CONTAINER if systemd else SHIM
    return flag


def add_container_socket(config: dict, notify_directory: str) -> None:
    """Mount the socket's directory at /run/notify (after any tmpfs on /run, so it stays
    visible) and point the payload's NOTIFY_SOCKET at it (pure edit of ``config``).

    Read-only: connecting to a socket needs no write access to its file system, and the
    directory is the host's (in the shim's state directory), where the container must not
    plant symlinks or fill the disk."""
    from shim.bundle.effective import set_env
    from shim.notify.container_socket import CONTAINER_DIRECTORY, CONTAINER_NOTIFY_SOCKET

    config.setdefault("mounts", []).append({
        "destination": CONTAINER_DIRECTORY, "type": "bind", "source": notify_directory,
        "options": ["bind", "ro", "nosuid", "nodev", "noexec"],
    })
    set_env(config, "NOTIFY_SOCKET", CONTAINER_NOTIFY_SOCKET)


class NotifySession:
    def __init__(self, mode: str, host_socket: str, diagnostics, announce: bool = True) -> None:
        """``announce``: the shim speaks for itself upstream (``MAINPID``, ``STOPPING``, and
        ``READY`` in shim mode). An engine that sends ``MAINPID`` itself (podman) gets the
        relay alone."""
        from shim.notify.upstream import Upstream

        self.mode = mode
        self.announce = announce
        self.upstream = Upstream(host_socket, diagnostics)
        self.container_socket = None
        self._diagnostics = diagnostics
        self._membership = None

    def open_container_socket(self, directory: str, owner: tuple[int, int] | None) -> None:
        """Bind the container's socket; before ``runtime create``, which mounts it."""
        from shim.notify.container_socket import ContainerNotifySocket

        self.container_socket = ContainerNotifySocket(directory, owner)

    def container_started(self, init_pid: int) -> None:
        """The payload runs: announce the shim as the main process (and, in shim mode,
        readiness). Sent before trio is imported, so systemd hears it at once."""
        from shim.notify.membership import ContainerMembership

        if self.container_socket is not None:
            self._membership = ContainerMembership.of_init(init_pid)
        if self.announce:
            from shim.notify.protocol import shim_messages

            event = "running" if self.mode == SHIM else "attached"
            self.upstream.send(shim_messages(event, os.getpid(), announce_status=self.mode == SHIM))

    def stopping(self) -> None:
        if self.announce:
            from shim.notify.protocol import shim_messages

            self.upstream.send(shim_messages("stopping", os.getpid(), announce_status=self.mode == SHIM))

    @property
    def container_fd(self) -> int | None:
        """The container's socket, for a loop that serves it before trio runs."""
        return self.container_socket.sock.fileno() if self.container_socket is not None else None

    def relay_waiting(self, on_signals_ready) -> tuple[bool, bool]:
        """Before trio runs (once ``container_started``): relay what the container sent so
        far, as the relay task would. Returns whether READY=1 went upstream, and whether
        the upstream queue still has room: when the host's socket is full, only trio's
        task can wait for it, and the rest waits in the container's socket."""
        if self.container_socket is None or self._membership is None:
            return False, True
        if not self.upstream.has_room():
            return False, False
        _, ready = self.container_socket.receive(self._membership.contains, self.upstream, on_signals_ready,
                                                 self._diagnostics)
        return ready, self.upstream.has_room()

    async def run(self, on_signals_ready) -> None:
        """The session's tasks, for the container's nursery: drain the upstream queue and,
        in container mode, relay the container's messages."""
        import trio

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.upstream.run)
            if self.container_socket is not None:
                nursery.start_soon(self.container_socket.relay, self._membership.contains, self.upstream,
                                   on_signals_ready, self._diagnostics)

    def close(self) -> None:
        self.upstream.close()
        if self.container_socket is not None:
            self.container_socket.close()
        if self._membership is not None:
            self._membership.close()
