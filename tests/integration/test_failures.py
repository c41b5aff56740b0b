"""Every bad input: exit code, one ``shim: `` line naming the problem, nothing left behind
(no runtime state, no state directory, no processes; the harness checks the last two)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from tests.helpers import oci
from tests.helpers.harness import SHIM, wait_for_file
from tests.helpers.runtimes import container_known, force_delete, is_hybrid_with_controllers

pytestmark = pytest.mark.integration


def assert_failed(result, code: int, *fragments: str) -> None:
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == code, result
    assert len(lines) == 1 and lines[0].startswith("shim: "), result
    for fragment in fragments:
        assert fragment in lines[0], result
    assert result.stdout == b""


def assert_nothing_left(harness, container_id: str) -> None:
    assert not container_known(harness.runtime, container_id)
    assert not os.path.exists(os.path.join(harness.state_dir, container_id))


def run_argv(argv, **kw):
    proc = subprocess.run(argv, capture_output=True, timeout=60, **kw)
    return proc


@pytest.mark.parametrize("flags, fragment", [
    (["--bogus"], "unknown flag --bogus"),
    (["--stop-timeout", "x"], "--stop-timeout must be a number"),
    (["--stop-signal", "FOO"], "'FOO' is not a signal"),
    (["--sdnotify", "x"], "--sdnotify must be one of"),
])
def test_bad_flags(shim_runc, flags, fragment):
    container_id = shim_runc.new_id()
    result = shim_runc.run(["true"], *flags, container_id=container_id)
    assert_failed(result, 125, fragment)
    assert_nothing_left(shim_runc, container_id)


@pytest.mark.parametrize("container_id", ["../x", "", "a b", "-x", "x" * 129])
def test_bad_ids(shim_runc, container_id):
    bundle = shim_runc.bundle(["true"])
    result = run_argv([*SHIM, "run", "-b", bundle, "--state-dir", shim_runc.state_dir, "--", container_id])
    assert_failed(result, 125, "invalid container ID")
    assert not os.path.exists(shim_runc.state_dir) or os.listdir(shim_runc.state_dir) == []


def test_missing_id(shim_runc):
    result = run_argv([*SHIM, "run", "-b", shim_runc.bundle(["true"])])
    assert_failed(result, 125, "needs exactly one container ID")


def test_bundle_missing(shim_runc, tmp_path):
    container_id = shim_runc.new_id()
    result = shim_runc.run(bundle=str(tmp_path / "nope"), container_id=container_id)
    assert_failed(result, 125, f"bundle {tmp_path / 'nope'}: no such directory")
    assert_nothing_left(shim_runc, container_id)


def test_bundle_without_config(shim_runc, tmp_path):
    (tmp_path / "empty").mkdir()
    result = shim_runc.run(bundle=str(tmp_path / "empty"))
    assert_failed(result, 125, "no config.json")


def test_config_unreadable(shim_runc, tmp_path):
    bundle = tmp_path / "b"
    (bundle / "config.json").mkdir(parents=True)  # root reads any file; a directory it cannot
    result = shim_runc.run(bundle=str(bundle))
    assert_failed(result, 125, f"{bundle}/config.json: cannot read")


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "invalid JSON at line 1"),
    ('{"process": {"args": []}, "root": {"path": "rootfs"}}', "process.args must be a non-empty list"),
    ('{"process": {"args": ["sh"], "terminal": true}, "root": {"path": "rootfs"}}',
     "process.terminal is true, but the shim's stdin is not a terminal"),
])
def test_config_invalid(shim_runc, tmp_path, content, fragment):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "config.json").write_text(content)
    container_id = shim_runc.new_id()
    result = shim_runc.run(bundle=str(bundle), container_id=container_id)
    assert_failed(result, 125, f"{bundle}/config.json", fragment)
    assert_nothing_left(shim_runc, container_id)


@pytest.mark.parametrize("runtime, fragment", [
    ("no-such-runtime", "runtime 'no-such-runtime' not found in $PATH"),
    ("/nonexistent/runc", "runtime '/nonexistent/runc' not found"),
    ("/etc/passwd", "runtime '/etc/passwd' not found (or not executable)"),
])
def test_runtime_not_found(shim_runc, runtime, fragment):
    real, shim_runc.runtime = shim_runc.runtime, runtime
    container_id = shim_runc.new_id()
    result = shim_runc.run(["true"], container_id=container_id)
    shim_runc.runtime = real
    assert_failed(result, 125, fragment)
    assert not os.path.exists(os.path.join(shim_runc.state_dir, container_id))


def test_command_not_found_is_127(shim):
    container_id = shim.new_id()
    result = shim.run(["/no/such/command"], container_id=container_id)
    assert_failed(result, 127, f"could not create container {container_id}", "/no/such/command")
    assert_nothing_left(shim, container_id)


def test_command_not_executable_is_126(shim):
    container_id = shim.new_id()
    result = shim.run(["/etc/passwd"], container_id=container_id)
    assert_failed(result, 126, container_id)
    assert_nothing_left(shim, container_id)


def test_create_failure_carries_the_runtimes_words(shim, tmp_path):
    container_id = shim.new_id()
    bundle = shim.bundle(["true"], binds=[(str(tmp_path / "missing"), "/mnt", True)])
    result = shim.run(bundle=bundle, container_id=container_id)
    assert_failed(result, 125, f"could not create container {container_id}", str(tmp_path / "missing"))
    assert_nothing_left(shim, container_id)


def test_start_failure_deletes_the_container(shim, tmp_path):
    wrapper = tmp_path / "failing-start"
    wrapper.write_text(f"""#!/bin/sh
for a; do [ "$a" = start ] && {{ echo "start refused by the test" >&2; exit 1; }}; done
exec {shim.runtime} "$@"
""")
    wrapper.chmod(0o755)
    real = shim.runtime
    shim.runtime = str(wrapper)
    container_id = shim.new_id()
    result = shim.run(["true"], container_id=container_id)
    assert_failed(result, 125, f"could not start container {container_id}", "start refused by the test")
    shim.runtime = real
    assert_nothing_left(shim, container_id)


def test_id_in_use_by_another_shim(shim_runc):
    container_id = shim_runc.new_id()
    pid_file = shim_runc.pid_file()
    first = shim_runc.start(["/bin/sleep", "100"], "--pid-file", pid_file, container_id=container_id)
    init = int(wait_for_file(pid_file))
    second = shim_runc.run(["true"], container_id=container_id)
    assert_failed(second, 125, f"container ID {container_id} is already in use by another shim")
    assert container_known(shim_runc.runtime, container_id)  # the first one is untouched
    os.kill(init, signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == 137
    assert_nothing_left(shim_runc, container_id)


def test_id_in_use_at_the_runtime_is_not_deleted(shim, tmp_path):
    container_id = shim.new_id()
    bundle = shim.bundle(["/bin/sleep", "100"])
    # The same ID created behind the shim's back (another tool, another state directory).
    other = oci.write_bundle(str(tmp_path / "other"), json.load(open(os.path.join(bundle, "config.json"))))
    subprocess.run([shim.runtime, "create", "--bundle", other, container_id], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = shim.run(bundle=bundle, container_id=container_id)
        assert_failed(result, 125, f"container ID {container_id} is already in use")
        assert container_known(shim.runtime, container_id)  # somebody else's: left alone
    finally:
        force_delete(shim.runtime, container_id)
    assert not os.path.exists(os.path.join(shim.state_dir, container_id))


@pytest.mark.parametrize("flags, fragment", [
    (["--exit-dir", "/nonexistent/exits"], "--exit-dir /nonexistent/exits: no such directory"),
    (["--pid-file", "/nonexistent/dir/pid"], "--pid-file /nonexistent/dir/pid: its directory does not exist"),
    (["--exit-command", "/nonexistent/cleanup"], "--exit-command /nonexistent/cleanup: not found"),
])
def test_unusable_paths(shim_runc, flags, fragment):
    container_id = shim_runc.new_id()
    result = shim_runc.run(["true"], *flags, container_id=container_id)
    assert_failed(result, 125, fragment)
    assert_nothing_left(shim_runc, container_id)


@pytest.mark.skipif(not is_hybrid_with_controllers(), reason="only a hybrid cgroup host makes crun 1.8 refuse")
def test_crun_refusing_a_hybrid_host_says_so(shim_runc):
    import shutil

    crun = shutil.which("crun")
    if crun is None:
        pytest.skip("crun is not installed (apt-get install crun)")
    shim_runc.runtime = crun
    container_id = shim_runc.new_id()
    result = shim_runc.run(["true"], container_id=container_id)
    assert_failed(result, 125, "crun could not create container", "hybrid")
    assert not os.path.exists(os.path.join(shim_runc.state_dir, container_id))
