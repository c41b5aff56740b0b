"""Summaries of samples, and how far a comparison between two sample sets can be trusted
(pure; the standard library only).

A ratio of two medians measured once on a shared machine says little: the same run again
gives another ratio. So every comparison comes with a bootstrap confidence interval, from
a seeded generator (the same samples always give the same interval), and a target is
judged on that interval, not on the point estimate:

- ``yes``: the whole interval is within the bound;
- ``no``: the whole interval is beyond it;
- ``within noise``: the interval straddles it, so this run cannot tell.

Contenders measured in interleaved rounds are compared round by round: resampling whole
rounds (each with every contender's samples from it) keeps the pairing, so a machine that
drifts between rounds (frequency, other load) moves both sides of the ratio alike and
cancels out of it, instead of widening the interval.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

CONFIDENCE = 0.95
# Enough resamples that the 2.5% and 97.5% tails hold 50 resampled estimates each.
RESAMPLES = 2000
# Any fixed value would do: the point is that an interval depends only on the samples.
SEED = 16
# With fewer rounds than this, resampling rounds gives too few distinct resamples for the
# tails of the interval to mean anything; samples are then resampled one by one.
MIN_ROUNDS = 8
# With fewer samples than this on a side, resampling cannot show how far the estimate may
# be off (one sample resamples to itself, an interval of zero width): no interval then.
MIN_SAMPLES = 5

YES, NO, WITHIN_NOISE = "yes", "no", "within noise"
# In place of a percentile: the mean, for samples that come in coarse steps (CPU time
# counted in scheduler ticks), whose median is one of a few steps while their mean is
# right on average.
MEAN = "mean"


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), by linear interpolation between closest ranks."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def statistic(samples: Sequence[float], q: float | str) -> float:
    """The q-th percentile, or the mean when q is MEAN."""
    if q == MEAN:
        return sum(samples) / len(samples) if samples else float("nan")
    return percentile(samples, q)


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "mean": statistic(samples, MEAN),
        "median": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "max": max(samples) if samples else float("nan"),
        "min": min(samples) if samples else float("nan"),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


class Interval(NamedTuple):
    """A statistic of all the samples, and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    # what was resampled: "rounds" (whole rounds, pairing kept) or "samples" (one by one)
    resampled: str
    # how many of them
    units: int


def by_round(values: Sequence[float], rounds: Sequence[int]) -> dict[int, list[float]]:
    """The values of each round, in their order, given the round index of each value."""
    if len(values) != len(rounds):
        raise ValueError(f"{len(values)} values but {len(rounds)} round indices")
    groups: dict[int, list[float]] = {}
    for value, index in zip(values, rounds):
        groups.setdefault(index, []).append(value)
    return groups


def bootstrap(draw: Callable[[random.Random], float], *, confidence: float = CONFIDENCE,
              resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """The percentile interval of ``draw(rng)`` (one resampled estimate) over resamples.

    An undefined estimate in any resample (a zero denominator) makes the interval
    undefined (NaN, NaN) rather than quietly narrower."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    rng = random.Random(seed)
    estimates = [draw(rng) for _ in range(resamples)]
    if any(math.isnan(e) for e in estimates):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    return percentile(estimates, tail), percentile(estimates, 100 - tail)


def _resampled(rng: random.Random, units: Sequence[Sequence[float]]) -> list[float]:
    """The samples of len(units) units drawn with replacement."""
    return [value for unit in rng.choices(units, k=len(units)) for value in unit]


def quantile_interval(samples: Sequence[float], q: float | str = 50, rounds: Sequence[int] | None = None, *,
                      confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The q-th percentile of the samples (or their mean: q = MEAN) and its interval; with ``rounds`` (the round
    index of each sample) and at least MIN_ROUNDS of them, whole rounds are resampled.
    With fewer than MIN_SAMPLES samples, the interval is undefined (NaN)."""
    estimate = statistic(samples, q)
    groups = list(by_round(samples, rounds).values()) if rounds is not None else []
    if len(groups) >= MIN_ROUNDS:
        low, high = bootstrap(lambda rng: statistic(_resampled(rng, groups), q),
                              confidence=confidence, resamples=resamples, seed=seed)
        return Interval(estimate, low, high, "rounds", len(groups))
    if len(samples) < MIN_SAMPLES:
        return Interval(estimate, float("nan"), float("nan"), "samples", len(samples))
    low, high = bootstrap(lambda rng: statistic(rng.choices(samples, k=len(samples)), q),
                          confidence=confidence, resamples=resamples, seed=seed)
    return Interval(estimate, low, high, "samples", len(samples))


def ratio_interval(a: Sequence[float], b: Sequence[float], q: float | str = 50,
                   a_rounds: Sequence[int] | None = None, b_rounds: Sequence[int] | None = None, *,
                   confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The ratio of the q-th percentiles (or the means: q = MEAN) of ``a`` and ``b``, and its interval.

    With the round index of every sample of both, and at least MIN_ROUNDS rounds in which
    both were measured, those rounds are resampled whole, both sides together (paired).
    Otherwise the two sets are resampled independently, sample by sample, given at least
    MIN_SAMPLES samples on each side; with fewer, the interval is undefined (NaN)."""
    estimate = ratio(statistic(a, q), statistic(b, q))
    if a_rounds is not None and b_rounds is not None:
        ga, gb = by_round(a, a_rounds), by_round(b, b_rounds)
        shared = sorted(set(ga) & set(gb))
        if len(shared) >= MIN_ROUNDS:
            pairs = [(ga[index], gb[index]) for index in shared]

            def draw(rng: random.Random) -> float:
                chosen = rng.choices(pairs, k=len(pairs))
                return ratio(statistic([v for pa, _ in chosen for v in pa], q),
                             statistic([v for _, pb in chosen for v in pb], q))

            low, high = bootstrap(draw, confidence=confidence, resamples=resamples, seed=seed)
            return Interval(estimate, low, high, "rounds", len(shared))
    if min(len(a), len(b)) < MIN_SAMPLES:
        return Interval(estimate, float("nan"), float("nan"), "samples", min(len(a), len(b)))
    low, high = bootstrap(lambda rng: ratio(statistic(rng.choices(a, k=len(a)), q),
                                            statistic(rng.choices(b, k=len(b)), q)),
                          confidence=confidence, resamples=resamples, seed=seed)
    return Interval(estimate, low, high, "samples", min(len(a), len(b)))


def verdict(low: float, high: float, limit: float) -> str:
    """Is "at most ``limit``" met, given the interval [low, high] of the measured value?"""
    if math.isnan(low) or math.isnan(high):
        return WITHIN_NOISE  # an undefined interval shows neither a pass nor a miss
    if high <= limit:
        return YES
    if low > limit:
        return NO
    return WITHIN_NOISE


class Judgement(NamedTuple):
    """A target "A <= limit" judged on the interval of A's ratio."""

    verdict: str
    # what the ratio may be: the factor of "A <= factor x B", 1 for "A <= bound"
    limit: float
    # A / B, or A / bound
    ratio: Interval


def at_most_times(a: Sequence[float], b: Sequence[float], factor: float, q: float | str = 50,
                  a_rounds: Sequence[int] | None = None, b_rounds: Sequence[int] | None = None,
                  **options) -> Judgement:
    """"The q-th percentile of A is at most ``factor`` times B's", judged on their ratio."""
    interval = ratio_interval(a, b, q, a_rounds, b_rounds, **options)
    return Judgement(verdict(interval.low, interval.high, factor), factor, interval)


def at_most(a: Sequence[float], bound: float, q: float | str = 50, rounds: Sequence[int] | None = None,
            **options) -> Judgement:
    """"The q-th percentile of A is at most ``bound``", judged on A / bound."""
    if bound <= 0:
        raise ValueError(f"a bound to divide by must be positive, not {bound}")
    value = quantile_interval(a, q, rounds, **options)
    interval = value._replace(estimate=value.estimate / bound, low=value.low / bound, high=value.high / bound)
    # judged on the value itself: a quotient can round onto the limit
    return Judgement(verdict(value.low, value.high, bound), 1.0, interval)
