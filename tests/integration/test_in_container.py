"""The tests that need a service manager, once more inside the Dockerfile.test container,
whose PID 1 is systemd (.ci/in-container): there they drive the real system manager, with
units in /etc/systemd/system, where the machine's own PID 1 may not be systemd."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_systemd_tests_pass_with_systemd_as_pid_1():
    for tool in ("podman", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (apt-get install {tool})")
    if os.geteuid() != 0:
        pytest.skip("a privileged container needs root")
    result = subprocess.run([os.path.join(ROOT, ".ci", "in-container"), "-rA",
                             "tests/integration/test_units.py", "tests/integration/test_systemd_units.py"],
                            capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and not any(w in summary for w in ("failed", "skipped", "error")), summary
    # the real system manager, not a confined one
    assert "PASSED tests/integration/test_units.py::test_the_manager_is_pid_1_where_it_is_systemd" in output
