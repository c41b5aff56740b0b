"""Summaries of samples (pure): median, p99, max, and ratios between contenders."""

from __future__ import annotations


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100), by linear interpolation between closest ranks."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "max": max(samples) if samples else float("nan"),
        "min": min(samples) if samples else float("nan"),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")
