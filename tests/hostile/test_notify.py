"""The sd_notify relay under attack: fuzzed datagrams (with fds, oversize, truncated,
not UTF-8) from inside the container and from outside it, and a flood from both sides at
once. What reaches the host's NOTIFY_SOCKET is exactly what the pure rules
(shim.notify.protocol.judge) allow, from the container's processes alone, and the shim's
fds and memory stay flat."""

from __future__ import annotations

import array
import os
import signal
import socket
import threading
import time

import psutil
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from shim.notify.protocol import NOTIFY_BUFFER_MAX, judge
from tests.helpers.harness import assert_fds_flat, held_fds, wait_for_file, wait_for_trio

pytestmark = [pytest.mark.integration, pytest.mark.hostile]

# Lines a hostile payload would try: the relayed keys with good and bad values, the keys
# that must never reach the host, and junk.
ALLOWED_LINES = ["READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "WATCHDOG=trigger", "STATUS=fine",
                 "STATUS=ünïcödé", "ERRNO=2", "BUSERROR=org.freedesktop.DBus.Error.Failed", "WATCHDOG_USEC=1000000",
                 "EXTEND_TIMEOUT_USEC=5000000", "MONOTONIC_USEC=123"]
FORBIDDEN_LINES = ["MAINPID=1", "MAINPIDFDID=7", "NOTIFYACCESS=all", "FDSTORE=1", "FDSTOREREMOVE=1", "FDNAME=x",
                   "FDPOLL=0", "BARRIER=1", "X_SYSTEMD_UNIT_ACTIVE=evil", "X_SYSTEMD_SIGNALS_LEVEL=2", "EXIT_STATUS=3",
                   "STATUS=with\x01control", "ERRNO=-1", "ERRNO=two", "BUSERROR=no spaces", "READY=0", "WATCHDOG=2",
                   "=value", "lower=case", "NOEQUALS", "STATUS"]
FORWARDED_KEYS = {line.split("=", 1)[0] for line in ALLOWED_LINES}

lines = st.one_of(st.sampled_from(ALLOWED_LINES), st.sampled_from(FORBIDDEN_LINES),
                  st.builds(lambda key, value: f"{key}={value}", st.sampled_from(sorted(FORWARDED_KEYS)),
                            st.text(max_size=40)),
                  st.text(max_size=60))
structured = st.builds(lambda ls, end: ("\n".join(ls) + end).encode("utf-8", "surrogatepass"),
                       st.lists(lines, max_size=8), st.sampled_from(["", "\n"]))
datagrams = st.one_of(
    structured,
    st.binary(max_size=300),
    # around the 4096-byte limit: the relay reads 4096 bytes, anything longer is truncated
    st.builds(lambda n: b"STATUS=" + b"x" * n, st.integers(NOTIFY_BUFFER_MAX - 12, NOTIFY_BUFFER_MAX + 8)),
    st.builds(lambda n: b"READY=1\n" * n, st.integers(500, 700)),
)
# mostly none; sometimes a few; now and then the most one message can carry
fd_counts = st.integers(0, 20).map(lambda i: 0 if i < 15 else 253 if i == 20 else i - 14)


def generate(count: int) -> list[tuple[bytes, int]]:
    """At least ``count`` datagrams with their fd counts, drawn by hypothesis ten at a time
    (its cost is per example: one datagram per example would take twice as long)."""
    found: list[tuple[bytes, int]] = []
    while len(found) < count:

        @settings(max_examples=-(-(count - len(found)) // 8), database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(st.lists(st.tuples(datagrams, fd_counts), min_size=8, max_size=12))
        def collect(batch):
            found.extend(batch)

        collect()
    return found


class RelayPayload:
    """The notifier's ``relay`` scenario in a container under ``shim run``: whatever the
    test feeds it is sent to the shim's socket by a process of the container."""

    def __init__(self, harness, tmp_path, listener) -> None:
        self.out = tmp_path / "out"
        self.out.mkdir()
        bundle = harness.python_bundle("notifier.py", "relay", "/out/feed.sock", out_dir=str(self.out))
        self.proc = harness.start(None, "--sdnotify=container", bundle=bundle,
                                  env=dict(os.environ, NOTIFY_SOCKET=listener.path))
        self.container_socket = os.path.join(harness.state_dir, self.proc.container_id, "notify", "notify.sock")
        feed_path = str(self.out / "feed.sock")
        deadline = time.monotonic() + 30
        while not os.path.exists(feed_path):
            assert time.monotonic() < deadline and self.proc.poll() is None, "the relay never started"
            time.sleep(0.01)
        self.feed = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.feed.connect(feed_path)
        self.shim = psutil.Process(self.proc.pid)
        wait_for_trio(self.proc.pid)  # fds and memory are measured from here: trio's own are open

    def send(self, data: bytes, fds: int = 0) -> None:
        self.feed.send(bytes([fds]) + data)

    def stop(self) -> int:
        self.feed.send(b"\xff")
        self.feed.close()
        wait_for_file(str(self.out / "done"))
        os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.communicate(timeout=30)
        return self.proc.returncode


def send_from_outside(path: str, data: bytes, fds: int) -> None:
    """A host process (the test's) that is not the container's, with fds of its own. (The
    path is reached through its directory's fd: an engine's is longer than an address.)"""
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(fds)]
    directory = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", opened))] if opened else []
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as outsider:
            outsider.sendmsg([data], ancillary, 0, f"/proc/self/fd/{directory}/{os.path.basename(path)}")
    finally:
        for fd in opened + [directory]:
            os.close(fd)


def between(listener, begin: str, end: str) -> list[bytes]:
    datagrams = [data for _, data, _, _ in listener.messages]
    first = datagrams.index(begin.encode())
    return datagrams[first + 1:datagrams.index(end.encode(), first)]


def test_fuzzed_datagrams_reach_the_host_exactly_as_the_rules_say(shim_runc, tmp_path, listener, scale, figures):
    began = time.monotonic()
    examples = generate(scale.fuzz_datagrams)
    generated = time.monotonic()
    relay = RelayPayload(shim_runc, tmp_path, listener)
    relay.send(b"STATUS=fuzz-begin")
    listener.wait_for("STATUS=fuzz-begin")
    fds_before, rss_before = held_fds(relay.proc.pid), relay.shim.memory_info().rss
    for data, fds in examples:
        relay.send(data, fds)
        send_from_outside(relay.container_socket, data, fds)  # the same, from a stranger: never heard
    relay.send(b"STATUS=fuzz-end")
    listener.wait_for("STATUS=fuzz-end", timeout=120)
    sent = time.monotonic()
    fds_after, rss_after = assert_fds_flat(relay.proc.pid, fds_before), relay.shim.memory_info().rss
    assert relay.stop() == 0

    expected = [m for m in (judge(data, fds, len(data) > NOTIFY_BUFFER_MAX).message() for data, fds in examples)
                if m is not None]
    received = between(listener, "STATUS=fuzz-begin", "STATUS=fuzz-end")
    assert received == expected
    assert {pid for pid, _, _, _ in listener.messages} == {relay.proc.pid}
    assert all(fds == 0 for _, _, fds, _ in listener.messages)
    for line in b"\n".join(received).decode().split("\n"):
        assert line.split("=", 1)[0] in FORWARDED_KEYS, line
    assert rss_after - rss_before < 4 * 1024 * 1024
    figures.record("datagrams fuzzed from inside (and the same from outside)", len(examples))
    figures.record("datagrams with fds", sum(1 for _, fds in examples if fds))
    figures.record("over 4096 bytes", sum(1 for data, _ in examples if len(data) > NOTIFY_BUFFER_MAX))
    figures.record("forwarded", len(expected))
    figures.record("forbidden keys forwarded", 0)
    figures.record("outsider datagrams forwarded", 0)
    figures.record("shim fds before/after", f"{sum(fds_before.values())}/{fds_after}")
    figures.record("shim RSS growth", round((rss_after - rss_before) / 1024), "KiB")
    figures.record("hypothesis generation", round(generated - began, 1), "s")
    figures.record("relayed both ways", round(sent - generated, 1), "s")


def test_a_flood_from_inside_and_outside_at_once(shim_runc, tmp_path, listener, scale, figures):
    """The container floods at scale.notify_rate for scale.notify_seconds while a host
    process floods the same socket with allowed messages carrying fds: every message of
    the container arrives, in order; none of the stranger's; fds and memory stay flat;
    a stop is answered at once."""
    count = scale.notify_rate * scale.notify_seconds
    out = tmp_path / "out"
    out.mkdir()
    bundle = shim_runc.python_bundle("notifier.py", "flood", str(count), out_dir=str(out))
    proc = shim_runc.start(None, "--sdnotify=container", bundle=bundle,
                           env=dict(os.environ, NOTIFY_SOCKET=listener.path))
    listener.wait_for("STATUS=0")  # the relay runs (on the main thread until trio does)
    shim = psutil.Process(proc.pid)
    wait_for_trio(proc.pid)
    listener.wait_for_another()  # relayed by trio's task: the shim is fully up, its fds open
    fds_before, rss_before = held_fds(proc.pid), shim.memory_info().rss
    path = os.path.join(shim_runc.state_dir, proc.container_id, "notify", "notify.sock")
    flooding = threading.Event()
    outside = [0]

    def flood_from_outside() -> None:
        null = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", null))]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as outsider:
            outsider.connect(path)
            began = time.monotonic()
            while flooding.is_set():
                outsider.sendmsg([b"READY=1\nSTATUS=outsider"], ancillary)
                outside[0] += 1
                pause = began + outside[0] / scale.notify_rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        for fd in null:
            os.close(fd)

    flooding.set()
    stranger = threading.Thread(target=flood_from_outside)
    stranger.start()
    began = time.monotonic()
    try:
        listener.wait_for("STATUS=flood-done", timeout=scale.notify_seconds * 10 + 30)
    finally:
        flooding.clear()
        stranger.join()
    took = time.monotonic() - began
    fds_after, rss_after = assert_fds_flat(proc.pid, fds_before), shim.memory_info().rss
    stop_began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    stop_took = time.monotonic() - stop_began
    assert proc.returncode == 0
    statuses = [l for l in listener.lines() if l.startswith("STATUS=") and l[7:].isdigit()]
    assert statuses == [f"STATUS={i}" for i in range(count)]
    assert "STATUS=outsider" not in listener.lines()
    assert {pid for pid, _, _, _ in listener.messages} == {proc.pid}
    assert rss_after - rss_before < 4 * 1024 * 1024
    assert stop_took < 5, stop_took
    figures.record("messages from inside, all relayed in order", count)
    figures.record("rate from inside", round(count / took), "msg/s")
    figures.record("datagrams from outside (3 fds each), none relayed", outside[0])
    figures.record("shim fds before/after", f"{sum(fds_before.values())}/{fds_after}")
    figures.record("shim RSS growth", round((rss_after - rss_before) / 1024), "KiB")
    figures.record("SIGTERM to exit after the flood", round(stop_took, 3), "s")


def test_the_engines_relay_hears_only_the_container(podman, listener):
    """podman --sdnotify=container: the monitor relays the container's messages to the
    host's socket, and a host process writing to the socket podman mounted into the
    container is not heard."""
    from tests.helpers import oci
    from tests.helpers.harness import PAYLOADS
    from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE

    volumes = [arg for host, inside, _ in oci.host_python_binds() + [(PAYLOADS, "/payloads", True)]
               for arg in ("-v", f"{host}:{inside}:ro")]
    env = {"NOTIFY_SOCKET": listener.path}
    cid = podman.out("run", "-d", "--sdnotify=container", *volumes, IMAGE, "/usr/bin/python3", "-IS",
                     "/payloads/notifier.py", "ping", env=env)
    listener.wait_for("READY=1")
    bundle = podman.out("inspect", "--format", "{{.StaticDir}}", cid)
    path = os.path.join(bundle, "notify", "notify.sock")
    for data in (b"READY=1\nSTATUS=outsider", b"STATUS=outsider\nMAINPID=1", b"X_SYSTEMD_UNIT_ACTIVE=outsider"):
        send_from_outside(path, data, 2)
    podman("kill", "--signal", "USR1", cid)
    listener.wait_for("STATUS=ping-1")  # after the stranger's datagrams on the same socket
    assert not [line for line in listener.lines() if "outsider" in line]
    monitor = podman.conmon_pid(cid)
    relayed = {pid for pid, data, _, _ in listener.messages if not data.startswith(b"MAINPID=")}
    assert relayed == {monitor}  # (podman itself says MAINPID=)
    podman("stop", "-t", "5", cid)
    assert podman.out("inspect", "--format", "{{.State.ExitCode}}", cid) == "0"
