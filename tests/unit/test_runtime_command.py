import pytest

from shim.errors import COMMAND_NOT_EXECUTABLE, COMMAND_NOT_FOUND, SHIM_FAILED
from shim.runtime.command import (RuntimeCommand, classify_create_failure, last_logged_error,
                                  mentions_existing_container, one_line)
from shim.runtime.invoke import runtime_environment
from shim.runtime.locate import crun_works_on_host


def test_argv_of_each_operation():
    rc = RuntimeCommand("/usr/bin/runc", ["--debug"], "/st/c/runtime.log")
    prefix = ["/usr/bin/runc", "--debug", "--log", "/st/c/runtime.log", "--log-format", "json"]
    assert rc.create("c", "/st/c", "/st/c/pid") == prefix + ["create", "--bundle", "/st/c", "--pid-file", "/st/c/pid", "c"]
    assert rc.create("c", "/b", "/p", preserve_fds=2)[-3:] == ["--preserve-fds", "2", "c"]
    assert rc.start("c") == prefix + ["start", "c"]
    assert rc.kill("c", 9) == prefix + ["kill", "c", "9"]
    assert rc.kill("c", 9, all_processes=True) == prefix + ["kill", "--all", "c", "9"]
    assert rc.delete("c") == prefix + ["delete", "--force", "c"]
    assert rc.name == "runc"


def test_user_log_flags_win():
    rc = RuntimeCommand("/usr/bin/crun", ["--log=/mine", "--log-format=text"], "/st/log")
    assert rc.start("c") == ["/usr/bin/crun", "--log=/mine", "--log-format=text", "start", "c"]
    # the user's own log: the shim reads the runtime's errors from its stderr instead
    rc = RuntimeCommand("/usr/bin/crun", ["--log", "/mine"], "/st/log")
    assert rc.start("c") == ["/usr/bin/crun", "--log", "/mine", "start", "c"]


def test_last_logged_error():
    log = "\n".join([
        '{"level":"warning","msg":"meh","time":"x"}',
        '{"level":"error","msg":"first","time":"x"}',
        'not json',
        '{"msg":"crun says no","level":"error","time":"x"}',
        '[1, 2]',
    ])
    assert last_logged_error(log) == "crun says no"
    assert last_logged_error("") is None


@pytest.mark.parametrize("message, code", [
    ('runc create failed: unable to start container process: exec: "nonexist": executable file not found in $PATH',
     COMMAND_NOT_FOUND),
    ('runc create failed: unable to start container process: exec: "/x": stat /x: no such file or directory',
     COMMAND_NOT_FOUND),
    ("executable file `nonexist` not found in $PATH: No such file or directory", COMMAND_NOT_FOUND),
    ('runc create failed: unable to start container process: exec: "/noexec": permission denied',
     COMMAND_NOT_EXECUTABLE),
    ("open executable: Permission denied", COMMAND_NOT_EXECUTABLE),
    ("open executable: Operation not permitted", COMMAND_NOT_EXECUTABLE),
    ('exec: "/bin/sh": stat /bin/sh: too many levels of symbolic links', COMMAND_NOT_EXECUTABLE),
    # not about the command: a missing mount source is a plain failure
    ("runc create failed: unable to start container process: error during container init: error mounting "
     '"/nope" to rootfs at "/x": stat /nope: no such file or directory', SHIM_FAILED),
    ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2", SHIM_FAILED),
    ("container with id exists: c", SHIM_FAILED),
])
def test_classify(message, code):
    assert classify_create_failure(message) == code


def test_existing_container_wording():
    assert mentions_existing_container("container with id exists: c1")
    assert mentions_existing_container("container `c1` already exists")
    assert not mentions_existing_container("no such file")


def test_one_line():
    assert one_line("  a\n\n b  \n") == "a b"


def test_runtime_never_sees_notify_or_listen_variables():
    env = {"PATH": "/bin", "NOTIFY_SOCKET": "/run/n", "LISTEN_FDS": "1", "LISTEN_PID": "9",
           "LISTEN_FDNAMES": "x", "LISTEN_PIDFDID": "7", "HOME": "/root"}
    assert runtime_environment(env) == {"PATH": "/bin", "HOME": "/root"}


@pytest.mark.parametrize("controllers, works", [(None, True), ("", True), ("\n", True), ("hugetlb\n", False),
                                                ("cpu memory", False)])
def test_crun_on_hybrid_hosts(controllers, works):
    assert crun_works_on_host(controllers) is works


def test_a_silent_failure_says_how_the_runtime_ended():
    import signal

    from shim.runtime.command import silent_failure

    assert silent_failure(3 << 8) == "exited with status 3 and no message"
    assert silent_failure(signal.SIGSEGV) == "killed by SIGSEGV, without a message"
    assert silent_failure(signal.SIGKILL | 0x80) == "killed by SIGKILL, without a message"  # with a core dump
