"""The project's performance targets, judged on a run's results (pure).

Every target is one entry of TARGETS, of one of three kinds:

- ``Ratio``: contender A at most ``factor`` times contender B, side by side in one series
  (a quantile of each, the median unless said otherwise), judged on the bootstrap
  interval of A / B, resampled by round;
- ``Bound``: a quantile of contender A at most an absolute bound, judged on the interval
  of A / bound;
- ``Count``: an exact count (messages lost, wake-ups), at most a bound; one observation
  with no sampling noise, so no interval.

Each judged target is a dict: ``target``, ``kind``, ``unit``, ``value`` (A), ``bound``
(factor x B, or the bound), ``ratio`` (A / B, or A / bound), ``limit`` (what the ratio may
be: the factor, or 1), ``ci_low``/``ci_high`` (the ratio's interval), ``verdict`` (yes, no,
within noise), ``resampled`` and ``detail``. A target whose scenario did not run, or
whose contenders have no samples, is left out.

A new scenario's target is a new line in TARGETS, e.g.
``Ratio("podman run: with the shim <= with conmon", "podman", "run", "shim", "conmon")``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from bench import stats
from bench.stats import percentile, statistic

RUNTIMES = ("runc", "crun")
# bench/scenarios/podman.py's series and contenders
PODMAN_TIMED = ("podman run --rm true", "podman run -d", "podman stop")
PODMAN_CPU = "CPU per container, run --rm true"
SHIMS = ("shim + server", "shim")
PODMAN_SLOWER = 1.10  # the shim's podman commands may take 10% longer than conmon's
PODMAN_CPU_FACTOR = 2.0


@dataclass(frozen=True)
class Ratio:
    name: str
    scenario: str
    series: str
    ours: str
    theirs: str
    factor: float = 1.0
    quantile: float | str = 50  # or stats.MEAN
    # more to say, from the scenario's series (e.g. what the ratio means in other terms)
    detail: Callable[[dict], str] | None = None

    def judge(self, scenario: dict) -> dict | None:
        by = scenario.get("series", {}).get(self.series, {})
        rounds = scenario.get("rounds", {}).get(self.series, {})
        ours, theirs = by.get(self.ours), by.get(self.theirs)
        if not ours or not theirs:
            return None
        judged = stats.at_most_times(ours, theirs, self.factor, self.quantile,
                                     rounds.get(self.ours), rounds.get(self.theirs))
        return _judged(self.name, "ratio", unit_of(scenario, self.series), statistic(ours, self.quantile),
                       self.factor * statistic(theirs, self.quantile), judged,
                       self.detail(by) if self.detail else "")


@dataclass(frozen=True)
class Bound:
    name: str
    scenario: str
    series: str
    ours: str
    bound: float
    quantile: float | str = 50

    def judge(self, scenario: dict) -> dict | None:
        ours = scenario.get("series", {}).get(self.series, {}).get(self.ours)
        if not ours:
            return None
        rounds = scenario.get("rounds", {}).get(self.series, {}).get(self.ours)
        judged = stats.at_most(ours, self.bound, self.quantile, rounds)
        return _judged(self.name, "bound", unit_of(scenario, self.series), statistic(ours, self.quantile), self.bound,
                       judged, "")


@dataclass(frozen=True)
class Count:
    name: str
    scenario: str
    # (the count, what it was counted over) from the scenario's results; None: not there
    count: Callable[[dict], tuple[float, str] | None]
    bound: float

    def judge(self, scenario: dict) -> dict | None:
        found = self.count(scenario)
        if found is None:
            return None
        value, detail = found
        return {"target": self.name, "kind": "count", "unit": "", "value": value, "bound": self.bound,
                "ratio": None, "limit": None, "ci_low": None, "ci_high": None, "resampled": None,
                "verdict": stats.YES if value <= self.bound else stats.NO, "detail": detail}


def unit_of(scenario: dict, series: str) -> str:
    """A series' unit: its own (``units``), else its scenario's."""
    return scenario.get("units", {}).get(series, scenario.get("unit", ""))


def _number(x: float) -> float | None:
    """Rounded for the report; None for an undefined value (JSON has no NaN)."""
    return None if math.isnan(x) else round(x, 3)


def _judged(name: str, kind: str, unit: str, value: float, bound: float, judged: stats.Judgement,
            detail: str) -> dict:
    ratio = judged.ratio
    resampled = f"{ratio.units} {ratio.resampled}"
    if ratio.resampled == "samples" and ratio.units < stats.MIN_SAMPLES:
        resampled = f"{ratio.units} of the {stats.MIN_SAMPLES} samples an interval needs"
    return {"target": name, "kind": kind, "unit": unit, "value": _number(value), "bound": _number(bound),
            "ratio": _number(ratio.estimate), "limit": judged.limit, "ci_low": _number(ratio.low),
            "ci_high": _number(ratio.high), "resampled": resampled,
            "verdict": judged.verdict, "detail": detail}


def _start_overheads(runtime: str) -> Callable[[dict], str]:
    """The start target in the terms it was first set in: the runtime's own part is the
    same for both, so "the shim's overhead over `runtime run` is at most conmon's" is
    "the shim's start is at most conmon's"."""
    def detail(by: dict) -> str:
        alone = by.get(f"{runtime} run")
        if not alone:
            return ""
        base = percentile(alone, 50)
        return (f"overhead over `{runtime} run`: shim {percentile(by['shim'], 50) - base:.1f} ms, "
                f"conmon {percentile(by['conmon'], 50) - base:.1f} ms")
    return detail


def _flood_lost(scenario: dict) -> tuple[float, str] | None:
    flood = scenario.get("throughput", {}).get("shim 10k/s")
    if not flood:
        return None
    return flood["lost"], f"lost of {flood['sent']:,} sent at 10,000/s"


def _logs_mismatched(scenario: dict) -> tuple[float, str] | None:
    checks = scenario.get("checks")
    if not checks:
        return None
    logs = sum(c["matched"] + c["mismatched"] for c in checks.values())
    return sum(c["mismatched"] for c in checks.values()), f"of {logs} k8s-file logs read back"


def _idle_wakeups(scenario: dict) -> tuple[float, str] | None:
    wakeups = scenario.get("wakeups", {}).get("shim")
    if not wakeups:
        return None
    return wakeups["switches"], f"context switches in {wakeups['seconds']} s"


TARGETS = (
    *(Ratio(f"start, exec to payload: `shim run` <= conmon ({runtime})", "start", f"start, {runtime}", "shim",
            "conmon", detail=_start_overheads(runtime)) for runtime in RUNTIMES),
    Ratio("start at Python's floor: exec to runtime create <= 1.5x python -I -S -c pass", "start",
          "exec to runtime create", "shim", "python -I -S -c pass", 1.5),
    Ratio("signal forwarding p50 <= 1.5x tini", "signals", "signal", "shim", "tini", 1.5, 50),
    Ratio("signal forwarding p99 <= 2x tini", "signals", "signal", "shim", "tini", 2.0, 99),
    Bound("readiness relay p50 <= 100 us", "notify", "relay latency", "shim", 100.0),
    Count("readiness relay at 10,000 msg/s: none lost", "notify", _flood_lost, 0),
    Count("idle shim: no wake-ups", "memory", _idle_wakeups, 0),
    Bound("idle shim USS <= 12 MB (median)", "memory", "USS, idle", "shim", 12.0),
    *(Ratio(f"{series}: {shim} <= {PODMAN_SLOWER:g}x conmon", "podman", series, shim, "conmon", PODMAN_SLOWER)
      for series in PODMAN_TIMED for shim in SHIMS),
    Ratio("podman run --rm true: shim + server <= conmon", "podman", "podman run --rm true", "shim + server", "conmon"),
    Ratio(f"podman, CPU per container start: shim + server <= {PODMAN_CPU_FACTOR:g}x conmon (mean)", "podman",
          PODMAN_CPU, "shim + server", "conmon", PODMAN_CPU_FACTOR, stats.MEAN),
    Bound("idle monitor under podman, shim + server: USS <= 3 MB (median)", "memory", "USS, podman", "shim + server",
          3.0),
    Bound("idle monitor under podman, shim + server: USS <= 2 MB (median; the moonshot)", "memory", "USS, podman",
          "shim + server", 2.0),
    Ratio("logs, CPU per GB into a k8s-file: shim <= 1.5x conmon", "logs", "CPU per GB", "shim", "conmon", 1.5),
    Count("logs: every k8s-file log reads back as the payload's bytes", "logs", _logs_mismatched, 0),
    Ratio("systemd boot to READY: shim <= conmon", "systemd", "boot to READY", "shim", "conmon"),
    Ratio("systemd stop to exit: shim <= conmon", "systemd", "stop to exit", "shim", "conmon"),
    Ratio("systemd stop to exit: shim <= conmon + delete", "systemd", "stop to exit", "shim", "conmon + delete"),
)


def check(results: dict, targets=TARGETS) -> list[dict]:
    """Every target whose scenario ran, judged, in the order of ``targets``."""
    judged = []
    for target in targets:
        scenario = results.get("scenarios", {}).get(target.scenario)
        if scenario:
            result = target.judge(scenario)
            if result:
                judged.append(result)
    return judged
