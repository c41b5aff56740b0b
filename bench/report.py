"""Writing a run's results: ``results.json``, ``results.md`` (tables), and PNG plots."""

from __future__ import annotations

import json
import os

from bench.stats import summary


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
    if results.get("targets"):
        lines += ["## Targets", "", "| target | measured | bound | met |", "|---|---:|---:|:---:|"]
        for t in results["targets"]:
            lines.append(f"| {t['target']} | {t['value']} | {t['bound']} | {'yes' if t['met'] else '**no**'} |")
        lines.append("")
    for name, scenario in results["scenarios"].items():
        lines += [f"## {name}", ""]
        for series, by in scenario.get("series", {}).items():
            lines += table(series, by, scenario["unit"])
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
        for note in scenario.get("notes", []):
            lines.append(f"- {note}")
        lines.append("")
    return "\n".join(lines)


def table(series: str, by: dict, unit: str) -> list[str]:
    names = list(by)
    sums = {n: summary(by[n]) for n in names}
    head = f"| {series} ({unit}) | n | median | p99 | max | " + " | ".join(f"median / {n}" for n in names) + " |"
    rows = [head, "|---|---:|---:|---:|---:|" + "---:|" * len(names)]
    for n in names:
        s = sums[n]
        ratios = " | ".join("" if m == n else f"{s['median'] / sums[m]['median']:.2f}" for m in names)
        rows.append(f"| {n} | {s['n']} | {s['median']:.3f} | {s['p99']:.3f} | {s['max']:.3f} | {ratios} |")
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
            ax.set_ylabel(scenario["unit"])
            ax.tick_params(axis="x", rotation=30)
            if max(max(by[n]) for n in names) > 20 * min(min(by[n]) for n in names if min(by[n]) > 0):
                ax.set_yscale("log")
        fig.tight_layout()
        path = os.path.join(directory, f"{name}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    ratios = shim_ratios(results)
    if ratios:
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(ratios)), 4))
        ax.bar(range(len(ratios)), [r for _, r in ratios], color=["tab:green" if r <= 1 else "tab:orange" for _, r in ratios])
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_xticks(range(len(ratios)), [label for label, _ in ratios], rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("shim median / peer median")
        ax.set_title("the shim against each peer (below 1: the shim is faster)")
        fig.tight_layout()
        path = os.path.join(directory, "ratios.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def shim_ratios(results: dict) -> list[tuple[str, float]]:
    ratios = []
    for name, scenario in results["scenarios"].items():
        for series, by in scenario.get("series", {}).items():
            if not by.get("shim"):
                continue
            for peer, samples in by.items():
                if peer != "shim" and samples:
                    ratios.append((f"{series}: shim / {peer}", summary(by["shim"])["median"] / summary(samples)["median"]))
    return ratios
