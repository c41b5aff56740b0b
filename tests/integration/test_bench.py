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
    assert set(results["scenarios"]) == {"start", "signals", "stop", "notify", "memory", "podman", "logs", "systemd"}
    for name in ("start", "signals", "stop", "notify", "podman", "logs", "systemd"):
        scenario = results["scenarios"][name]
        series = scenario["series"]
        assert series and all(samples for by in series.values() for samples in by.values()), name
        # every sample knows its round, and every round measured every contender (a CPU
        # time whose exit records the kernel dropped is left out, and said so)
        rounds = scenario["rounds"]
        assert all(len(rounds[s][c]) == len(series[s][c]) for s in series for c in series[s]), name
        timed = [s for s in series if not s.startswith("CPU")]
        assert all(set(rounds[s][c]) == set(range(scenario["design"]["rounds"])) for s in timed for c in series[s])
    assert results["scenarios"]["memory"]["one"]["shim"]["uss"] > 0
    # the start at Python's floor needs the C payload (gcc is among the tests' packages)
    assert set(results["scenarios"]["start"]["series"]["exec to runtime create"]) == {"shim", "python -I -S -c pass"}
    podman = results["scenarios"]["podman"]
    assert set(podman["series"]) == {"podman run --rm true", "podman run -d", "podman stop",
                                     "CPU per container, run --rm true", "CPU per container, run -d + stop"}
    assert all(set(by) == {"conmon", "shim + server", "shim"} for by in podman["series"].values())
    under_podman = results["scenarios"]["memory"]["podman"]
    count = under_podman["count"]
    assert under_podman["shim + server"]["forked by the server"] == count  # warmed: all forked
    assert under_podman["shim"]["forked by the server"] == 0
    assert all(len(results["scenarios"]["memory"]["series"]["USS, podman"][c]) == count for c in under_podman
               if c != "count")
    logs = results["scenarios"]["logs"]
    assert all(c["mismatched"] == 0 and c["matched"] for c in logs["checks"].values())
    judged = {t["target"]: t for t in results["targets"]}
    assert len(judged) >= 20 and all(t["verdict"] in ("yes", "no", "within noise") for t in judged.values())
    signals = judged["signal forwarding p50 <= 1.5x tini"]
    assert signals["ci_low"] <= signals["ci_high"]  # 30 signals in 3 rounds: an interval
    assert set(results["machine"]) == set(results["scenarios"])
    assert all(0 <= m["busy"] <= 1 and m["seconds"] > 0 for m in results["machine"].values())
    assert results["meta"]["latency scenarios on CPUs"] != "any"
    markdown = (out / "results.md").read_text()
    assert "## Targets" in markdown and "| shim |" in markdown and "## Machine" in markdown
    for png in ("start.png", "signals.png", "stop.png", "notify.png", "podman.png", "logs.png", "systemd.png",
                "ratios.png"):
        assert (out / png).stat().st_size > 1000, png


def test_the_kernel_records_each_exit_with_its_cpu_time():
    """What the podman and logs scenarios' CPU times come from (bench/taskstats.py)."""
    if os.geteuid() != 0:
        pytest.skip("taskstats needs root")
    from bench.taskstats import ExitListener, group_cpu_us

    with ExitListener() as listener:
        busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 0.3\n"
                                 "while time.process_time() < end: pass"])
        busy.wait()
        assert listener.wait_for_exit(busy.pid, timeout=10)
    mine = [e for e in listener.exits if e.tgid == busy.pid]
    assert {e.ppid for e in mine} == {os.getpid()} and any(e.last for e in mine)
    # user + system time, counted in ticks: 0.3 s of CPU, give or take a tick
    assert 250_000 <= sum(e.cpu_us for e in mine) <= 450_000
    assert group_cpu_us(os.getpid()) > 0
    assert group_cpu_us(busy.pid) is None  # gone


def test_the_floors_profile_measures_each_floor():
    proc = subprocess.run([sys.executable, "-m", "bench.profiles", "floors", "4"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = dict(line.strip("|").rsplit("|", 1) for line in proc.stdout.splitlines()
                if line.startswith("| ") and not line.startswith("| what"))
    figures = {what.strip(): float(value.split()[0]) for what, value in rows.items()}
    assert len(figures) == 6 and all(value > 0 for value in figures.values()), proc.stdout
    # The forked child shares the server's pages: far less of its own than a fresh interpreter holds.
    assert figures["a child forked from the warm server, an empty trio loop: USS"] < 8, proc.stdout
