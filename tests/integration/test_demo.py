"""``shim demo``: the main job on its built-in default."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.harness import SHIM

pytestmark = pytest.mark.integration


def demo(tmp_path, *args, path=None):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    if path is not None:
        env["PATH"] = path
    return subprocess.run([*SHIM, "demo", *args], capture_output=True, text=True, env=env, timeout=120)


def test_demo_runs_and_reports(busybox_rootfs, tmp_path):
    result = demo(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hello from a container: hostname shim-demo" in result.stdout
    assert "this line goes to stderr" in result.stderr
    report = [l for l in result.stderr.splitlines() if l.startswith("shim: ")]
    assert len(report) == 2, result.stderr
    assert "created container shim-demo-" in report[0] and "its init is pid" in report[0]
    assert "exited 0 after" in report[1] and "3 orphans reaped" in report[1]
    # cached: the second run reuses the bundle
    assert os.path.isfile(tmp_path / "cache" / "shim" / "busybox-rootfs" / "bin" / "busybox")
    assert demo(tmp_path).returncode == 0


def test_demo_names_the_missing_runtime(busybox_rootfs, tmp_path):
    result = demo(tmp_path, path=str(tmp_path / "empty-path"))
    assert result.returncode == 125
    assert "install crun or runc (apt-get install crun runc)" in result.stderr


def test_demo_with_an_explicit_runtime(runtime, busybox_rootfs, tmp_path):
    result = demo(tmp_path, "-r", runtime)
    assert result.returncode == 0, result.stderr
    assert f"runtime {os.path.basename(runtime)} ({runtime})" in result.stderr
