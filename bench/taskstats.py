"""The CPU time of processes that the bench did not start itself, from the kernel's own
record of every exit (taskstats, over generic netlink).

A container monitor under podman is several short-lived processes the bench never waits
for: the one podman starts (it daemonizes, and podman reaps it), the daemon, the fork
server's intermediate child. None of them can be read from /proc just before it exits,
and a monitor's cgroup also holds the runtime's ``create`` and podman's exit command,
which would swamp a monitor's few milliseconds. The kernel sends one record per exiting
thread (its pid, thread group, parent, name, user and system time) to every listener
registered for the CPU it exited on; the bench listens for the whole of a scenario and
attributes the records afterwards, by pid (bench/attribution.py).

Parsing is pure (``parse_datagram``, ``parse_stats``); only ``ExitListener`` and
``group_cpu_us`` talk to the kernel. The times are the kernel's raw ones, sampled at each
scheduler tick (CONFIG_HZ): a process's own figure is a multiple of the tick, right on
average over many.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
import time
from typing import NamedTuple

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
FAMILY_NAME = b"TASKSTATS\0"
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port
GENL_HEADER = struct.Struct("=BBH")  # command, version, reserved
ATTR_HEADER = struct.Struct("=HH")  # length, type
NLA_TYPE_MASK = 0x3FFF  # the top bits of an attribute's type are flags (nested, byte order)

# <linux/taskstats.h>
TASKSTATS_CMD_GET, TASKSTATS_CMD_NEW = 1, 2
TYPE_PID, TYPE_TGID, TYPE_STATS, TYPE_AGGR_PID, TYPE_AGGR_TGID = 1, 2, 3, 4, 5
CMD_ATTR_TGID, CMD_ATTR_REGISTER_CPUMASK = 2, 3
# Offsets in struct taskstats; fields are only ever appended (the struct is versioned),
# and these have been where they are since version 1, ac_tgid since version 12.
COMM = slice(80, 112)
PIDS = struct.Struct("=II")  # ac_pid, ac_ppid
PIDS_AT = 128
TIMES = struct.Struct("=QQ")  # ac_utime, ac_stime, in microseconds
TIMES_AT = 152
FLAG_AT = 8
TGID = struct.Struct("=I")
TGID_AT = 368
TGID_SINCE_VERSION = 12
AGROUP = 0x20  # <linux/acct.h>: the last thread of its thread group

SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>: as root, past net.core.rmem_max
RECEIVE_BUFFER = 8 << 20  # bytes: every exit on the machine comes here, in bursts
POLL = 0.2  # seconds: how soon the reader notices it is asked to stop


class Exit(NamedTuple):
    """One exited thread, as the kernel recorded it."""

    pid: int  # the thread's id
    tgid: int  # its process (thread group)
    ppid: int  # its parent process at exit (after any re-parenting)
    comm: str  # its name (15 characters at most)
    cpu_us: int  # user + system time, in microseconds
    last: bool  # the last thread of its process: the process is gone
    arrived: float = 0.0  # time.monotonic() when the bench read it


def attributes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
    """The (type, payload) of each netlink attribute in ``data[start:end]``."""
    end = len(data) if end is None else end
    found = []
    while start + ATTR_HEADER.size <= end:
        length, kind = ATTR_HEADER.unpack_from(data, start)
        if length < ATTR_HEADER.size or start + length > end:
            break
        found.append((kind & NLA_TYPE_MASK, data[start + ATTR_HEADER.size:start + length]))
        start += (length + 3) & ~3
    return found


def attribute(kind: int, payload: bytes) -> bytes:
    length = ATTR_HEADER.size + len(payload)
    return ATTR_HEADER.pack(length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def message(family: int, command: int, payload: bytes, sequence: int = 1) -> bytes:
    body = GENL_HEADER.pack(command, 1, 0) + payload
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), family, NLM_F_REQUEST, sequence, 0) + body


def parse_stats(stats: bytes, arrived: float = 0.0) -> Exit:
    """One struct taskstats."""
    version = struct.unpack_from("=H", stats)[0]
    pid, ppid = PIDS.unpack_from(stats, PIDS_AT)
    utime, stime = TIMES.unpack_from(stats, TIMES_AT)
    tgid = TGID.unpack_from(stats, TGID_AT)[0] if version >= TGID_SINCE_VERSION else pid
    comm = stats[COMM].split(b"\0", 1)[0].decode("utf-8", "replace")
    return Exit(pid, tgid, ppid, comm, utime + stime, bool(stats[FLAG_AT] & AGROUP), arrived)


def parse_datagram(data: bytes, arrived: float = 0.0) -> list[Exit]:
    """The per-thread exit records in one datagram (a process's aggregate record, sent
    besides its threads' when it had several, is left out: its threads are counted)."""
    found = []
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        length = NLMSG_HEADER.unpack_from(data, offset)[0]
        if length < NLMSG_HEADER.size:
            break
        body = offset + NLMSG_HEADER.size + GENL_HEADER.size
        for kind, payload in attributes(data, body, offset + length):
            if kind == TYPE_AGGR_PID:
                for inner, stats in attributes(payload):
                    if inner == TYPE_STATS:
                        found.append(parse_stats(stats, arrived))
        offset += (length + 3) & ~3
    return found


def _family_id(sock: socket.socket) -> int:
    sock.send(message(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attribute(CTRL_ATTR_FAMILY_NAME, FAMILY_NAME)))
    data = sock.recv(65536)
    kind = NLMSG_HEADER.unpack_from(data)[1]
    if kind == NLMSG_ERROR:
        code = -struct.unpack_from("=i", data, NLMSG_HEADER.size)[0]
        raise OSError(code, f"taskstats: {errno.errorcode.get(code, code)}")
    for name, payload in attributes(data, NLMSG_HEADER.size + GENL_HEADER.size):
        if name == CTRL_ATTR_FAMILY_ID:
            return struct.unpack_from("=H", payload)[0]
    raise OSError(errno.ENOENT, "taskstats: the kernel has no TASKSTATS family")


def _open() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_GENERIC)
    try:
        sock.bind((0, 0))
        return sock, _family_id(sock)
    except BaseException:
        sock.close()
        raise


def online_cpus() -> str:
    with open("/sys/devices/system/cpu/online") as f:
        return f.read().strip()


def group_cpu_us(pid: int) -> int | None:
    """The user + system time so far of a live process (all its threads), in the same
    terms as the exit records; None when it is gone."""
    sock, family = _open()
    try:
        sock.send(message(family, TASKSTATS_CMD_GET, attribute(CMD_ATTR_TGID, struct.pack("=I", pid))))
        data = sock.recv(65536)
        if NLMSG_HEADER.unpack_from(data)[1] == NLMSG_ERROR:
            return None
        for kind, payload in attributes(data, NLMSG_HEADER.size + GENL_HEADER.size):
            if kind == TYPE_AGGR_TGID:
                for inner, stats in attributes(payload):
                    if inner == TYPE_STATS:
                        return TIMES.unpack_from(stats, TIMES_AT)[0] + TIMES.unpack_from(stats, TIMES_AT)[1]
        return None
    finally:
        sock.close()


class ExitListener:
    """Every thread exit on the machine while it listens, kept as ``Exit`` records (a
    reader thread drains the socket, so that a burst of exits does not overflow it).
    ``overflows`` holds the times the kernel dropped records all the same: a measurement
    spanning one of them may have lost some."""

    def __init__(self) -> None:
        self.exits: list[Exit] = []
        self.overflows: list[float] = []
        self._sock, family = _open()
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self._sock.send(message(family, TASKSTATS_CMD_GET,
                                attribute(CMD_ATTR_REGISTER_CPUMASK, online_cpus().encode() + b"\0")))
        self._sock.settimeout(POLL)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="taskstats", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.overflows.append(time.monotonic())
                    continue
                raise
            self.exits.extend(parse_datagram(data, time.monotonic()))

    def wait_for_exit(self, tgid: int, timeout: float) -> bool:
        """Wait until the last thread of process ``tgid`` has been recorded."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            found = self.exits[seen:]
            seen += len(found)
            if any(e.tgid == tgid and e.last for e in found):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL / 10)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def __enter__(self) -> "ExitListener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
