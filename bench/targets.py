"""The project's performance targets, checked against a run's results (pure)."""

from __future__ import annotations

from bench.stats import percentile


def _median(samples):
    return percentile(samples, 50)


def check(results: dict) -> list[dict]:
    targets = []
    scenarios = results.get("scenarios", {})

    for runtime in ("runc", "crun"):
        start = scenarios.get("start", {}).get("series", {}).get(f"start, {runtime}", {})
        alone, shim, conmon = start.get(f"{runtime} run"), start.get("shim"), start.get("conmon")
        if alone and shim and conmon:
            ours, theirs = _median(shim) - _median(alone), _median(conmon) - _median(alone)
            targets.append(_target(f"start overhead over `{runtime} run` <= conmon's (ms, medians)",
                                   ours, theirs, ours <= theirs))

    signals = scenarios.get("signals", {}).get("series", {}).get("signal", {})
    if signals.get("shim") and signals.get("tini"):
        for q, factor in ((50, 1.5), (99, 2.0)):
            ours, tini = percentile(signals["shim"], q), percentile(signals["tini"], q)
            targets.append(_target(f"signal forwarding p{q} <= {factor}x tini (us)", ours, factor * tini,
                                   ours <= factor * tini))

    notify = scenarios.get("notify", {})
    relay = notify.get("series", {}).get("relay latency", {}).get("shim")
    if relay:
        targets.append(_target("readiness relay p50 <= 100 us", _median(relay), 100.0, _median(relay) <= 100))
    flood = notify.get("throughput", {}).get("shim 10k/s")
    if flood:
        targets.append(_target("10,000 msg/s through the relay without loss (lost)", flood["lost"], 0,
                               flood["lost"] == 0 and flood["sent"] >= 10000))

    memory = scenarios.get("memory", {})
    if "shim" in memory.get("wakeups", {}):
        switches = memory["wakeups"]["shim"]["switches"]
        seconds = memory["wakeups"]["shim"]["seconds"]
        targets.append(_target(f"idle shim wake-ups in {seconds} s", switches, 0, switches == 0))
    if "shim" in memory.get("one", {}):
        uss = memory["one"]["shim"]["uss"]
        targets.append(_target("idle shim USS <= 12 MB", uss, 12.0, uss <= 12.0))

    systemd = scenarios.get("systemd", {}).get("series", {})
    for series, peer in (("boot to READY", "conmon"), ("stop to exit", "conmon"), ("stop to exit", "conmon + delete")):
        by = systemd.get(series, {})
        if by.get("shim") and by.get(peer):
            ours, theirs = _median(by["shim"]), _median(by[peer])
            targets.append(_target(f"systemd {series}: shim <= {peer} (ms, medians)", ours, theirs, ours <= theirs))
    return targets


def _target(name: str, value: float, bound: float, met: bool) -> dict:
    return {"target": name, "value": round(value, 3), "bound": round(bound, 3), "met": bool(met)}
