"""Membership by cgroup, the container's root ids, the upstream sender on real sockets."""

import os
import socket

import pytest
import trio

from shim.diagnostics import Diagnostics
from shim.notify.container_socket import container_root_ids
from shim.cgroups.membership import CGROUP2, parse_proc_cgroup
from shim.notify.membership import ContainerMembership, is_within, primary_hierarchy
from shim.notify.upstream import QUEUE_LIMIT, Upstream, socket_address

HYBRID = "12:pids:/c1\n1:name=systemd:/c1\n0::/c1\n"
V1 = "3:memory:/a/c1\n1:name=systemd:/c1/init.scope\n"


def test_parse_and_primary():
    assert parse_proc_cgroup(HYBRID) == {"pids": "/c1", "name=systemd": "/c1", CGROUP2: "/c1"}
    assert primary_hierarchy(parse_proc_cgroup(HYBRID)) == (CGROUP2, "/c1")
    assert primary_hierarchy(parse_proc_cgroup(V1)) == ("name=systemd", "/c1/init.scope")
    assert primary_hierarchy({}) is None


@pytest.mark.parametrize("path, inside", [("/c1", True), ("/c1/system.slice/x.service", True), ("/c10", False),
                                          ("/", False), ("/other/c1", False)])
def test_within(path, inside):
    assert is_within({CGROUP2: path}, (CGROUP2, "/c1")) is inside


def test_missing_hierarchy_is_outside():
    assert not is_within({"pids": "/c1"}, (CGROUP2, "/c1"))


def test_membership_of_real_processes():
    me = ContainerMembership.of_init(os.getpid())
    assert me.contains(os.getpid())
    assert not me.contains(0) and not me.contains(-1)
    assert not ContainerMembership(None).contains(os.getpid())
    assert not ContainerMembership((CGROUP2, "/no/such/cgroup")).contains(os.getpid())


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_membership_remembers_a_live_sender_and_forgets_it_once_gone():
    import subprocess

    me = ContainerMembership.of_init(os.getpid())
    child = subprocess.Popen(["sleep", "60"])
    try:
        before = _open_fds()
        assert me.contains(child.pid)
        assert _open_fds() == before + 1  # its pidfd, kept
        assert me.contains(child.pid)  # from the pidfd, no second one
        assert _open_fds() == before + 1
    finally:
        child.kill()
        child.wait()
    assert not me.contains(child.pid)  # gone: forgotten, its pidfd closed
    assert _open_fds() == before
    me.close()


def test_membership_holds_a_bounded_number_of_pidfds():
    import subprocess

    from shim.notify.membership import KNOWN_SENDERS_MAX

    me = ContainerMembership.of_init(os.getpid())
    children = [subprocess.Popen(["sleep", "60"]) for _ in range(KNOWN_SENDERS_MAX + 3)]
    try:
        before = _open_fds()
        assert all(me.contains(child.pid) for child in children)
        assert _open_fds() == before + KNOWN_SENDERS_MAX
        me.close()
        assert _open_fds() == before
    finally:
        for child in children:
            child.kill()
            child.wait()


async def test_upstream_run_is_woken_by_a_send_from_another_thread(tmp_path):
    sock, path = listener(tmp_path)
    up = Upstream(path, Diagnostics())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(up.run)
        await trio.testing.wait_all_tasks_blocked()  # run() sleeps: nothing is queued
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        filler.connect(path)
        filler.setblocking(False)
        filled = 0
        with pytest.raises(BlockingIOError):
            while True:  # the host's socket full: the next send has to queue
                filler.send(b"filler")
                filled += 1
        # The relay thread's send: it queues, and wakes run() through trio's token.
        await trio.to_thread.run_sync(up.send, b"STATUS=from a thread")
        assert up._queue and up.sent == 0
        got = await received(sock, filled + 1)
        nursery.cancel_scope.cancel()
    assert got[-1] == b"STATUS=from a thread" and up.sent == 1
    filler.close()
    up.close()


async def test_run_in_thread_stops_the_thread_when_cancelled():
    import threading

    from shim.notify.container_socket import run_in_thread

    started, stopped = threading.Event(), threading.Event()

    def work(stop_fd):
        import select

        started.set()
        select.select([stop_fd], [], [])
        stopped.set()

    with trio.move_on_after(0.2):
        await run_in_thread(work)
    assert started.is_set() and stopped.is_set()  # waited for, not abandoned


def test_root_ids():
    assert container_root_ids({}) == (0, 0)
    config = {"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                        "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]}}
    assert container_root_ids(config) == (100000, 200000)


def test_abstract_addresses():
    assert socket_address("@x/y") == b"\0x/y"
    assert socket_address("/run/x") == "/run/x"


def listener(tmp_path, bufsize=None):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if bufsize:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
    path = str(tmp_path / "host.sock")
    sock.bind(path)
    return sock, path


async def received(sock, count: int) -> list[bytes]:
    """The next ``count`` datagrams at the host's socket, within 5 s."""
    got = []
    with trio.fail_after(5):
        while len(got) < count:
            await trio.lowlevel.wait_readable(sock)
            got.append(sock.recv(100))
    return got


def test_upstream_sends_in_order(tmp_path):
    sock, path = listener(tmp_path)
    up = Upstream(path, Diagnostics())
    for i in range(5):
        up.send(b"STATUS=%d" % i)
    assert [sock.recv(100) for _ in range(5)] == [b"STATUS=%d" % i for i in range(5)]
    up.close()


def test_upstream_to_nowhere_warns_once_and_drops(tmp_path, capfd):
    up = Upstream(str(tmp_path / "absent.sock"), Diagnostics())
    up.send(b"READY=1")
    up.send(b"READY=1")
    assert up.dropped == 2
    err = capfd.readouterr().err
    assert err.count("cannot reach NOTIFY_SOCKET") == 1
    up.close()


async def test_upstream_queues_when_full_and_drains_in_order(tmp_path):
    sock, path = listener(tmp_path)
    up = Upstream(path, Diagnostics())
    sent = 0
    while True:  # fill the host's queue until a send has to wait (and is queued)
        up.send(b"STATUS=%d" % sent)
        sent += 1
        if up.sent < sent:
            break
    queued_from = sent
    for i in range(queued_from, queued_from + 10):
        up.send(b"STATUS=%d" % i)
    r, w = os.pipe()
    up.barrier(w)  # closed only after the 10 queued messages went out
    async with trio.open_nursery() as nursery:
        nursery.start_soon(up.run)
        got = await received(sock, queued_from + 10)
        nursery.cancel_scope.cancel()
    assert got == [b"STATUS=%d" % i for i in range(queued_from + 10)]
    assert os.read(r, 1) == b""  # the barrier fd was closed
    os.close(r)
    up.close()


def test_upstream_bounded_queue(tmp_path, capfd):
    sock, path = listener(tmp_path)
    up = Upstream(path, Diagnostics())
    for i in range(QUEUE_LIMIT * 3):
        up.send(b"WATCHDOG=1")
    assert up.dropped > 0
    assert capfd.readouterr().err.count("no room") == 1
    up.close()


async def test_relay_backpressure_waits_for_the_backlog(tmp_path):
    from shim.notify.upstream import RELAY_ROOM

    sock, path = listener(tmp_path)
    up = Upstream(path, Diagnostics())
    while up.has_room():  # fill the host's queue, then the shim's, to the relay's limit
        up.send(b"WATCHDOG=1")
    assert up.dropped == 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(up.run)

        async def host_reads():
            while True:
                await trio.lowlevel.wait_readable(sock)
                sock.recv(100)

        nursery.start_soon(host_reads)
        with trio.fail_after(5):
            await up.wait_for_room()
        assert up.has_room() and len(up._queue) < RELAY_ROOM
        nursery.cancel_scope.cancel()
    up.close()


def test_unpack_reads_fds_and_the_senders_pid():
    import sys

    from shim.notify.container_socket import _unpack

    fds = (7).to_bytes(4, sys.byteorder) + (9).to_bytes(4, sys.byteorder)
    ucred = (1234).to_bytes(4, sys.byteorder) + (0).to_bytes(8, sys.byteorder)
    assert _unpack([(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds),
                    (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, ucred)]) == ([7, 9], 1234)
    # a truncated SCM_RIGHTS keeps its whole ints; other levels and short creds are ignored
    assert _unpack([(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds[:6]), (socket.IPPROTO_IP, 1, ucred),
                    (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, ucred[:8])]) == ([7], 0)
    assert _unpack([]) == ([], 0)
