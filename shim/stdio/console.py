"""Terminals: the console socket the runtime hands the pty master to, and the terminal's
window size.

With ``process.terminal`` the runtime makes the pty itself and sends its master over a
unix socket (``--console-socket``), as one ``SCM_RIGHTS`` fd. The socket lives in a fresh
0700 directory, so only the monitor's user can connect. The master then serves both ways:
the container's output (as ``stdout``: a terminal merges the streams) and its input. The
window size can arrive before the pty does (an engine writes it before ``exec`` starts):
it is kept and applied when the master arrives.
"""

from __future__ import annotations

import array
import fcntl
import os
import struct
import termios

import _socket as socket

from shim.errors import ShimError

SOCKET_NAME = "console.sock"


def window_size_bytes(rows: int, cols: int) -> bytes:
    """``struct winsize`` (pure)."""
    return struct.pack("HHHH", rows, cols, 0, 0)


def fds_from_ancillary(ancillary) -> list[int]:
    """Every fd of the ``SCM_RIGHTS`` messages of a recvmsg (pure)."""
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(data[: len(data) - len(data) % received.itemsize])
            fds.extend(received)
    return fds


class ConsoleSocket:
    """A listening socket for one runtime's pty master, in a private directory."""

    def __init__(self, parent: str | None = None) -> None:
        parent = parent or os.environ.get("TMPDIR") or "/tmp"
        for _ in range(8):
            directory = os.path.join(parent, "shim-term." + os.urandom(6).hex())
            try:
                os.mkdir(directory, 0o700)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 48 random bits, eight times
            raise ShimError(f"console socket: no free name in {parent}")
        self.directory = directory
        self.path = os.path.join(directory, SOCKET_NAME)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.bind(self.path)
            self.sock.listen(1)
        except BaseException:
            self.close()
            raise

    def receive_master(self) -> int:
        """The pty master the runtime sent (it has exited by now, so the connection is
        either waiting or was never made)."""
        self.sock.setblocking(False)
        try:
            fd, _ = self.sock._accept()
        except BlockingIOError:
            raise ShimError("Runtime did not set up terminal") from None
        conn = socket.socket(fileno=fd)
        try:
            conn.settimeout(5.0)
            _, ancillary, flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * 4), socket.MSG_CMSG_CLOEXEC)
        finally:
            conn.close()
        fds = fds_from_ancillary(ancillary)
        if len(fds) != 1 or flags & socket.MSG_CTRUNC:
            for fd in fds:
                os.close(fd)
            raise ShimError(f"the runtime sent {len(fds)} fds on the console socket, not one pty master")
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        for remove in (lambda: os.unlink(self.path), lambda: os.rmdir(self.directory)):
            try:
                remove()
            except FileNotFoundError:
                pass


class Terminal:
    """The container's pty master, once the runtime sent it; and its window size."""

    def __init__(self) -> None:
        self.master = -1
        self._size: tuple[int, int] | None = None

    def attach(self, master: int) -> None:
        """The master arrived: output gets ``\\r\\n`` line ends (as conmon sets ONLCR), and a
        window size asked for earlier is applied."""
        self.master = master
        attributes = termios.tcgetattr(master)
        attributes[1] |= termios.ONLCR
        termios.tcsetattr(master, termios.TCSANOW, attributes)
        if self._size is not None:
            self.resize(*self._size)

    def resize(self, rows: int, cols: int) -> None:
        self._size = (rows, cols)
        if self.master >= 0:
            try:
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, window_size_bytes(rows, cols))
            except OSError:
                pass  # the pty is gone: nothing left to resize

    def copy_size_from(self, fd: int) -> None:
        """Take the window size of the terminal at ``fd`` (``shim run``'s own)."""
        try:
            rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            return
        self.resize(rows, cols)


class RawMode:
    """The shim's own terminal in raw mode while a container has it, restored after."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        import tty

        tty.setraw(fd, termios.TCSANOW)

    def restore(self) -> None:
        if self._saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass
            self._saved = None


def stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:  # pragma: no cover
        return False



class OwnTerminal:
    """``shim run`` of a ``process.terminal`` bundle: the shim's own terminal (its stdin)
    becomes the container's, in raw mode while the container has it, its window size
    followed on SIGWINCH. The console socket exists before create; ``take`` makes the pty
    the container's output, ``forward_input`` (a supervision service) its input."""

    def __init__(self) -> None:
        self.console = ConsoleSocket()
        self.terminal = Terminal()
        self._raw: RawMode | None = None
        self._input = None  # a StdinPipe to the master

    def take(self, container) -> None:
        """After create: the pty master is the container's output; the window is ours."""
        master = self.console.receive_master()
        self.console.close()
        self.terminal.attach(master)
        self.terminal.copy_size_from(0)
        container.stdout_fd = master
        from shim.stdio.attach import StdinPipe

        self._input = StdinPipe(os.dup(master), close_on_client_eof=False)

    def enter_raw_mode(self) -> None:
        """Once the container runs: every key goes to it as typed (its pty does the line
        editing and turns Ctrl-C into its own SIGINT)."""
        self._raw = RawMode(0)

    def window_changed(self) -> None:
        self.terminal.copy_size_from(0)

    async def forward_input(self) -> None:
        """The shim's stdin to the container's pty, until cancelled. Through a file
        description of its own, so that non-blocking reads do not change the shell's."""
        import trio

        fd = os.open("/proc/self/fd/0", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        try:
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(fd)
                    continue
                except OSError:
                    return
                if not data:
                    return
                await self._input.write(data)
        finally:
            trio.lowlevel.notify_closing(fd)
            os.close(fd)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.restore()
            self._raw = None
        self.console.close()
        if self._input is not None:
            self._input.close()
