"""The engine's pipes: conmon's JSON, byte for byte, decodable by any JSON reader (pure),
and written to every kind of fd an engine passes."""

import json
import os
import socket

import pytest
from hypothesis import given, strategies as st

from shim.conmon.sync_pipe import EnginePipe, encode, escape, fd_from_env, wait_for_start
from shim.errors import ShimError


def test_conmons_exact_bytes():
    assert encode("data", 1234) == b'{"data": 1234}\n'
    assert encode("data", -1, 'runc: "x"\tfailed\n') == b'{"data": -1, "message": "runc: \\"x\\"\\tfailed\\n"}\n'
    assert encode("pid", 7) == b'{"pid": 7}\n'
    assert encode("exit_code", 0) == b'{"exit_code": 0}\n'


def test_a_message_ends_at_nul_like_a_c_string():
    assert escape("before\x00after") == "before"


@given(st.text(max_size=300), st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_every_message_is_valid_json_that_round_trips(message, value):
    decoded = json.loads(encode("data", value, message))
    assert decoded["data"] == value
    assert decoded["message"] == message.split("\x00")[0][:8191]


@pytest.mark.parametrize("kind", ["seqpacket", "stream", "pipe"])
def test_messages_reach_the_engine_on_every_kind_of_pipe(kind):
    if kind == "pipe":
        theirs, ours = os.pipe()
    else:
        a, b = socket.socketpair(socket.AF_UNIX, getattr(socket, f"SOCK_{kind.upper()}"))
        theirs, ours = a.detach(), b.detach()
    pipe = EnginePipe(ours, "data")
    assert pipe.send(42)
    assert os.read(theirs, 100) == b'{"data": 42}\n'
    os.close(theirs)
    assert pipe.send(-1, "nobody listens") is False  # EPIPE: the message is lost, not the monitor
    assert pipe.fd is None


def test_the_start_pipe():
    r, w = os.pipe()
    os.write(w, b"\0")
    assert wait_for_start(r) is True
    os.close(w)
    assert wait_for_start(r) is False  # closed unwritten: the engine is gone
    os.close(r)


def test_fd_numbers_from_the_environment():
    r, w = os.pipe()
    os.set_inheritable(r, True)
    try:
        assert fd_from_env({"_OCI_SYNCPIPE": str(r)}, "_OCI_SYNCPIPE") == r
        assert not os.get_inheritable(r)  # close-on-exec from now on
        assert fd_from_env({}, "_OCI_SYNCPIPE") is None
        with pytest.raises(ShimError, match="unable to parse _OCI_SYNCPIPE"):
            fd_from_env({"_OCI_SYNCPIPE": "3x"}, "_OCI_SYNCPIPE")
    finally:
        os.close(r)
        os.close(w)
