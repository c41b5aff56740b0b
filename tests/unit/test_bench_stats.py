"""The benchmarks' statistics: percentiles, bootstrap intervals for ratios (paired by round
or not), and verdicts on targets."""

import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from bench import stats
from bench.stats import NO, WITHIN_NOISE, YES

# Fewer resamples than a real run: the properties hold for any number, and this keeps
# hundreds of examples fast.
FAST = {"resamples": 200}

positive = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(positive, min_size=stats.MIN_SAMPLES, max_size=40)
quantiles = st.sampled_from([0, 10, 50, 90, 99, 100])


def rounds_of(values, per_round):
    return [i // per_round for i in range(len(values))]


# -- percentile -----------------------------------------------------------------------

@pytest.mark.parametrize("values, q, expected", [
    ([3, 1, 2, 4], 50, 2.5), ([5], 99, 5), ([1, 2, 3, 4, 5], 0, 1), ([1, 2, 3, 4, 5], 100, 5),
    ([0, 10], 25, 2.5), (list(range(101)), 99, 99),
])
def test_percentile_known_values(values, q, expected):
    assert stats.percentile(values, q) == expected


def test_percentile_of_nothing_is_undefined():
    assert math.isnan(stats.percentile([], 50))


@given(samples, quantiles, quantiles)
def test_percentile_is_monotone_and_within_the_samples(values, q1, q2):
    low, high = sorted((q1, q2))
    assert min(values) <= stats.percentile(values, low) <= stats.percentile(values, high) <= max(values)


# -- grouping by round ----------------------------------------------------------------

def test_by_round_keeps_each_rounds_values_in_order():
    assert stats.by_round([1, 2, 3, 4, 5], [0, 1, 0, 2, 1]) == {0: [1, 3], 1: [2, 5], 2: [4]}


def test_by_round_refuses_mismatched_lengths():
    with pytest.raises(ValueError):
        stats.by_round([1, 2], [0])


# -- bootstrap intervals --------------------------------------------------------------

@given(samples, samples, quantiles)
def test_intervals_are_deterministic(a, b, q):
    assert stats.ratio_interval(a, b, q, **FAST) == stats.ratio_interval(a, b, q, **FAST)
    assert stats.quantile_interval(a, q, **FAST) == stats.quantile_interval(a, q, **FAST)


def test_the_seed_is_what_makes_them_deterministic():
    rng = random.Random(1)
    a, b = [rng.random() for _ in range(30)], [rng.random() for _ in range(30)]
    assert stats.ratio_interval(a, b, seed=1, **FAST) != stats.ratio_interval(a, b, seed=2, **FAST)


@given(samples, quantiles)
def test_a_quantiles_interval_lies_within_the_samples(values, q):
    interval = stats.quantile_interval(values, q, **FAST)
    assert min(values) <= interval.low <= interval.high <= max(values)
    assert interval.estimate == stats.percentile(values, q)


@given(samples, samples, quantiles)
def test_a_ratios_interval_is_ordered_and_within_the_extreme_ratios(a, b, q):
    interval = stats.ratio_interval(a, b, q, **FAST)
    assert min(a) / max(b) * (1 - 1e-12) <= interval.low <= interval.high <= max(a) / min(b) * (1 + 1e-12)


@given(samples, samples, st.floats(min_value=0.5, max_value=0.99), st.floats(min_value=0.01, max_value=0.49))
def test_a_higher_confidence_never_gives_a_narrower_interval(a, b, high, less):
    wide = stats.ratio_interval(a, b, confidence=high, **FAST)
    narrow = stats.ratio_interval(a, b, confidence=high - less, **FAST)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


@given(samples, samples, st.floats(min_value=0.001, max_value=1000))
def test_scaling_one_side_scales_the_ratio_and_its_interval(a, b, factor):
    plain = stats.ratio_interval(a, b, **FAST)
    scaled = stats.ratio_interval([v * factor for v in a], b, **FAST)
    for got, expected in zip(scaled[:3], plain[:3]):
        assert got == pytest.approx(expected * factor, rel=1e-9)


@given(samples)
def test_constant_samples_have_no_spread(values):
    interval = stats.quantile_interval([values[0]] * len(values), 50, **FAST)
    assert interval.low == interval.high == values[0]


@given(st.lists(positive, min_size=stats.MIN_ROUNDS, max_size=60), quantiles)
def test_a_set_paired_with_itself_has_a_ratio_of_exactly_one(values, q):
    rounds = list(range(len(values)))
    interval = stats.ratio_interval(values, values, q, rounds, rounds, **FAST)
    assert (interval.estimate, interval.low, interval.high, interval.resampled) == (1, 1, 1, "rounds")


def test_an_undefined_ratio_gives_an_undefined_interval():
    interval = stats.ratio_interval([1.0, 2.0] * 5, [0.0, 0.0] * 5, **FAST)
    assert all(math.isnan(x) for x in interval[:3])
    assert math.isnan(stats.ratio_interval([], [1.0]).low)
    assert math.isnan(stats.quantile_interval([]).low)


@given(st.lists(positive, min_size=1, max_size=stats.MIN_SAMPLES - 1), samples)
def test_too_few_samples_give_no_interval_and_no_verdict(few, enough):
    for interval in (stats.quantile_interval(few, **FAST), stats.ratio_interval(few, enough, **FAST),
                     stats.ratio_interval(enough, few, **FAST)):
        assert math.isnan(interval.low) and math.isnan(interval.high)
        assert interval.units == len(few)
        assert not math.isnan(interval.estimate)
    assert stats.at_most_times(few, enough, 1e9).verdict == WITHIN_NOISE
    assert stats.at_most(few, 1e9).verdict == WITHIN_NOISE


def test_invalid_confidence_is_refused():
    with pytest.raises(ValueError):
        stats.quantile_interval([1.0] * stats.MIN_SAMPLES, confidence=1.0)


# -- what is resampled ----------------------------------------------------------------

def test_rounds_are_resampled_only_when_there_are_enough():
    values = [float(v) for v in range(40)]
    few = rounds_of(values, 40 // (stats.MIN_ROUNDS - 1) + 1)
    enough = rounds_of(values, 40 // stats.MIN_ROUNDS)
    assert len(set(few)) < stats.MIN_ROUNDS <= len(set(enough))
    assert stats.quantile_interval(values, 50, few, **FAST)[3:] == ("samples", 40)
    assert stats.quantile_interval(values, 50, enough, **FAST)[3:] == ("rounds", len(set(enough)))
    assert stats.quantile_interval(values, **FAST)[3:] == ("samples", 40)
    assert stats.ratio_interval(values, values, 50, few, few, **FAST)[3:] == ("samples", 40)
    assert stats.ratio_interval(values, values, 50, enough, enough, **FAST)[3:] == ("rounds", len(set(enough)))


def test_pairing_uses_only_the_rounds_both_were_measured_in():
    n = stats.MIN_ROUNDS
    a, b = [1.0] * (2 * n), [2.0] * (2 * n)
    a_rounds, b_rounds = list(range(2 * n)), list(range(n, 3 * n))  # n rounds in common
    assert stats.ratio_interval(a, b, 50, a_rounds, b_rounds, **FAST)[3:] == ("rounds", n)
    b_rounds = list(range(n + 1, 3 * n + 1))  # one round fewer in common: unpaired
    assert stats.ratio_interval(a, b, 50, a_rounds, b_rounds, **FAST)[3:] == ("samples", 2 * n)


def drifting_rounds(rounds, per_round, a_over_b, noise, seed=7):
    """Samples of A and B, measured side by side in rounds on a machine whose speed drifts
    by a factor up to 3 from round to round; within a round, A = a_over_b x B, noisily."""
    rng = random.Random(seed)
    a, b, indices = [], [], []
    for r in range(rounds):
        drift = rng.uniform(1, 3)
        for _ in range(per_round):
            base = 100 * drift
            b.append(base * rng.uniform(1 - noise, 1 + noise))
            a.append(a_over_b * base * rng.uniform(1 - noise, 1 + noise))
            indices.append(r)
    return a, b, indices


def test_pairing_by_round_cancels_the_machines_drift():
    a, b, rounds = drifting_rounds(rounds=20, per_round=5, a_over_b=0.85, noise=0.05)
    paired = stats.at_most_times(a, b, 1.0, 50, rounds, rounds)
    unpaired = stats.at_most_times(a, b, 1.0)
    assert paired.verdict == YES, paired
    assert unpaired.verdict == WITHIN_NOISE, unpaired  # the drift hides the difference
    assert paired.ratio.high - paired.ratio.low < (unpaired.ratio.high - unpaired.ratio.low) / 3


def test_a_real_miss_is_a_miss_and_a_tie_is_noise():
    a, b, rounds = drifting_rounds(rounds=20, per_round=5, a_over_b=1.3, noise=0.1)
    assert stats.at_most_times(a, b, 1.0, 50, rounds, rounds).verdict == NO
    assert stats.at_most_times(a, b, 1.5, 50, rounds, rounds).verdict == YES
    tie_a, tie_b, rounds = drifting_rounds(rounds=20, per_round=5, a_over_b=1.0, noise=0.1)
    tie = stats.at_most_times(tie_a, tie_b, 1.0, 50, rounds, rounds)
    assert tie.verdict == WITHIN_NOISE and tie.ratio.low < 1 < tie.ratio.high


def coverage(simulations, make, truth):
    """The share of simulated runs whose 95% interval holds the true ratio."""
    held = 0
    for i in range(simulations):
        interval = stats.ratio_interval(*make(random.Random(i)), resamples=400)
        held += interval.low <= truth <= interval.high
    return held / simulations


def test_independent_intervals_hold_the_true_ratio_about_95_percent_of_the_time():
    # log-normal samples: the median of exp(N(mu, s)) is exp(mu), so the true ratio is 1.2
    def make(rng):
        return ([math.exp(rng.gauss(math.log(1.2), 0.4)) for _ in range(60)],
                [math.exp(rng.gauss(0, 0.4)) for _ in range(60)])

    assert 0.88 <= coverage(200, make, 1.2) <= 0.99


def test_paired_intervals_hold_the_true_ratio_about_95_percent_of_the_time():
    # each round drifts by its own factor; the log-normal noise within it has median 1
    def make(rng):
        a, b, rounds = [], [], []
        for r in range(12):
            drift = rng.uniform(1, 3)
            for _ in range(5):
                a.append(1.2 * drift * math.exp(rng.gauss(0, 0.3)))
                b.append(drift * math.exp(rng.gauss(0, 0.3)))
                rounds.append(r)
        return a, b, 50, rounds, rounds

    assert 0.88 <= coverage(200, make, 1.2) <= 0.99


# -- verdicts -------------------------------------------------------------------------

@pytest.mark.parametrize("low, high, limit, expected", [
    (0.5, 0.9, 1.0, YES), (0.5, 1.0, 1.0, YES), (1.0, 1.0, 1.0, YES),
    (1.01, 2.0, 1.0, NO), (0.9, 1.1, 1.0, WITHIN_NOISE), (1.0, 1.5, 1.0, WITHIN_NOISE),
    (1.2, 1.4, 1.5, YES), (1.4, 1.6, 1.5, WITHIN_NOISE), (1.6, 1.7, 1.5, NO),
    (float("nan"), float("nan"), 1.0, WITHIN_NOISE),
])
def test_verdicts(low, high, limit, expected):
    assert stats.verdict(low, high, limit) == expected


@given(st.floats(allow_nan=False), st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_a_verdict_is_yes_exactly_when_the_whole_interval_is_within(x, y, limit):
    low, high = sorted((x, y))
    got = stats.verdict(low, high, limit)
    assert (got == YES) == (high <= limit)
    assert (got == NO) == (low > limit)


@settings(max_examples=50)
@given(samples, st.floats(min_value=0.01, max_value=1e6))
def test_an_absolute_bound_is_judged_on_value_over_bound(values, bound):
    judged = stats.at_most(values, bound, **FAST)
    value = stats.quantile_interval(values, **FAST)
    assert judged.limit == 1.0
    assert judged.ratio.low == pytest.approx(value.low / bound)
    assert judged.ratio.high == pytest.approx(value.high / bound)
    assert judged.verdict == stats.verdict(value.low, value.high, bound)


def test_an_absolute_bound_must_be_positive():
    with pytest.raises(ValueError):
        stats.at_most([1.0] * stats.MIN_SAMPLES, 0)


# -- the mean, for samples in coarse steps ------------------------------------------------

def test_the_mean_in_place_of_a_percentile():
    ticks = [0, 0, 0, 4, 4]  # a CPU time counted in 4 ms ticks: the median says 0
    assert stats.statistic(ticks, stats.MEAN) == 1.6 and stats.statistic(ticks, 50) == 0
    assert math.isnan(stats.statistic([], stats.MEAN))
    assert stats.summary(ticks)["mean"] == 1.6


def test_a_ratio_of_means_and_its_interval():
    a, b = [2.0, 6.0] * 5, [1.0, 3.0] * 5
    interval = stats.ratio_interval(a, b, stats.MEAN, rounds_of(a, 1), rounds_of(b, 1), **FAST)
    assert interval.estimate == 2.0 and interval.resampled == "rounds"
    assert interval.low == interval.high == 2.0  # paired rounds: every resample keeps a / b = 2
