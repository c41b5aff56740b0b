"""The attach socket: clients (``podman attach``, ``podman run`` in the foreground, ``start
--attach``) see the container's output and type into its stdin.

Protocol (conmon's and podman's): an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket at
``<bundle>/attach`` (with a short symlink ``<socket-dir>/<cuuid>`` to the bundle when the
engine asks for short paths). Each output packet is one byte naming the stream (2 stdout,
3 stderr) and at most 8192 bytes of output: podman reads into an 8193-byte buffer, and
SEQPACKET silently truncates anything longer. Input is raw bytes, up to 32 KiB a packet. A
client that shuts down its writing side (stdin at EOF, or a detach) has sent its last
input: the container's stdin is closed then, unless the engine said
``--leave-stdin-open``, and the client keeps receiving output.

A client that connected before the container wrote anything sees all of it: the output
path accepts waiting clients before each read of the container's output, and clients
usually connect before ``runtime start``. A slow client slows the container down
(each client has a bounded queue, and output waits for room); a client that takes nothing
for ``STALL_TIMEOUT`` is dropped with a warning, so it can neither block the container
forever nor starve the other clients.
"""

from __future__ import annotations

import errno
import os

import _socket as socket

from shim.stdio.output import STDERR, STDOUT, Destination

PACKET_PAYLOAD = 8192  # podman's client buffer is 8193 bytes, one for the stream id
INPUT_BUFFER = 65536  # podman writes at most 32 KiB a packet; more room never truncates
CLIENT_QUEUE_LIMIT = 4 * 1024 * 1024  # output waiting for one client before the container waits
STALL_TIMEOUT = 30.0  # seconds a full client queue may stay full before the client is dropped
BACKLOG = 10  # conmon's
SOCKET_NAME = "attach"


def packets(stream: int, data: bytes) -> list[bytes]:
    """The attach packets for a chunk of output (pure)."""
    head = bytes((stream,))
    return [head + data[i:i + PACKET_PAYLOAD] for i in range(0, len(data), PACKET_PAYLOAD)]


def short_path_dir(socket_dir: str, cuuid: str, sun_path_max: int = 108) -> str:
    """conmon's ``<socket-dir>/<cuuid>`` symlink path, one character shorter when it would
    otherwise be exactly as long as the socket's own path could be (pure)."""
    path = f"{socket_dir.rstrip('/')}/{cuuid}"
    if len(path) == sun_path_max - 1:
        path = path[:sun_path_max - 2]
    return path


class AttachSocket:
    """The bound, listening socket (made before the container exists)."""

    def __init__(self, bundle: str, symlink: str | None = None) -> None:
        self.path = os.path.join(bundle, SOCKET_NAME)
        self.symlink = symlink
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            if symlink is not None:
                _replace_symlink(bundle, symlink)
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            # Through the directory's fd: a bundle path can be longer than sun_path allows.
            dir_fd = os.open(bundle, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fchmod(self.sock.fileno(), 0o700)
                self.sock.bind(f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}")
            finally:
                os.close(dir_fd)
            os.chmod(self.path, 0o700)
            self.sock.listen(BACKLOG)
        except BaseException:
            self.close()
            raise

    def accept(self):
        """A waiting client, or None."""
        try:
            fd, _ = self.sock._accept()  # the C socket's accept4(SOCK_CLOEXEC): the fd alone
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                return None
            raise
        client = socket.socket(fileno=fd)
        client.setblocking(False)
        return client

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.sock.close()
        for path in (self.path, self.symlink):
            if path is not None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass


def _replace_symlink(target: str, link: str) -> None:
    try:
        os.unlink(link)
    except FileNotFoundError:
        pass
    os.symlink(target, link)


class _Client:
    __slots__ = ("sock", "queue", "queued", "readable", "writable", "room", "ready")

    def __init__(self, sock) -> None:
        self.sock = sock
        self.queue: list[bytes] = []
        self.queued = 0
        self.readable = True
        self.writable = True
        self.room = None  # a trio.Event while output waits for this client's queue
        self.ready = None  # a trio.Event while the client's sender waits for output


class AttachClients(Destination):
    """Every attach client of one container: output to them, their input to its stdin."""

    name = "attach"

    def __init__(self, listener: AttachSocket, stdin, diagnostics) -> None:
        self.listener = listener
        self.stdin = stdin  # a StdinPipe, or None when the container's stdin is not ours
        self._diagnostics = diagnostics
        self._clients: list[_Client] = []
        self._nursery = None
        self._closed = False

    # -- accepting -------------------------------------------------------------------
    def accept_waiting(self) -> None:
        """Take every client waiting in the backlog (the output path calls this before
        each read, so early clients see every byte)."""
        while not self._closed:
            sock = self.listener.accept()
            if sock is None:
                return
            client = _Client(sock)
            self._clients.append(client)
            if self._nursery is not None:
                self._start_client(client)

    def _start_client(self, client: _Client) -> None:
        self._nursery.start_soon(self._send_loop, client)
        self._nursery.start_soon(self._read_loop, client)

    async def serve(self) -> None:
        """The service: accept clients as they come, and run each one's tasks."""
        import trio

        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for client in self._clients:
                self._start_client(client)
            while True:
                await trio.lowlevel.wait_readable(self.listener.sock)
                self.accept_waiting()

    # -- output ----------------------------------------------------------------------
    async def write(self, stream: int, data: bytes, received_ns: int | None = None) -> None:
        import trio

        chunk = packets(stream, data)
        size = sum(len(p) for p in chunk)
        for client in list(self._clients):
            if not client.writable:
                continue
            if client.queued + size > CLIENT_QUEUE_LIMIT and client.queued:
                with trio.move_on_after(STALL_TIMEOUT) as stalled:
                    while client.writable and client.queued + size > CLIENT_QUEUE_LIMIT and client.queued:
                        client.room = trio.Event()
                        await client.room.wait()
                if stalled.cancelled_caught:
                    self._diagnostics.warning(f"an attach client took no output for {STALL_TIMEOUT:g} s; "
                                              "it is disconnected")
                    self._stop_writing(client)
                    continue
            if not client.writable:
                continue
            client.queue.extend(chunk)
            client.queued += size
            if client.ready is not None:
                client.ready.set()

    async def _send_loop(self, client: _Client) -> None:
        import trio

        while client.writable:
            if not client.queue:
                client.ready = trio.Event()
                await client.ready.wait()
                client.ready = None
                continue
            packet = client.queue[0]
            try:
                client.sock.send(packet, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(client.sock)
                continue
            except OSError:  # the client is gone
                self._stop_writing(client)
                return
            client.queue.pop(0)
            client.queued -= len(packet)
            if client.room is not None:
                client.room.set()

    async def finish(self) -> None:
        """The output is complete: give each client what is queued for it (bounded)."""
        import trio

        with trio.move_on_after(STALL_TIMEOUT):
            for client in list(self._clients):
                while client.writable and client.queue:
                    client.room = trio.Event()
                    await client.room.wait()

    def _stop_writing(self, client: _Client) -> None:
        client.writable = False
        client.queue.clear()
        client.queued = 0
        for event in (client.room, client.ready):
            if event is not None:
                event.set()
        self._shutdown(client, socket.SHUT_WR)

    # -- input -----------------------------------------------------------------------
    async def _read_loop(self, client: _Client) -> None:
        import trio

        while client.readable:
            try:
                data = client.sock.recv(INPUT_BUFFER)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(client.sock)
                continue
            except OSError:
                data = b""
            if not data:  # the client sent its last input (stdin EOF, or a detach)
                client.readable = False
                self._shutdown(client, socket.SHUT_RD)
                if self.stdin is not None:
                    self.stdin.client_finished()
                return
            if self.stdin is not None:
                await self.stdin.write(data)

    def _shutdown(self, client: _Client, how: int) -> None:
        try:
            client.sock.shutdown(how)
        except OSError:
            pass
        if not client.readable and not client.writable:
            self._forget(client)

    def _forget(self, client: _Client) -> None:
        if client in self._clients:
            self._clients.remove(client)
        client.sock.close()

    def close(self) -> None:
        """Clients see EOF, the socket is gone (before the exit file, as with conmon)."""
        self._closed = True
        for client in self._clients:
            client.sock.close()
        self._clients = []
        self.listener.close()


class StdinPipe:
    """The container's stdin (our end of its pipe), fed by attach clients."""

    def __init__(self, fd: int, close_on_client_eof: bool) -> None:
        self.fd = fd
        self._close_on_eof = close_on_client_eof
        self._room = None  # a trio.Lock: each attach client writes from a task of its own
        os.set_blocking(fd, False)

    async def write(self, data: bytes) -> None:
        import trio

        view = memoryview(data)
        while view and self.fd >= 0:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                # trio lets one task at a time wait on an fd; a second client's task would
                # raise BusyResourceError and end the supervision.
                if self._room is None:
                    self._room = trio.Lock()
                async with self._room:
                    if self.fd < 0:
                        return  # closed while this task waited for its turn
                    try:
                        await trio.lowlevel.wait_writable(self.fd)
                    except trio.ClosedResourceError:
                        return  # another client's EOF closed the container's stdin meanwhile
            except OSError:  # EPIPE: the container closed its stdin; input goes nowhere
                self.close()

    def client_finished(self) -> None:
        if self._close_on_eof:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            import trio

            try:
                trio.lowlevel.notify_closing(self.fd)
            except RuntimeError:
                pass  # trio is not running: nobody can be waiting on the fd
            os.close(self.fd)
            self.fd = -1
