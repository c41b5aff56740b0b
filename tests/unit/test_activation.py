"""LISTEN_FDS rules (pure)."""

import pytest
from hypothesis import given, strategies as st

from shim.activation.listen_fds import PID_WRAPPER, Activation, hand_over, parse_activation
from shim.errors import ShimError

ME = 4242


def test_not_for_us_is_ignored():
    assert parse_activation({}, ME, 1024) is None
    assert parse_activation({"LISTEN_FDS": "2"}, ME, 1024) is None  # no LISTEN_PID
    assert parse_activation({"LISTEN_PID": "1", "LISTEN_FDS": "2"}, ME, 1024) is None
    assert parse_activation({"LISTEN_PID": "1", "LISTEN_FDS": "garbage"}, ME, 1024) is None
    assert parse_activation({"LISTEN_PID": str(ME)}, ME, 1024) is None  # as sd_listen_fds(): 0 fds


def test_for_us():
    activation = parse_activation({"LISTEN_PID": str(ME), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}, ME, 1024)
    assert (activation.count, activation.names, activation.fds) == (2, "a:b", (3, 4))


@pytest.mark.parametrize("env, fragment", [
    ({"LISTEN_PID": str(ME), "LISTEN_FDS": "x"}, "LISTEN_FDS='x' is not a positive integer"),
    ({"LISTEN_PID": str(ME), "LISTEN_FDS": ""}, "LISTEN_FDS='' is not a positive integer"),
    ({"LISTEN_PID": str(ME), "LISTEN_FDS": "0"}, "not a positive integer"),
    ({"LISTEN_PID": str(ME), "LISTEN_FDS": "²"}, "not a positive integer"),
    ({"LISTEN_PID": str(ME), "LISTEN_FDS": "1022"}, "beyond the fd limit (1024)"),
    ({"LISTEN_PID": "x", "LISTEN_FDS": "1"}, "LISTEN_PID='x' is not a pid"),
    ({"LISTEN_PID": "0", "LISTEN_FDS": "1"}, "is not a pid"),
])
def test_bad_values_name_the_variable(env, fragment):
    with pytest.raises(ShimError) as e:
        parse_activation(env, ME, 1024)
    assert fragment in str(e.value) and e.value.exit_code == 125


@given(st.dictionaries(st.sampled_from(["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]), st.text(max_size=8)))
def test_any_environment_is_parsed_or_refused(env):
    try:
        activation = parse_activation(env, ME, 1024)
    except ShimError as e:
        assert "LISTEN_" in str(e)
    else:
        if activation is not None:
            assert env["LISTEN_PID"] == str(ME) and 1 <= activation.count <= 1021


def config(env=None):
    return {"process": {"args": ["serve", "--x"], "env": env or ["PATH=/bin", "LISTEN_PIDFDID=9", "LISTEN_FDS=7"]}}


def test_hand_over_in_a_pid_namespace():
    c = config()
    hand_over(c, Activation(2, "a:b"), own_pid_namespace=True, has_shell=False)
    assert c["process"]["env"] == ["PATH=/bin", "LISTEN_FDS=2", "LISTEN_FDNAMES=a:b", "LISTEN_PID=1"]
    assert c["process"]["args"] == ["serve", "--x"]


def test_hand_over_in_the_hosts_pid_namespace_wraps_the_command():
    c = config()
    hand_over(c, Activation(1, None), own_pid_namespace=False, has_shell=True)
    assert c["process"]["env"] == ["PATH=/bin", "LISTEN_FDS=1"]
    assert c["process"]["args"] == PID_WRAPPER + ["serve", "--x"]
    with pytest.raises(ShimError, match="no /bin/sh"):
        hand_over(config(), Activation(1, None), own_pid_namespace=False, has_shell=False)
