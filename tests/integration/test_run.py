"""``shim run`` end to end on real runtimes (runc and crun): exit statuses, output, files."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.helpers.harness import wait_for_file

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 7", 7)])
def test_exit_code_is_the_containers(shim, script, code):
    result = shim.run(["/bin/sh", "-c", script])
    assert result.returncode == code, result
    assert result.shim_lines == []


def test_sigkill_to_the_init_is_137(shim):
    pid_file = shim.pid_file()
    proc = shim.start(["/bin/sleep", "100"], "--pid-file", pid_file)
    init = int(wait_for_file(pid_file))
    os.kill(init, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 137, err


def test_sigterm_to_the_init_is_143(shim):
    # A pid namespace's init ignores signals it has no handler for, so a container whose
    # init dies of SIGTERM is one sharing the host's pid namespace.
    pid_file = shim.pid_file()
    bundle = shim.bundle(["/bin/sleep", "100"], pid_namespace=False)
    proc = shim.start(None, "--pid-file", pid_file, bundle=bundle)
    init = int(wait_for_file(pid_file))
    os.kill(init, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err


def test_output_is_relayed_byte_for_byte(shim, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    blob_out = os.urandom(1024 * 1024)
    blob_err = os.urandom(300 * 1024) + b"\nlast line on stderr, no newline"
    (data / "out").write_bytes(blob_out)
    (data / "err").write_bytes(blob_err)
    script = "cat /data/out; echo between; cat /data/err >&2; printf 'tail without newline'"
    bundle = shim.bundle(["/bin/sh", "-c", script], binds=[(str(data), "/data", True)])
    result = shim.run(bundle=bundle)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout == blob_out + b"between\ntail without newline"
    assert result.stderr == blob_err


def test_interleaved_streams_keep_their_own_order(shim):
    script = "i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
    result = shim.run(["/bin/sh", "-c", script])
    assert result.returncode == 0
    assert result.stdout.decode().split() == [f"out{i}" for i in range(2000)]
    assert result.stderr.decode().split() == [f"err{i}" for i in range(2000)]


def test_pid_file_and_exit_file(shim, tmp_path):
    exit_dir = tmp_path / "exits"
    exit_dir.mkdir()
    pid_file = shim.pid_file()
    container_id = shim.new_id()
    proc = shim.start(["/bin/sh", "-c", "sleep 0.5; exit 42"], "--pid-file", pid_file,
                      "--exit-dir", str(exit_dir), container_id=container_id)
    init = int(wait_for_file(pid_file))
    assert open(f"/proc/{init}/status").read().count("\n") > 0  # a live process
    proc.communicate(timeout=30)
    assert proc.returncode == 42
    assert (exit_dir / container_id).read_bytes() == b"42"  # decimal, no newline, like conmon
    assert os.listdir(exit_dir) == [container_id]  # the temp file was renamed, not left
    assert not os.path.exists(pid_file)  # a stale pid file would point at a recycled pid


def test_exit_command_runs_after_the_container_is_gone(shim, tmp_path):
    marker = tmp_path / "marker"
    container_id = shim.new_id()
    result = shim.run(["/bin/sh", "-c", "exit 3"], "--exit-command", "/bin/sh",
                      "--exit-command-arg", "-c", "--exit-command-arg",
                      f"{shim.runtime} state {container_id} >/dev/null 2>&1; echo gone=$? > {marker}",
                      container_id=container_id)
    assert result.returncode == 3
    assert marker.read_text() == "gone=1\n"  # the runtime no longer knew the container


def test_runtime_args_reach_the_runtime(shim, tmp_path):
    root = tmp_path / "runtime-root"
    container_id = shim.new_id()
    result = shim.run(["/bin/sh", "-c", f"exit 0"], "--runtime-arg", "--root", "--runtime-arg", str(root),
                      container_id=container_id)
    assert result.returncode == 0, result
    assert root.is_dir()  # the runtime kept its state there (and removed the container)
    assert os.listdir(root) == []


def test_stdin_is_the_shims(shim):
    result = shim.run(["/bin/sh", "-c", "read line; echo got:$line"], input=b"hello\n")
    assert result.stdout == b"got:hello\n"


def test_state_directory_exists_while_running(shim):
    container_id = shim.new_id()
    pid_file = shim.pid_file()
    proc = shim.start(["/bin/sleep", "100"], "--pid-file", pid_file, container_id=container_id)
    init = int(wait_for_file(pid_file))
    state = os.path.join(shim.state_dir, container_id)
    assert os.stat(state).st_mode & 0o777 == 0o700
    assert {"config.json", "lock", "pidfile"} <= set(os.listdir(state))
    os.kill(init, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not os.path.exists(state)


def test_runtime_is_spawned_clean(shim_runc, tmp_path):
    """Default dispositions, empty mask, and none of the shim's fds but 0, 1, 2."""
    record = tmp_path / "runtime-view"
    wrapper = tmp_path / "runtime"
    # A shell, not Python: Python itself ignores SIGPIPE and SIGXFSZ as it starts. dash
    # keeps its script open on fds >= 10, so fds 3..9 are the ones that must be absent.
    # No command substitution: it would open a pipe in the shell. The signal masks are read
    # with builtins: while dash waits for a child it blocks every signal for a moment, so a
    # child reading the shell's status could catch that mask instead of the one it got.
    wrapper.write_text(
        "#!/bin/sh\n"
        f"ls /proc/$$/fd > {record}.$$.fds\n"
        "while read -r line; do case $line in SigBlk*|SigIgn*) echo \"$line\";; esac; done "
        f"< /proc/$$/status > {record}.$$.sig\n"
        f"exec {shim_runc.runtime} \"$@\"\n")
    wrapper.chmod(0o755)
    shim_runc.runtime = str(wrapper)
    leaked = os.open(os.devnull, os.O_RDONLY)  # an inheritable fd the shim's parent leaks
    try:
        result = shim_runc.run(["/bin/sh", "-c", "exit 5"], pass_fds=(leaked,))
    finally:
        os.close(leaked)
    assert result.returncode == 5, result
    seen = sorted(p for p in os.listdir(tmp_path) if p.startswith("runtime-view."))
    assert len(seen) >= 6  # create, start, delete: two files each
    glibc_internal = (1 << 31) | (1 << 32)  # see tests/unit/test_reaper.py
    for name in seen:
        text = (tmp_path / name).read_text()
        if name.endswith(".fds"):
            assert {int(fd) for fd in text.split() if int(fd) < 10} == {0, 1, 2}, text
        else:
            fields = dict(line.split(":\t") for line in text.splitlines())
            assert int(fields["SigBlk"], 16) == 0, text
            assert int(fields["SigIgn"], 16) & ~glibc_internal == 0, text


def test_run_takes_about_as_long_as_the_runtime(shim):
    result = shim.run(["true"])
    assert result.returncode == 0


def test_a_new_shim_cleans_up_after_a_killed_one(shim):
    container_id = shim.new_id()
    pid_file = shim.pid_file()
    first = shim.start(["/bin/sleep", "100"], "--pid-file", pid_file, container_id=container_id)
    init = int(wait_for_file(pid_file))
    os.kill(first.pid, signal.SIGKILL)  # no chance to clean up: state dir and container stay
    first.communicate(timeout=30)
    assert os.path.isdir(os.path.join(shim.state_dir, container_id))
    second = shim.run(["/bin/sh", "-c", "exit 4"], container_id=container_id)
    assert second.returncode == 4, second
    assert f"removed container {container_id}, left behind by a shim that died" in second.stderr.decode()
    # the first shim's init was re-parented to the test process (a subreaper): reap it
    os.waitpid(init, 0)


def test_output_that_cannot_be_written_is_dropped_not_fatal(shim):
    """stdout on a full disk (/dev/full): the container still runs to its end, its status
    is reported, and nothing is left behind."""
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(shim.argv(shim.bundle(["/bin/sh", "-c", "echo hello; sleep 0.2; echo bye; exit 4"]),
                                        shim.new_id()),
                              stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 4
    assert b"writing the container's stdout failed (No space left on device)" in proc.stderr
