import signal

import pytest
from hypothesis import given, strategies as st

from shim.errors import UsageError
from shim.signals.catalog import (STOP_REQUESTS, SYNCHRONOUS_FAULTS, forwarded_signals, parse_signal,
                                  routed_signals, signal_name)


@pytest.mark.parametrize("text, signum", [
    ("TERM", signal.SIGTERM), ("SIGTERM", signal.SIGTERM), ("sigterm", signal.SIGTERM), ("15", 15),
    ("KILL", signal.SIGKILL), ("HUP", signal.SIGHUP), ("WINCH", signal.SIGWINCH),
    ("RTMIN", signal.SIGRTMIN), ("RTMIN+3", signal.SIGRTMIN + 3), ("SIGRTMIN+3", signal.SIGRTMIN + 3),
    ("rtmin+3", signal.SIGRTMIN + 3), ("RTMAX", signal.SIGRTMAX), ("SIGRTMAX-2", signal.SIGRTMAX - 2),
    (str(signal.SIGRTMIN + 3), signal.SIGRTMIN + 3), (" TERM ", signal.SIGTERM), ("IOT", signal.SIGABRT),
])
def test_parse(text, signum):
    assert parse_signal(text) == signum


@pytest.mark.parametrize("text", ["", "0", "65", "99", "NOPE", "SIG", "RTMIN-1", "RTMAX+1", "RTMIN+31",
                                  "RTMIN+x", "RTMAX+0", "RTMIN3", "-15", "1.5", "32", "33"])
def test_parse_rejects(text):
    with pytest.raises(UsageError):
        parse_signal(text)


def test_names():
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(signal.SIGRTMIN) == "SIGRTMIN"
    assert signal_name(signal.SIGRTMIN + 3) == "SIGRTMIN+3"


@given(st.sampled_from(sorted(signal.valid_signals())))
def test_names_parse_back(signum):
    assert parse_signal(signal_name(signum)) == signum


def test_forwarded_set():
    forwarded = forwarded_signals()
    for name in ("SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN",
                 "SIGTTOU", "SIGALRM", "SIGPIPE", "SIGURG", "SIGPWR"):
        assert getattr(signal, name) in forwarded
    assert set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)) <= forwarded
    assert not forwarded & (SYNCHRONOUS_FAULTS | STOP_REQUESTS | {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP})
    assert routed_signals() == forwarded | STOP_REQUESTS | {signal.SIGCHLD}
    assert forwarded_signals(frozenset()) == forwarded | STOP_REQUESTS
