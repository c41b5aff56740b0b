"""Exit-status encoding, checked against real wait statuses from the kernel."""

import os
import signal

import pytest
from hypothesis import given, strategies as st

from shim.process.exit_status import describe, exit_code, killed_by


def real_status(script: str) -> int:
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", script], os.environ)
    return os.waitpid(pid, 0)[1]


@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 7", 7), ("exit 255", 255),
                                          ("kill -KILL $$", 137), ("kill -TERM $$", 143), ("kill -INT $$", 130)])
def test_real_statuses(script, code):
    assert exit_code(real_status(script)) == code


def test_describe():
    assert describe(real_status("exit 7")) == "exited 7"
    assert describe(real_status("kill -TERM $$")) == "killed by SIGTERM (143)"
    assert killed_by(real_status("exit 1")) is None
    assert killed_by(real_status("kill -KILL $$")) == signal.SIGKILL


@given(st.integers(0, 255))
def test_exit_codes_round_trip(code):
    assert exit_code(code << 8) == code


@given(st.integers(1, 64))
def test_signals_add_128(signum):
    assert exit_code(signum) == 128 + signum


def test_stopped_status_is_refused():
    with pytest.raises(ValueError):
        exit_code(0x137f)  # WIFSTOPPED
