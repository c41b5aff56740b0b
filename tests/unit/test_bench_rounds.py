"""The benchmarks' rounds: who runs when, and samples that keep their round."""

import pytest
from hypothesis import given, strategies as st

from bench.rounds import Samples, design, schedule

names = st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6, unique=True)


def test_schedule_rotates_and_puts_warm_ups_first():
    assert schedule(["a", "b", "c"], rounds=3, warmup=1) == [
        (None, ["a", "b", "c"]), (0, ["b", "c", "a"]), (1, ["c", "a", "b"]), (2, ["a", "b", "c"])]


@given(names, st.integers(0, 20), st.integers(0, 3))
def test_every_round_runs_every_contender_once(contenders, rounds, warmup):
    plan = schedule(contenders, rounds, warmup)
    assert [index for index, _ in plan] == [None] * warmup + list(range(rounds))
    assert all(sorted(order) == sorted(contenders) for _, order in plan)


@given(names, st.integers(1, 4))
def test_over_whole_cycles_each_contender_runs_in_each_position_equally(contenders, cycles):
    plan = schedule(contenders, rounds=cycles * len(contenders))
    for position in range(len(contenders)):
        firsts = [order[position] for _, order in plan]
        assert all(firsts.count(name) == cycles for name in contenders)


def test_negative_counts_are_refused():
    with pytest.raises(ValueError):
        schedule(["a"], rounds=-1)


def test_samples_keep_their_rounds_and_drop_warm_ups():
    samples = Samples(order=["shim", "tini"])
    for index, order in schedule(["tini", "shim"], rounds=2, warmup=1):
        for name in order:
            samples.add("signal", name, index, {"shim": 10, "tini": 20}[name] + (index or 0))
    assert samples.series() == {"signal": {"shim": [10, 11], "tini": [20, 21]}}
    assert samples.rounds() == {"signal": {"shim": [0, 1], "tini": [0, 1]}}


def test_contenders_are_listed_in_the_given_order_then_as_first_seen():
    samples = Samples(order=["b"])
    for name in ("c", "a", "b"):
        samples.add("s", name, 0, 1.0)
    assert list(samples.series()["s"]) == ["b", "c", "a"]


def test_a_declared_contender_without_samples_is_listed():
    samples = Samples()
    samples.declare("s", "failed")
    samples.add("s", "only warm-up", None, 1.0)
    assert samples.series() == {"s": {"failed": [], "only warm-up": []}}


def test_design():
    assert design(20, 1, 50) == {"rounds": 20, "warm-up rounds": 1, "per round": 50}
