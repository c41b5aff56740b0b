"""The targets, judged on made-up results, and the report that shows them."""

import json
import random

import pytest

from bench import report, stats, targets
from bench.targets import Bound, Count, Ratio

ROUNDS, PER_ROUND = 20, 10


def side_by_side(factors: dict[str, float], rounds=ROUNDS, per_round=PER_ROUND, noise=0.05, seed=3):
    """Samples of each contender (its factor x a base that drifts from round to round),
    with their round indices, as a scenario records them."""
    rng = random.Random(seed)
    series = {name: [] for name in factors}
    indices = {name: [] for name in factors}
    for r in range(rounds):
        base = 10 * rng.uniform(1, 2)
        for _ in range(per_round):
            for name, factor in factors.items():
                series[name].append(factor * base * rng.uniform(1 - noise, 1 + noise))
                indices[name].append(r)
    return series, indices


def scenario(series_name, factors, unit="us", **kw):
    series, indices = side_by_side(factors, **kw)
    return {"unit": unit, "series": {series_name: series}, "rounds": {series_name: indices}}


def results_with(**scenarios):
    return {"scenarios": scenarios}


FIELDS = {"target", "kind", "unit", "value", "bound", "ratio", "limit", "ci_low", "ci_high", "resampled", "verdict",
          "detail"}


def test_a_ratio_target_met_missed_or_within_noise():
    signals = scenario("signal", {"shim": 1.2, "tini": 1.0})
    judged = {t["target"]: t for t in targets.check(results_with(signals=signals))}
    p50 = judged["signal forwarding p50 <= 1.5x tini"]
    assert set(p50) == FIELDS
    assert (p50["kind"], p50["unit"], p50["limit"], p50["verdict"]) == ("ratio", "us", 1.5, "yes")
    assert p50["ci_low"] <= p50["ratio"] <= p50["ci_high"] < 1.5
    assert p50["ratio"] == pytest.approx(1.2, abs=0.05)
    assert p50["bound"] == pytest.approx(1.5 * stats.percentile(signals["series"]["signal"]["tini"], 50), abs=1e-3)
    assert p50["resampled"] == f"{ROUNDS} rounds"

    missed = targets.check(results_with(signals=scenario("signal", {"shim": 2.5, "tini": 1.0})))
    assert {t["verdict"] for t in missed} == {"no"}
    tie = targets.check(results_with(signals=scenario("signal", {"shim": 1.5, "tini": 1.0}, noise=0.2)),
                        [Ratio("tie", "signals", "signal", "shim", "tini", 1.5)])
    assert tie[0]["verdict"] == "within noise" and tie[0]["ci_low"] < 1.5 < tie[0]["ci_high"]


def test_a_bound_target():
    notify = scenario("relay latency", {"shim": 6.0, "direct": 1.0})  # shim: 60..120 us
    relay = targets.check(results_with(notify=notify))[0]
    assert relay["target"] == "readiness relay p50 <= 100 us"
    assert (relay["kind"], relay["bound"], relay["limit"]) == ("bound", 100.0, 1.0)
    assert relay["ratio"] == pytest.approx(relay["value"] / 100, abs=1e-3)
    assert relay["verdict"] == stats.verdict(relay["ci_low"] * 100, relay["ci_high"] * 100, 100)


def test_count_targets_are_exact():
    memory = {"unit": "MB", "wakeups": {"shim": {"seconds": 10, "switches": 0}}, "series": {}}
    notify = {"unit": "us", "series": {}, "throughput": {"shim 10k/s": {"sent": 10000, "received": 9999, "lost": 1}}}
    judged = {t["target"]: t for t in targets.check(results_with(memory=memory, notify=notify))}
    wakeups, lost = judged["idle shim: no wake-ups"], judged["readiness relay at 10,000 msg/s: none lost"]
    assert (wakeups["verdict"], wakeups["detail"]) == ("yes", "context switches in 10 s")
    assert (lost["verdict"], lost["value"], lost["ci_low"], lost["ratio"]) == ("no", 1, None, None)
    assert lost["detail"] == "lost of 10,000 sent at 10,000/s"


def test_the_start_target_says_what_the_overheads_were():
    start = scenario("start, runc", {"runc run": 1.0, "shim": 3.0, "conmon": 2.0}, unit="ms")
    judged = targets.check(results_with(start=start))
    assert [t["target"] for t in judged] == ["start, exec to payload: `shim run` <= conmon (runc)"]
    assert judged[0]["verdict"] == "no"
    by = start["series"]["start, runc"]
    shim_overhead = stats.percentile(by["shim"], 50) - stats.percentile(by["runc run"], 50)
    assert f"shim {shim_overhead:.1f} ms" in judged[0]["detail"]


def test_targets_of_scenarios_that_did_not_run_or_have_no_samples_are_left_out():
    assert targets.check(results_with()) == []
    empty = {"unit": "us", "series": {"signal": {"shim": [], "tini": [1.0]}}}
    assert targets.check(results_with(signals=empty)) == []


def test_too_few_samples_give_no_interval_and_no_verdict():
    few = scenario("boot to READY", {"shim": 0.5, "conmon": 1.0}, unit="ms", rounds=1, per_round=2)
    judged = targets.check(results_with(systemd=few))
    assert judged and all(t["verdict"] == "within noise" and t["ci_low"] is None for t in judged)
    assert judged[0]["resampled"] == f"2 of the {stats.MIN_SAMPLES} samples an interval needs"
    assert "no interval" in report.targets_table(judged, {})[-2]


def test_a_new_target_is_one_table_entry():
    podman = scenario("run", {"shim": 0.9, "conmon": 1.0}, unit="ms")
    table = [Ratio("podman run: with the shim <= with conmon", "podman", "run", "shim", "conmon"),
             Bound("podman run under 50 ms", "podman", "run", "shim", 50.0),
             Count("podman: no failures", "podman", lambda s: (s.get("failures", 0), "runs failed"), 0)]
    judged = targets.check(results_with(podman=podman), table)
    assert [(t["target"], t["verdict"]) for t in judged] == [
        ("podman run: with the shim <= with conmon", "yes"), ("podman run under 50 ms", "yes"),
        ("podman: no failures", "yes")]


def test_results_are_plain_json():
    signals = scenario("signal", {"shim": 1.0, "tini": 0.0})  # tini at 0: undefined ratios
    judged = targets.check(results_with(signals=signals))
    assert all(t["ratio"] is None and t["verdict"] == "within noise" for t in judged)
    json.dumps(judged, allow_nan=False)


def test_the_report_shows_verdicts_intervals_and_the_machine():
    results = {"meta": {"date": "d", "quick": False, "python": "3", "host": "h", "versions": {},
                        "intervals": {"confidence": 0.95}},
               "scenarios": {"signals": {**scenario("signal", {"shim": 2.5, "tini": 1.0}),
                                         "design": {"rounds": ROUNDS, "warm-up rounds": 1, "per round": PER_ROUND}}},
               "machine": {"signals": {"seconds": 3.0, "cpus": 2, "busy": 0.5, "idle": 0.5, "steal": 0.0, "own": 0.3,
                                       "others": 0.15, "kernel threads": 0.01,
                                       "busiest others": [{"pid": 7, "name": "make", "cpu seconds": 0.9,
                                                           "share": 0.15}],
                                       "loadavg before": {"1 min": 0.1}, "loadavg after": {"1 min": 0.9}}},
               "warnings": ["during signals, other processes used 15% of the CPUs"]}
    results["targets"] = targets.check(results)
    text = report.markdown(results)
    p50 = next(t for t in results["targets"] if "p50" in t["target"])
    row = next(line for line in text.splitlines() if line.startswith("| signal forwarding p50"))
    assert "**no**" in row and f"[{p50['ci_low']:.3g}, {p50['ci_high']:.3g}]" in row and "| 1.5 |" in row
    assert f"{ROUNDS} rounds of {PER_ROUND} samples per contender" in text
    assert "**Warning**: during signals, other processes used 15% of the CPUs." in text
    machine_row = next(line for line in text.splitlines() if line.startswith("| signals | 3.0"))
    assert "15%" in machine_row and "make (7) 15.0%" in machine_row and "0.1 -> 0.9" in machine_row


def test_the_podman_targets_name_the_scenarios_series_and_contenders():
    from bench import podman
    from bench.scenarios import podman as scenario

    assert set(targets.PODMAN_TIMED) == {scenario.RUN_RM, scenario.RUN_D, scenario.STOP}
    assert targets.PODMAN_CPU == scenario.CPU_RM
    assert set(targets.SHIMS) == {podman.SERVER, podman.ALONE}
    judged = targets.check(results_with(podman=scenario_of_podman()))
    names = [t["target"] for t in judged]
    assert len(names) == 3 * 2 + 2
    cpu = next(t for t in judged if "CPU" in t["target"])
    assert cpu["verdict"] == "no" and cpu["ratio"] == pytest.approx(6.0, rel=0.1)


def scenario_of_podman():
    series, indices = {}, {}
    for name in (*targets.PODMAN_TIMED, targets.PODMAN_CPU):
        factors = {"conmon": 1.0, "shim + server": 6.0 if name == targets.PODMAN_CPU else 1.05, "shim": 1.5}
        s, i = side_by_side(factors)
        series[name], indices[name] = s, i
    return {"unit": "ms", "series": series, "rounds": indices}


def test_the_logs_targets():
    logs = scenario("CPU per GB", {"shim": 1.3, "conmon": 1.0}, unit="MB/s")
    logs["units"] = {"CPU per GB": "s"}
    logs["checks"] = {"shim": {"matched": 3, "mismatched": 1}, "conmon": {"matched": 4, "mismatched": 0}}
    judged = {t["target"]: t for t in targets.check(results_with(logs=logs))}
    cpu = judged["logs, CPU per GB into a k8s-file: shim <= 1.5x conmon"]
    assert (cpu["verdict"], cpu["unit"]) == ("yes", "s")
    check = judged["logs: every k8s-file log reads back as the payload's bytes"]
    assert (check["verdict"], check["value"], check["detail"]) == ("no", 1, "of 8 k8s-file logs read back")
