"""The benchmark harness keeps working: its --quick smoke run, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_quick(busybox_rootfs, debian_rootfs, tmp_path, runc):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["scenarios"]) == {"start", "signals", "stop", "notify", "memory", "systemd"}
    for name in ("start", "signals", "stop", "notify", "systemd"):
        series = results["scenarios"][name]["series"]
        assert series and all(samples for by in series.values() for samples in by.values()), name
    assert results["scenarios"]["memory"]["one"]["shim"]["uss"] > 0
    assert {t["target"] for t in results["targets"]}  # checked, met or not
    markdown = (out / "results.md").read_text()
    assert "## Targets" in markdown and "| shim |" in markdown
    for png in ("start.png", "signals.png", "stop.png", "notify.png", "systemd.png", "ratios.png"):
        assert (out / png).stat().st_size > 1000, png
