"""``shim run`` flags: defaults, checks, and the exit code of every mistake."""

import signal

import pytest

from shim.cli.run_options import DEFAULT_STOP_TIMEOUT, parse_run_options, run_help
from shim.errors import UsageError


def test_defaults():
    options = parse_run_options(["c1"], "/work")
    assert options.container_id == "c1"
    assert options.bundle == "/work/."
    assert options.runtime is None and options.runtime_args == []
    assert options.stop_timeout == DEFAULT_STOP_TIMEOUT
    assert options.stop_signal is None
    assert (options.sdnotify, options.systemd, options.log_level) == ("auto", "true", "warning")


def test_every_flag():
    options = parse_run_options([
        "-b", "b", "-r", "runc", "--runtime-arg", "--debug", "--runtime-arg=--root=/x",
        "--state-dir", "st", "--pid-file", "p/pid", "--exit-dir", "/ex", "--exit-command", "/bin/true",
        "--exit-command-arg", "a", "--exit-command-arg", "--b", "--stop-signal", "RTMIN+3",
        "--stop-timeout", "1.5", "--sdnotify", "container", "--systemd=always", "--log-level", "debug", "c1",
    ], "/work")
    assert options.bundle == "/work/b"
    assert options.runtime == "runc"
    assert options.runtime_args == ["--debug", "--root=/x"]
    assert options.state_dir == "/work/st"
    assert options.pid_file == "/work/p/pid"
    assert options.exit_dir == "/ex"
    assert options.exit_command_args == ["a", "--b"]
    assert options.stop_signal == signal.SIGRTMIN + 3
    assert options.stop_timeout == 1.5
    assert (options.sdnotify, options.systemd, options.log_level) == ("container", "always", "debug")


def test_help_returns_none_and_documents_exit_codes():
    assert parse_run_options(["--help"], "/") is None
    text = run_help()
    for code in ("125", "126", "127"):
        assert code in text
    assert "--stop-timeout" in text and "systemd mode" in text


@pytest.mark.parametrize("argv, fragment", [
    ([], "needs exactly one container ID"),
    (["a", "b"], "takes one container ID, got 2"),
    (["../x"], "invalid container ID '../x'"),
    ([""], "invalid container ID ''"),
    (["a b"], "invalid container ID 'a b'"),
    (["--stop-timeout", "soon", "c"], "--stop-timeout must be a number"),
    (["--stop-timeout", "-1", "c"], "--stop-timeout must be a number"),
    (["--stop-timeout", "nan", "c"], "--stop-timeout must be a number"),
    (["--stop-signal", "NOPE", "c"], "'NOPE' is not a signal"),
    (["--sdnotify", "loud", "c"], "--sdnotify must be one of auto, container, shim, ignore"),
    (["--systemd", "maybe", "c"], "--systemd must be one of true, false, always"),
    (["--log-level", "chatty", "c"], "--log-level must be one of"),
    (["--exit-command-arg", "x", "c"], "--exit-command-arg needs --exit-command"),
    (["--frobnicate", "c"], "unknown flag --frobnicate"),
])
def test_mistakes_are_usage_errors(argv, fragment):
    with pytest.raises(UsageError) as e:
        parse_run_options(argv, "/")
    assert fragment in str(e.value)
    assert e.value.exit_code == 125


def test_log_drivers_and_their_flags():
    o = parse_run_options(["--log-driver", "k8s-file,journald", "--log-path", "l", "--log-size-max", "1000",
                           "--log-max-files", "3", "--log-tag", "t", "x"], "/c")
    assert o.log_drivers == ["k8s-file", "journald"] and o.log_path == "/c/l"
    assert (o.log_size_max, o.log_max_files, o.log_tag) == (1000, 3, "t")
    assert parse_run_options(["x"], "/c").log_drivers == ["passthrough"]



@pytest.mark.parametrize("argv, words", [
    (["--log-driver", "syslog", "x"], "--log-driver must be one of"),
    (["--log-driver", "none,journald", "x"], "cannot be combined"),
    (["--log-driver", "k8s-file", "x"], "needs --log-path"),
    (["--log-path", "p", "x"], "is for --log-driver k8s-file"),
    (["--log-driver", "k8s-file", "--log-path", "p", "--log-size-max", "1k", "x"], "--log-size-max must be"),
])
def test_bad_log_flags(argv, words):
    with pytest.raises(UsageError, match=words):
        parse_run_options(argv, "/c")


def test_create_timeout():
    from shim.lifecycle.startup import CREATE_TIMEOUT

    assert parse_run_options(["c"], "/").create_timeout == CREATE_TIMEOUT
    assert parse_run_options(["--create-timeout", "0.5", "c"], "/").create_timeout == 0.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(UsageError, match="--create-timeout must be a number of seconds > 0"):
            parse_run_options(["--create-timeout", bad, "c"], "/")
