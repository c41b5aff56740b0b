"""The notify socket inside the container: ``<state-dir>/<ID>/notify/notify.sock``,
bind-mounted at ``/run/notify`` (the path podman uses), and its receive loop.

Only the container may talk: the directory is 0700 and owned by the container's root user
(mapped through the bundle's user namespace, if any), so nothing else on the host but root
can reach the socket, and each datagram's sender, known through ``SO_PASSCRED``, must be a
process of the container. The ID can make the socket's path longer than a unix socket
address allows, so it is bound through ``/proc/self/fd/<directory fd>``.
"""

from __future__ import annotations

import os
import sys

import _socket as socket  # the C module behind socket: see upstream.py

from shim.notify.protocol import NOTIFY_BUFFER_MAX, judge
from shim.process.spawn import close_all

CONTAINER_DIRECTORY = "/run/notify"
SOCKET_NAME = "notify.sock"
CONTAINER_NOTIFY_SOCKET = f"{CONTAINER_DIRECTORY}/{SOCKET_NAME}"
MAX_FDS = 253  # Linux refuses more per SCM_RIGHTS message
_ANCILLARY_SPACE = socket.CMSG_SPACE(MAX_FDS * 4) + socket.CMSG_SPACE(12)
_RECEIVE_BUFFER = 8 * 1024 * 1024  # room for bursts (podman's notify proxy uses the same)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # <asm-generic/socket.h>; not in Python 3.11
_BATCH = 64  # datagrams read before polling again
_INT_SIZE = 4  # sizeof(int): the fds of an SCM_RIGHTS message


def container_root_ids(config: dict) -> tuple[int, int]:
    """The host uid and gid of the container's root user (pure)."""
    linux = config.get("linux") or {}

    def host_id(mappings) -> int:
        for m in mappings or []:
            if not isinstance(m, dict):
                continue
            first, size, host = int(m.get("containerID", 0)), int(m.get("size", 0)), int(m.get("hostID", 0))
            if first <= 0 < first + size:
                return host - first
        return 0

    return host_id(linux.get("uidMappings")), host_id(linux.get("gidMappings"))


class ContainerNotifySocket:
    """The bound socket; ``relay`` moves what it receives upstream."""

    def __init__(self, directory: str, owner: tuple[int, int] | None) -> None:
        """``owner``: the container's root user, who alone may use a directory the shim
        makes; None: the engine made the directory (podman's ``<bundle>/notify``, mounted
        at /run/notify), and the socket is open to any user of the container, as conmon's
        is (0777): who is heard is decided by the sender's cgroup."""
        self.directory = directory
        if owner is not None:
            os.mkdir(directory, 0o700)
            os.chown(directory, *owner)
        else:
            os.makedirs(directory, 0o755, exist_ok=True)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            path = f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}"
            if owner is None:
                try:
                    os.unlink(path)  # left by the container's last run
                except FileNotFoundError:
                    pass
            self.sock.bind(path)
            if owner is not None:
                os.chown(path, *owner)
                os.chmod(path, 0o600)
            else:
                os.chmod(path, 0o777)
        except BaseException:
            self.sock.close()
            raise
        finally:
            os.close(dir_fd)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _RECEIVE_BUFFER)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)

    def close(self) -> None:
        self.sock.close()

    async def relay(self, is_container_process, upstream, on_signals_ready, diagnostics) -> None:
        """Receive, judge and forward datagrams until cancelled.

        In a thread of its own, blocked in poll() between datagrams, not in a trio task:
        a trio task pays a pass of trio's run loop per wake-up, which measured here (one
        datagram at a time, as a service sends READY=1 or WATCHDOG=1) cost some 70 us of
        CPU each, more than the whole relay in a thread (40 us, the kernel's part
        included), and a datagram waits for all of it on a busy CPU. The thread stops when
        the host falls behind (the backlog then waits in the container's socket, as
        before) and starts again once the queue has room."""
        import trio

        token = trio.lowlevel.current_trio_token()

        def signals_ready_in_trio() -> None:
            token.run_sync_soon(on_signals_ready)

        while True:
            if not upstream.has_room():
                await upstream.wait_for_room()  # the host is behind: let the backlog wait here
            await run_in_thread(lambda stop_fd: self._relay_until(stop_fd, is_container_process, upstream,
                                                                  signals_ready_in_trio, diagnostics))

    def _relay_until(self, stop_fd, is_container_process, upstream, on_signals_ready, diagnostics) -> None:
        """The relay thread: until ``stop_fd`` is readable or the upstream queue is full."""
        import select

        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(stop_fd, select.POLLIN)
        while upstream.has_room():
            for fd, _ in poller.poll():
                if fd == stop_fd:
                    return
            self.receive(is_container_process, upstream, on_signals_ready, diagnostics, limit=1)

    def receive(self, is_container_process, upstream, on_signals_ready, diagnostics,
                limit: int = _BATCH) -> tuple[int, bool]:
        """Receive, judge and forward what is waiting, up to a batch, without blocking:
        called by the relay thread, and by ``shim run``'s main thread until trio runs.
        Returns how many datagrams were read, and whether READY=1 went upstream."""
        debug = diagnostics.enabled("debug")
        verified: dict[int, bool] = {}  # per batch: a pid cannot be recycled that fast
        read = 0
        ready = False
        while read < limit:
            try:
                data, ancillary, flags, _ = self.sock.recvmsg(
                    NOTIFY_BUFFER_MAX, _ANCILLARY_SPACE, socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                break
            read += 1
            fds, pid = _unpack(ancillary)
            truncated = bool(flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC))
            if pid not in verified:
                verified[pid] = is_container_process(pid)
            if not verified[pid]:
                close_all(fds)
                if debug:
                    diagnostics.debug(f"notify: dropped a datagram from pid {pid}, not a process of the container")
                continue
            verdict = judge(data, len(fds), truncated)
            if debug and verdict.dropped:
                diagnostics.debug(f"notify: from pid {pid}: dropped {'; '.join(verdict.dropped)}")
            message = verdict.message()
            if message is not None:
                upstream.send(message)
                ready = ready or "READY=1" in verdict.forward
                if debug:
                    diagnostics.debug(f"notify: relayed from pid {pid}: {message.decode(errors='replace')}")
            if verdict.signals_ready:
                on_signals_ready()
            if verdict.barrier:
                upstream.barrier(fds.pop())
            close_all(fds)
        return read, ready


async def run_in_thread(work) -> None:
    """``work(stop_fd)`` in a worker thread until it returns; when the caller is cancelled,
    ``stop_fd`` (an eventfd) becomes readable and the thread is waited for, so nothing it
    uses is closed under it."""
    import trio

    async def stop_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            os.eventfd_write(stop_fd, 1)

    stop_fd = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_when_cancelled)
            await trio.to_thread.run_sync(work, stop_fd)  # not abandoned when cancelled: waited for
            nursery.cancel_scope.cancel()
    finally:
        os.close(stop_fd)


def _unpack(ancillary) -> tuple[list[int], int]:
    fds: list[int] = []
    pid = 0
    for level, kind, data in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_RIGHTS:
            # C ints, whole ones only (a truncated message may end inside one). Not the array
            # module: it loads collections.abc (about 2 ms), and this module loads before
            # runtime create.
            fds.extend(memoryview(data)[: len(data) - len(data) % _INT_SIZE].cast("i"))
        elif kind == socket.SCM_CREDENTIALS and len(data) >= 12:
            pid = int.from_bytes(data[0:4], sys.byteorder, signed=True)  # struct ucred
    return fds, pid

