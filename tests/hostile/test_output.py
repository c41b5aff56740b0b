"""Whoever reads the shim's output misbehaves: stops reading, closed it, went away. The
container's exit status is still right, a failure is reported once, and nothing is left.

A full disk under the k8s-file log is tests/integration/test_logs.py's
``test_a_full_disk_is_reported_once_and_the_container_goes_on``; stdout on /dev/full is
tests/integration/test_run.py's ``test_output_that_cannot_be_written_is_dropped_not_fatal``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from shim.lifecycle.supervise import RUN_DRAIN_TIMEOUT
from tests.helpers.harness import SHIM

pytestmark = [pytest.mark.integration, pytest.mark.hostile]


def shim_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode(errors="replace").splitlines() if line.startswith("shim: ")]


def test_a_reader_that_stops_reading_costs_the_drain_timeout_not_the_status(shim, tmp_path, figures):
    # The container writes without end into the shim's stdout, whose reader never reads:
    # backpressure stalls the container (no byte is dropped while it runs). A stop must
    # still work, and once the container is gone its output gets RUN_DRAIN_TIMEOUT.
    out_r, out_w = os.pipe()
    pid_file = shim.pid_file()
    proc = shim.start(["/bin/sh", "-c", "while :; do echo 0123456789abcdef0123456789abcdef; done"],
                      "--stop-timeout", "1", "--pid-file", pid_file, stdout=out_w)
    os.close(out_w)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(pid_file):
            assert time.monotonic() < deadline, "the container never ran"
            time.sleep(0.01)
        stalled = _wait_until_stdout_is_full(out_r)
        began = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - began
    finally:
        os.close(out_r)
    assert proc.returncode == 137, err  # sh as PID 1 ignores SIGTERM: killed after --stop-timeout
    lines = shim_lines(err)
    assert len(lines) == 1 and f"still open {RUN_DRAIN_TIMEOUT:g} s after it exited" in lines[0], lines
    assert took < 1 + RUN_DRAIN_TIMEOUT + 10, took
    figures.record("bytes in the stuck reader's pipe", stalled, "B")
    figures.record("SIGTERM to exit with a stuck reader", round(took, 2), "s")


def _wait_until_stdout_is_full(fd: int) -> int:
    """Until the pipe to the stuck reader is full (its size stops growing); its byte count."""
    import fcntl
    import termios

    size, last_change, deadline = -1, time.monotonic(), time.monotonic() + 20
    while time.monotonic() - last_change < 0.5:
        assert time.monotonic() < deadline, "the pipe never filled"
        now = int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")
        if now != size:
            size, last_change = now, time.monotonic()
        time.sleep(0.02)
    assert size > 0
    return size


@pytest.mark.parametrize("closed", ["stdout", "stderr", "both"])
def test_closed_stdio(shim_runc, closed):
    """The shim started with fd 1 or 2 closed: the container's output goes nowhere, its
    status does not change, and no pipe of the shim's lands on the closed number."""
    bundle = shim_runc.bundle(["/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
    redirect = {"stdout": ">&-", "stderr": "2>&-", "both": ">&- 2>&-"}[closed]
    argv = shim_runc.argv(bundle, shim_runc.new_id())
    proc = subprocess.run(["bash", "-c", f'exec "$@" {redirect}', "bash", *argv], capture_output=True, timeout=60)
    assert proc.returncode == 7, proc
    if closed == "stdout":
        assert proc.stderr == b"err\n"  # the container's stderr, and no complaint
    if closed == "stderr":
        assert proc.stdout == b"out\n"


def broken_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end, read_end


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_reader_gone_before_the_first_byte(shim, stream):
    """EPIPE on the shim's stdout or stderr: the container runs to its end, whose status
    the shim reports; a broken stdout is said once (on stderr)."""
    write_end, _ = broken_pipe()
    script = "i=0; while [ $i -lt 1000 ]; do echo line-$i; echo line-$i >&2; i=$((i+1)); done; exit 6"
    try:
        proc = subprocess.run(shim.argv(shim.bundle(["/bin/sh", "-c", script]), shim.new_id()),
                              stdout=write_end if stream == "stdout" else subprocess.PIPE,
                              stderr=write_end if stream == "stderr" else subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 6
    if stream == "stdout":
        lines = shim_lines(proc.stderr)
        assert lines == ["shim: warning: writing the container's stdout failed (Broken pipe); the rest of it "
                         "was dropped"], lines
    else:
        assert proc.stdout == b"".join(b"line-%d\n" % i for i in range(1000))


@pytest.mark.parametrize("argv", [["--bogus"], ["-b", "/nonexistent"]], ids=["bad flag", "no bundle"])
def test_a_failure_with_nobody_to_tell_still_exits_125(shim_runc, argv):
    """A shim that fails while its stderr is a pipe nobody reads any more: the one line is
    lost, the exit code is not."""
    write_end, _ = broken_pipe()
    try:
        proc = subprocess.run([*SHIM, "run", *argv,
                               "--state-dir", shim_runc.state_dir, "c"],
                              stdout=subprocess.PIPE, stderr=write_end, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 125


def test_a_failure_with_stdout_closed_is_still_said(shim_runc):
    proc = subprocess.run(["bash", "-c", 'exec "$@" >&-', "bash", *shim_runc.argv("/nonexistent", "c")],
                          capture_output=True, timeout=60)
    assert proc.returncode == 125
    assert proc.stderr == b"shim: bundle /nonexistent: no such directory\n"


def test_a_log_that_cannot_be_opened_once_the_container_started(shim, tmp_path):
    """The log is checked before create and opened for good once the container runs:
    something (here the runtime's start) put a directory at its path meanwhile. The shim
    fails with the path in its one line, and the started container goes too."""
    from tests.helpers.runtimes import container_known
    from tests.hostile.test_runtime_faults import faulty_runtime

    log = tmp_path / "ctr.log"
    real, shim.runtime = shim.runtime, faulty_runtime(shim, tmp_path, "start",
                                                       f'"$real" "$@" || exit $?; rm -f {log}; mkdir {log}; exit 0')
    container_id = shim.new_id()
    try:
        result = shim.run(["/bin/sleep", "100"], "--log-driver", "k8s-file", "--log-path", str(log),
                          container_id=container_id)
    finally:
        shim.runtime = real
    assert result.returncode == 125, result
    assert result.shim_lines == [f"shim: --log-path {log}: cannot open: Is a directory"], result
    assert not container_known(shim.runtime, container_id)
