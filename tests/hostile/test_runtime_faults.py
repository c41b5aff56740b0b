"""A runtime that crashes, hangs, is killed half-way or writes nonsense: ``shim run`` exits
125 with one line that names what happened, and leaves nothing behind (no runtime state,
no state directory, no process: the harness checks the last two after every test).

The runtime missing altogether is tests/integration/test_failures.py's
``test_runtime_not_found``; a start the runtime refuses is its
``test_start_failure_deletes_the_container``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.helpers.runtimes import container_known

pytestmark = [pytest.mark.integration, pytest.mark.hostile]


def faulty_runtime(harness, tmp_path, command: str, fault: str) -> str:
    """A wrapper of the test's runtime that runs the shell code ``fault`` on ``command``
    (``create``, ``start``): ``$real`` is the real runtime, ``$pidfile`` create's pid file."""
    wrapper = tmp_path / f"faulty-{command}"
    wrapper.write_text(f"""#!/bin/sh
real={harness.runtime}
pidfile=""; previous=""
for a; do [ "$previous" = --pid-file ] && pidfile=$a; previous=$a; done
for a; do
    if [ "$a" = {command} ]; then
        {fault}
    fi
done
exec "$real" "$@"
""")
    wrapper.chmod(0o755)
    return str(wrapper)


def run_with(harness, runtime: str, *flags: str, args=("/bin/sh", "-c", "touch /out/ran"), tmp_path=None,
             timeout: float = 60):
    """One ``shim run`` on ``runtime``; returns (result, container ID, whether the payload ran)."""
    ran = tmp_path / "ran"
    ran.mkdir(exist_ok=True)
    real, harness.runtime = harness.runtime, runtime
    container_id = harness.new_id()
    try:
        result = harness.run(list(args), *flags, container_id=container_id,
                             bundle=harness.bundle(list(args), binds=[(str(ran), "/out", False)]), timeout=timeout)
    finally:
        harness.runtime = real
    return result, container_id, (ran / "ran").exists()


def assert_failed_cleanly(harness, result, container_id: str, *fragments: str) -> None:
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == 125, result
    assert len(lines) == 1 and lines[0].startswith("shim: "), result
    for fragment in fragments:
        assert fragment in lines[0], result
    assert not container_known(harness.runtime, container_id), "the runtime still knows the container"
    assert not os.path.exists(os.path.join(harness.state_dir, container_id))


@pytest.mark.parametrize("command", ["create", "start"])
def test_a_runtime_that_crashes(shim, tmp_path, command):
    runtime = faulty_runtime(shim, tmp_path, command, "kill -SEGV $$")
    result, container_id, ran = run_with(shim, runtime, tmp_path=tmp_path)
    assert_failed_cleanly(shim, result, container_id, f"could not {command} container {container_id}",
                          "killed by SIGSEGV")
    assert not ran


def test_a_runtime_killed_once_it_created_the_container(shim, tmp_path):
    # The worst moment: the container exists (its init waits to be started), and the
    # runtime dies without a word before it could report it.
    runtime = faulty_runtime(shim, tmp_path, "create", '"$real" "$@"; kill -KILL $$')
    result, container_id, ran = run_with(shim, runtime, tmp_path=tmp_path)
    assert_failed_cleanly(shim, result, container_id, f"could not create container {container_id}",
                          "killed by SIGKILL")
    assert not ran


def test_a_runtime_that_hangs_in_create_meets_a_named_timeout(shim, tmp_path):
    # Half-way, as a runtime stuck on a lock or a slow mount would be: the container exists.
    runtime = faulty_runtime(shim, tmp_path, "create", '"$real" "$@"; sleep 1000')
    began = time.monotonic()
    result, container_id, ran = run_with(shim, runtime, "--create-timeout", "1", tmp_path=tmp_path)
    elapsed = time.monotonic() - began
    assert_failed_cleanly(shim, result, container_id, f"create did not finish within 1 s (create timeout)")
    assert not ran
    assert elapsed < 20, elapsed  # the timeout, a delete and start-up; generous for a loaded machine


def test_a_stop_while_create_hangs_waits_for_the_create_timeout(shim_runc, tmp_path):
    """What is not promised: signals wait while the runtime creates (so none is lost), so a
    stop during a create that hangs is acted on when the create timeout ends it."""
    marker = tmp_path / "creating"
    runtime = faulty_runtime(shim_runc, tmp_path, "create", f'touch {marker}; sleep 1000')
    real, shim_runc.runtime = shim_runc.runtime, runtime
    try:
        proc = shim_runc.start(["true"], "--create-timeout", "2")
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert time.monotonic() < deadline, "create never began"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        shim_runc.runtime = real
    assert proc.returncode == 125, err
    assert b"within 2 s (create timeout)" in err


def foreign_process():
    """A process of the test's, not the shim's: a pid file naming it must not be believed."""
    return subprocess.Popen(["sleep", "100"])


def unused_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


@pytest.mark.parametrize("garbage", ["", "abc", "-5", "0", "99999999999999999999", "unused", "foreign"])
def test_a_garbage_pid_file(shim, tmp_path, garbage):
    foreign = foreign_process() if garbage == "foreign" else None
    shim.allow(foreign.pid) if foreign else None
    text = {"unused": str(unused_pid()), "foreign": str(foreign.pid) if foreign else ""}.get(garbage, garbage)
    runtime = faulty_runtime(shim, tmp_path, "create", f'"$real" "$@" || exit $?; echo "{text}" > "$pidfile"; exit 0')
    try:
        result, container_id, ran = run_with(shim, runtime, tmp_path=tmp_path, timeout=30)
        assert_failed_cleanly(shim, result, container_id, "pid file")
        assert not ran
        if foreign is not None:
            assert foreign.poll() is None  # neither signalled nor waited for
    finally:
        if foreign is not None:
            foreign.kill()
            foreign.wait()
