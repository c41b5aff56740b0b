"""A host-side NOTIFY_SOCKET for relay tests that need to see raw datagrams and who sent
them (the real service manager is used in test_systemd_units.py)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time


class NotifyListener:
    """Binds a datagram socket with SO_PASSCRED; a thread records (pid, bytes, fd count)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.messages: list[tuple[int, bytes, int, float]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64 * 4))
            except (socket.timeout, OSError):
                continue
            pid, fds = 0, 0
            for level, kind, cdata in ancillary:
                if kind == socket.SCM_CREDENTIALS:
                    pid = int.from_bytes(cdata[:4], sys.byteorder)
                elif kind == socket.SCM_RIGHTS:
                    fds = len(cdata) // 4
                    for i in range(fds):
                        os.close(int.from_bytes(cdata[4 * i:4 * i + 4], sys.byteorder))
            self.messages.append((pid, data, fds, time.monotonic()))

    def lines(self) -> list[str]:
        return [line for _, data, _, _ in self.messages for line in data.decode(errors="replace").split("\n")]

    def wait_for(self, line: str, timeout: float = 15) -> float:
        """Wait until ``line`` arrived; return when (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, data, _, when in list(self.messages):
                if line in data.decode(errors="replace").split("\n"):
                    return when
            time.sleep(0.005)
        raise TimeoutError(f"{line!r} never arrived; got {self.lines()[-20:]}")

    def wait_for_another(self, timeout: float = 10) -> None:
        """Wait until one more message than now arrived."""
        seen = len(self.messages)
        deadline = time.monotonic() + timeout
        while len(self.messages) == seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing arrived after {self.lines()[-5:]}")
            time.sleep(0.001)

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()
