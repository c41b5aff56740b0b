"""Writing a run's results: ``results.json``, ``results.md`` (tables), and PNG plots."""

from __future__ import annotations

import json
import os

from bench.stats import ratio, summary
from bench.targets import unit_of


def write(results: dict, directory: str) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, "results.json"), os.path.join(directory, "results.md")]
    with open(paths[0], "w") as f:
        json.dump(results, f, indent=1)
    with open(paths[1], "w") as f:
        f.write(markdown(results))
    paths += plots(results, directory)
    return paths


def markdown(results: dict) -> str:
    meta = results["meta"]
    lines = [f"# shim benchmarks ({'quick' if meta['quick'] else 'full'} run, {meta['date']})", "",
             f"Host: {meta['host']}. Python {meta['python']}. " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
             ""]
    for warning in results.get("warnings", []):
        lines += [f"**Warning**: {warning}.", ""]
    if results.get("targets"):
        lines += targets_table(results["targets"], meta.get("intervals", {}))
    for name, scenario in results["scenarios"].items():
        lines += [f"## {name}", ""]
        if scenario.get("design"):
            lines += [rounds_line(scenario["design"]), ""]
        for series, by in scenario.get("series", {}).items():
            lines += table(series, by, unit_of(scenario, series))
        if "throughput" in scenario:
            lines += ["| relay | sent | received | lost | messages/s |", "|---|---:|---:|---:|---:|"]
            for label, t in scenario["throughput"].items():
                lines.append(f"| {label} | {t['sent']} | {t['received']} | {t['lost']} | {t['per_second']} |")
            lines.append("")
        if "one" in scenario:
            lines += ["| monitor | RSS one | USS one | PSS one | "
                      f"RSS {scenario['many']['count']} | USS {scenario['many']['count']} | "
                      f"PSS {scenario['many']['count']} | idle wake-ups |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for monitor, one in scenario["one"].items():
                many = scenario["many"].get(monitor, {})
                wake = scenario["wakeups"].get(monitor, {})
                lines.append(f"| {monitor} | {one['rss']:.1f} | {one['uss']:.1f} | {one['pss']:.1f} | "
                             f"{many.get('rss', 0):.1f} | {many.get('uss', 0):.1f} | {many.get('pss', 0):.1f} | "
                             f"{wake.get('switches', '-')} in {wake.get('seconds', '-')} s |")
            lines += ["", "(MB; 'one' is a single idle monitor while the others also run.)", ""]
        under_podman = {k: v for k, v in scenario.get("podman", {}).items() if k != "count"}
        if under_podman:
            count = scenario["podman"]["count"]
            lines += [f"| monitor under podman | RSS of {count} | USS of {count} | PSS of {count} | "
                      "forked by the fork server |", "|---|---:|---:|---:|---:|"]
            for monitor, total in under_podman.items():
                lines.append(f"| {monitor} | {total['rss']:.1f} | {total['uss']:.1f} | {total['pss']:.1f} | "
                             f"{total['forked by the server']} of {count} |")
            lines += ["", f"(MB, totals of {count} idle containers' monitors at once.)", ""]
        for note in scenario.get("notes", []):
            lines.append(f"- {note}")
        lines.append("")
    if results.get("machine"):
        lines += machine_table(results["machine"])
    return "\n".join(lines)


VERDICTS = {"yes": "yes", "no": "**no**", "within noise": "*within noise*"}


def _figure(x, unit: str = "") -> str:
    if x is None:
        return "?"
    return f"{x:.3g} {unit}".rstrip() if isinstance(x, float) else f"{x} {unit}".rstrip()


def targets_table(targets: list[dict], intervals: dict) -> list[str]:
    """Each target with its verdict, judged on the interval of its ratio."""
    confidence = intervals.get("confidence", 0.95)
    lines = ["## Targets", "",
             f"A target is met (yes) when the whole {confidence:.0%} bootstrap interval of its ratio is within the "
             "limit, missed (no) when the whole interval is beyond it, and *within noise* when the interval "
             "straddles it: this run cannot tell. Ratios of contenders side by side are resampled by round "
             "(bench/README.md).", "",
             f"| target | value | bound | ratio [{confidence:.0%} interval] | at most | verdict | |",
             "|---|---:|---:|---|---:|:---:|---|"]
    for t in targets:
        if t["kind"] == "count":
            interval, limit = "exact count", ""
        elif t["ci_low"] is None or t["ci_high"] is None:
            interval, limit = f"{_figure(t['ratio'])} (no interval)", _figure(t["limit"])
        else:
            interval = f"{_figure(t['ratio'])} [{_figure(t['ci_low'])}, {_figure(t['ci_high'])}]"
            limit = _figure(t["limit"])
        notes = "; ".join(x for x in (t["detail"], f"resampled: {t['resampled']}" if t["resampled"] else "") if x)
        lines.append(f"| {t['target']} | {_figure(t['value'], t['unit'])} | {_figure(t['bound'], t['unit'])} | "
                     f"{interval} | {limit} | {VERDICTS[t['verdict']]} | {notes} |")
    return lines + [""]


def rounds_line(design: dict) -> str:
    per_round = design.get("per round", 1)
    each = "one sample" if per_round == 1 else f"{per_round} samples"
    return (f"{design['rounds']} rounds of {each} per contender, the order rotated each round "
            f"(and {design['warm-up rounds']} warm-up round(s) before, discarded).")


def machine_table(machine: dict) -> list[str]:
    """What else the machine did during each scenario (bench/machine.py)."""
    lines = ["## Machine", "",
             "Shares of all CPUs' time during each scenario: busy (anyone), the bench's own processes, other "
             "processes, kernel threads, and time stolen by a hypervisor; load averages before and after.", "",
             "| scenario | seconds | busy | bench | others | kernel threads | steal | load (1 min) | busiest others |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name, m in machine.items():
        others = ", ".join(f"{p['name']} ({p['pid']}) {p['share']:.1%}" for p in m["busiest others"][:5])
        lines.append(f"| {name} | {m['seconds']} | {m['busy']:.0%} | {m['own']:.0%} | {m['others']:.0%} | "
                     f"{m['kernel threads']:.0%} | {m['steal']:.0%} | "
                     f"{m['loadavg before']['1 min']} -> {m['loadavg after']['1 min']} | {others} |")
    return lines + [""]


def table(series: str, by: dict, unit: str) -> list[str]:
    names = list(by)
    sums = {n: summary(by[n]) for n in names}
    head = (f"| {series} ({unit}) | n | mean | median | p99 | max | "
            + " | ".join(f"median / {n}" for n in names) + " |")
    rows = [head, "|---|---:|---:|---:|---:|---:|" + "---:|" * len(names)]
    for n in names:
        s = sums[n]
        ratios = " | ".join("" if m == n else f"{ratio(s['median'], sums[m]['median']):.2f}" for m in names)
        rows.append(f"| {n} | {s['n']} | {s['mean']:.3f} | {s['median']:.3f} | {s['p99']:.3f} | {s['max']:.3f} "
                    f"| {ratios} |")
    return rows + [""]


def plots(results: dict, directory: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, scenario in results["scenarios"].items():
        series = {k: v for k, v in scenario.get("series", {}).items() if any(v.values())}
        if not series:
            continue
        fig, axes = plt.subplots(1, len(series), figsize=(6 * len(series), 4), squeeze=False)
        for ax, (label, by) in zip(axes[0], series.items()):
            names = [n for n in by if by[n]]
            ax.boxplot([by[n] for n in names], showfliers=True, whis=(1, 99))
            ax.set_xticks(range(1, len(names) + 1), names)
            ax.set_title(f"{name}: {label}")
            ax.set_ylabel(unit_of(scenario, label))
            ax.tick_params(axis="x", rotation=30)
            if max(max(by[n]) for n in names) > 20 * min(min(by[n]) for n in names if min(by[n]) > 0):
                ax.set_yscale("log")
        fig.tight_layout()
        path = os.path.join(directory, f"{name}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    judged = [t for t in results.get("targets", []) if t["ratio"] is not None]
    if judged:
        written.append(ratios_plot(plt, judged, os.path.join(directory, "ratios.png")))
    return written


COLOURS = {"yes": "tab:green", "no": "tab:red", "within noise": "tab:orange"}


def ratios_plot(plt, targets: list[dict], path: str) -> str:
    """Each target's ratio with its interval, against its limit (log scale: 2x and 0.5x
    are as far from 1)."""
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(targets)))
    for y, t in enumerate(reversed(targets)):
        low = t["ci_low"] if t["ci_low"] is not None else t["ratio"]
        high = t["ci_high"] if t["ci_high"] is not None else t["ratio"]
        ax.errorbar([t["ratio"]], [y], xerr=[[t["ratio"] - low], [high - t["ratio"]]], fmt="o", capsize=4,
                    color=COLOURS[t["verdict"]])
        ax.plot([t["limit"]], [y], marker="|", markersize=16, color="black")
    ax.set_yticks(range(len(targets)), [t["target"] for t in reversed(targets)], fontsize=8)
    ax.set_xscale("log")
    from matplotlib.ticker import ScalarFormatter

    for axis_format in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
        axis_format(ScalarFormatter())  # 0.6, not 6 x 10^-1
    ax.set_xlabel("ratio (value / other contender, or value / bound); |: the limit")
    ax.set_title("targets: ratio and interval (green: met, red: missed, orange: within noise)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
