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
        scenario = results["scenarios"][name]
        series = scenario["series"]
        assert series and all(samples for by in series.values() for samples in by.values()), name
        # every sample knows its round, and every round measured every contender
        rounds = scenario["rounds"]
        assert all(len(rounds[s][c]) == len(series[s][c]) for s in series for c in series[s]), name
        assert all(set(rounds[s][c]) == set(range(scenario["design"]["rounds"])) for s in series for c in series[s])
    assert results["scenarios"]["memory"]["one"]["shim"]["uss"] > 0
    judged = {t["target"]: t for t in results["targets"]}
    assert len(judged) >= 10 and all(t["verdict"] in ("yes", "no", "within noise") for t in judged.values())
    signals = judged["signal forwarding p50 <= 1.5x tini"]
    assert signals["ci_low"] <= signals["ci_high"]  # 30 signals in 3 rounds: an interval
    assert set(results["machine"]) == set(results["scenarios"])
    assert all(0 <= m["busy"] <= 1 and m["seconds"] > 0 for m in results["machine"].values())
    assert results["meta"]["latency scenarios on CPUs"] != "any"
    markdown = (out / "results.md").read_text()
    assert "## Targets" in markdown and "| shim |" in markdown and "## Machine" in markdown
    for png in ("start.png", "signals.png", "stop.png", "notify.png", "systemd.png", "ratios.png"):
        assert (out / png).stat().st_size > 1000, png
