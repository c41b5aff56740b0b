"""The relay's rules, line by line, and properties over any datagram."""

import pytest
from hypothesis import given, settings, strategies as st

from shim.notify.protocol import FORWARDED_KEYS, NOTIFY_BUFFER_MAX, judge, shim_messages
from shim.notify.session import resolve_mode


@pytest.mark.parametrize("line", [
    "READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1", "WATCHDOG=trigger", "STATUS=warming up",
    "STATUS=", "STATUS=ünïcode ✓", "STATUS=tab\there", "ERRNO=2", "BUSERROR=org.freedesktop.DBus.Error.Failed",
    "WATCHDOG_USEC=5000000", "EXTEND_TIMEOUT_USEC=20000000",
])
def test_forwarded(line):
    assert judge(line.encode()).forward == [line]


@pytest.mark.parametrize("line", [
    "MAINPID=1", "MAINPIDFD=1", "MAINPIDFDID=7", "NOTIFYACCESS=all", "FDSTORE=1", "FDSTOREREMOVE=1",
    "FDNAME=x", "FDPOLL=0", "X_SYSTEMD_UNIT_ACTIVE=x.service", "X_SYSTEMD_SIGNALS_LEVEL=2", "X_PRIVATE=1",
    "UNKNOWN=1", "READY=0", "READY=yes", "WATCHDOG=0", "RELOADING=0", "STOPPING=true", "ERRNO=-1", "ERRNO=x",
    "WATCHDOG_USEC=1e6", "EXTEND_TIMEOUT_USEC=", "BUSERROR=", "BUSERROR=no spaces", "STATUS=a\rb",
    "STATUS=bell\x07", "MONOTONIC_USEC=123", "ready=1", "NOEQUALS", "=1", "KEY WITH SPACE=1", "ERRNO=٣",
    "EXIT_STATUS=3", "RESTART_RESET=1", "VARLINKERROR=x",
])
def test_not_forwarded(line):
    verdict = judge(line.encode())
    assert verdict.forward == [] and verdict.message() is None
    assert verdict.dropped


def test_several_lines_keep_their_order_and_lose_the_rest():
    verdict = judge(b"STATUS=one\nMAINPID=1\nREADY=1\n\nX_FOO=bar\nSTATUS=two\n")
    assert verdict.forward == ["STATUS=one", "READY=1", "STATUS=two"]
    assert verdict.message() == b"STATUS=one\nREADY=1\nSTATUS=two"


def test_reloading_carries_its_timestamp():
    assert judge(b"RELOADING=1\nMONOTONIC_USEC=123456").forward == ["RELOADING=1", "MONOTONIC_USEC=123456"]


def test_signals_level_is_noted_not_forwarded():
    verdict = judge(b"X_SYSTEMD_SIGNALS_LEVEL=2\nSTATUS=x")
    assert verdict.signals_ready and verdict.forward == ["STATUS=x"]
    assert not judge(b"X_SYSTEMD_SIGNALS_LEVEL=1").signals_ready
    assert not judge(b"STATUS=booting").signals_ready
    assert judge(b"READY=1\nSTATUS=Ready.").signals_ready  # systemd 252 sends no level


@pytest.mark.parametrize("data, fds, barrier", [
    (b"BARRIER=1", 1, True), (b"BARRIER=1\n", 1, True),
    (b"BARRIER=1", 0, False), (b"BARRIER=1", 2, False), (b"BARRIER=1\nREADY=1", 1, False),
])
def test_barrier_only_alone_with_one_fd(data, fds, barrier):
    verdict = judge(data, fds)
    assert verdict.barrier is barrier
    assert verdict.forward == []  # a barrier never travels, and it voids what it came with


def test_oversized_truncated_and_binary_datagrams_are_dropped_whole():
    assert judge(b"READY=1\n" + b"X" * NOTIFY_BUFFER_MAX).message() is None
    assert judge(b"READY=1", truncated=True).message() is None
    assert judge(b"READY=1\n\xff\xfe").message() is None
    assert judge(b"READY=1\n" + b"S" * (NOTIFY_BUFFER_MAX - 8)).message() == b"READY=1"  # exactly 4096 bytes: fine


def test_fds_with_ordinary_messages_are_reported_for_closing():
    verdict = judge(b"FDSTORE=1\nREADY=1", fd_count=2)
    assert verdict.forward == ["READY=1"] and not verdict.barrier
    assert any("2 fds" in reason for reason in verdict.dropped)


def allowed(line: str) -> bool:
    key = line.partition("=")[0]
    return key in FORWARDED_KEYS


@settings(max_examples=500)
@given(st.binary(max_size=5000), st.integers(0, 3), st.booleans())
def test_any_datagram_forwards_only_allowed_keys(data, fds, truncated):
    verdict = judge(data, fds, truncated)
    message = verdict.message()
    if message is not None:
        assert len(message) <= NOTIFY_BUFFER_MAX
        lines = message.decode().split("\n")
        assert all(allowed(line) for line in lines)
        assert not any(line.startswith("MAINPID") for line in lines)
        assert not verdict.barrier


lines = st.one_of(
    st.sampled_from(["READY=1", "MAINPID=1", "MAINPID=42", "STATUS=ok", "FDSTORE=1", "BARRIER=1", "RELOADING=1",
                     "MONOTONIC_USEC=5", "X_SYSTEMD_SIGNALS_LEVEL=2", "WATCHDOG=1", "NOTIFYACCESS=all"]),
    st.builds(lambda k, v: f"{k}={v}", st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=12),
              st.text(max_size=20)),
    st.text(max_size=30),
)


@settings(max_examples=500)
@given(st.lists(lines, max_size=12), st.integers(0, 2))
def test_any_structured_datagram_forwards_a_subset_of_its_allowed_lines(parts, fds):
    data = "\n".join(parts).encode()
    verdict = judge(data, fds)
    for line in verdict.forward:
        assert allowed(line) and line in parts and not line.startswith("MAINPID")
    if verdict.barrier:
        assert fds == 1 and [p for p in parts if p] == ["BARRIER=1"]


def test_shim_messages():
    assert shim_messages("attached", 42, False) == b"MAINPID=42"
    assert shim_messages("running", 42, True) == b"MAINPID=42\nREADY=1\nSTATUS=running"
    assert shim_messages("stopping", 42, True) == b"STOPPING=1\nSTATUS=stopping"
    assert shim_messages("stopping", 42, False) == b"STOPPING=1"


@pytest.mark.parametrize("flag, systemd, socket, mode", [
    ("auto", True, "/run/n", "container"), ("auto", False, "/run/n", "shim"),
    ("container", False, "/run/n", "container"), ("shim", True, "/run/n", "shim"),
    ("ignore", True, "/run/n", None), ("auto", True, None, None), ("container", False, "", None),
    ("shim", False, None, None),
])
def test_modes(flag, systemd, socket, mode):
    assert resolve_mode(flag, systemd, socket) == mode
