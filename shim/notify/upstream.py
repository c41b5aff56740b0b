"""Sending to the host's ``$NOTIFY_SOCKET``: never blocking, always in order.

Why not the ``sdnotify`` package: it connects a blocking socket (a stuck service manager
would freeze the shim), swallows every error, and cannot pass fds. This sender is a
connected, non-blocking datagram socket: a message goes out at once when nothing is queued
(the common case, and the fastest path from a container's READY=1 to systemd); when the
host's queue is full, messages wait in order in a bounded queue drained by ``run``. A host
socket that is gone, refused or full for too long costs messages, never the container,
and each kind of failure is logged once.

A connected socket matters: for an unconnected unix datagram socket, poll() reports only
the sender's own buffer, so waiting for room at the peer would spin.

The relay asks ``has_room`` before it reads the container's next datagrams: when the host
falls behind, the backlog stays in the container's socket (and then in the container,
whose sends wait), instead of overflowing here. Messages are dropped only when the shim's
own queue is full, which the relay never lets happen.

Two threads send: the relay's own (shim.notify.container_socket) and trio's (the shim's
own messages, and ``run``, which drains the queue). A lock keeps the queue and the order
of what goes out whole; a thread that is not trio's wakes ``run`` through trio's token.
"""

from __future__ import annotations

import os

import _thread  # built in, unlike threading: Upstream is made before runtime create
# _socket, the C module behind socket: the same sockets without socket.py's enums and
# selectors (about 3 ms), on the path to the container's start (the upstream socket is
# connected before runtime create).
import _socket

QUEUE_LIMIT = 1024  # messages waiting for room at the host before new ones are dropped
RELAY_ROOM = QUEUE_LIMIT // 4  # the relay reads from the container only below this backlog


def socket_address(notify_socket: str) -> str | bytes:
    """``$NOTIFY_SOCKET`` as a socket address: ``@name`` is the abstract namespace."""
    if notify_socket.startswith("@"):
        return b"\0" + notify_socket[1:].encode()
    return notify_socket


class Upstream:
    def __init__(self, notify_socket: str, diagnostics) -> None:
        self._diagnostics = diagnostics
        # A list, not collections.deque: at most QUEUE_LIMIT entries, rarely any, and the
        # import of collections would cost the start-up path a millisecond.
        self._queue: list[tuple[bytes | None, int | None]] = []
        self._wakeup = None  # a trio.Event while run() waits for work
        self._room = None  # a trio.Event while the relay waits for the backlog to shrink
        self._warned: set[str] = set()
        self._lock = _thread.allocate_lock()  # the queue, and sending in its order
        self._token = None  # trio's token and thread, while run() drains the queue
        self._trio_thread: int | None = None
        self.sent = 0
        self.dropped = 0
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC)
        try:
            self._sock.connect(socket_address(notify_socket))
        except OSError as e:
            self._warn_once("connect", f"cannot reach NOTIFY_SOCKET {notify_socket}: {e.strerror}; "
                                       "readiness will not be reported")
            self._sock.close()
            self._sock = None

    def send(self, message: bytes) -> None:
        """Send now if nothing is queued, else queue (in order) for ``run``. Any thread."""
        with self._lock:
            if not self._queue and self._try_send(message):
                return
            self._enqueue(message, None)

    def has_room(self) -> bool:
        return len(self._queue) < RELAY_ROOM

    async def wait_for_room(self) -> None:
        """Until the backlog is below RELAY_ROOM (the relay's backpressure)."""
        import trio

        while not self.has_room():
            self._room = trio.Event()
            await self._room.wait()

    def barrier(self, fd: int) -> None:
        """Close ``fd`` once every message queued before it went out. Any thread."""
        with self._lock:
            if not self._queue:
                os.close(fd)
            else:
                self._enqueue(None, fd)

    def _try_send(self, message: bytes) -> bool:
        """True when the message is dealt with (sent, or lost for good); False: no room."""
        if self._sock is None:
            self.dropped += 1
            return True
        try:
            self._sock.send(message)
        except BlockingIOError:
            return False
        except OSError as e:
            self.dropped += 1
            self._warn_once(f"send-{e.errno}", f"sending to NOTIFY_SOCKET failed: {e.strerror}")
            return True
        self.sent += 1
        return True

    def _enqueue(self, message: bytes | None, fd: int | None) -> None:
        """With the lock held."""
        if len(self._queue) >= QUEUE_LIMIT:
            self.dropped += 1
            if fd is not None:
                os.close(fd)
            self._warn_once("full", f"the host's NOTIFY_SOCKET has had no room for {QUEUE_LIMIT} messages; "
                                    "dropping new ones")
            return
        self._queue.append((message, fd))
        if self._wakeup is not None:
            if _thread.get_ident() == self._trio_thread:
                self._wakeup.set()
            else:
                self._token.run_sync_soon(self._wake_run)

    def _wake_run(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def run(self) -> None:
        """Drain what had to wait; runs as long as the container's supervision."""
        import trio

        self._token, self._trio_thread = trio.lowlevel.current_trio_token(), _thread.get_ident()
        while True:
            with self._lock:
                if not self._queue:  # decided with the lock held: an _enqueue now sees the event
                    self._wakeup = wakeup = trio.Event()
                else:
                    wakeup = None
                    sent = self._send_first()
            if wakeup is not None:
                await wakeup.wait()
                self._wakeup = None
                continue
            if not sent:
                await trio.lowlevel.wait_writable(self._sock)
            if self._room is not None and self.has_room():
                self._room.set()
                self._room = None

    def _send_first(self) -> bool:
        """With the lock held: the first queued message goes out, or the first barrier's fd
        is closed; False while the host has no room."""
        message, fd = self._queue[0]
        if message is None:
            os.close(fd)  # type: ignore[arg-type]
        elif not self._try_send(message):
            return False
        self._queue.pop(0)
        return True

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._diagnostics.warning(message)

    def close(self) -> None:
        while self._queue:
            _, fd = self._queue.pop(0)
            if fd is not None:
                os.close(fd)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
