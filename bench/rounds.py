"""Contenders side by side, in rounds (pure).

Each round measures every contender once (or a fixed number of times) in turn, so that
whatever the machine does at the time weighs on all of them alike; each sample keeps the
index of its round, so that the statistics can resample whole rounds (bench/stats.py).
The order rotates from round to round: no contender always runs first after a pause, or
always right after the same other one. Warm-up rounds come first and are discarded: the
first runs pay for cold caches, page faults and lazy set-up that later ones do not.
"""

from __future__ import annotations

from collections.abc import Sequence


def schedule(names: Sequence[str], rounds: int, warmup: int = 0) -> list[tuple[int | None, list[str]]]:
    """(round index, contender order) for each round: ``warmup`` rounds with index None,
    then rounds 0 .. rounds-1, the order rotated by one each time."""
    if rounds < 0 or warmup < 0:
        raise ValueError(f"rounds and warm-up rounds cannot be negative: {rounds}, {warmup}")
    plan = []
    for k in range(warmup + rounds):
        shift = k % len(names) if names else 0
        plan.append((k - warmup if k >= warmup else None, [*names[shift:], *names[:shift]]))
    return plan


class Samples:
    """The samples of each series and contender, with the round each one came from.

    ``order`` is the order contenders are listed in (tables, plots), whatever order they
    ran in; contenders not in it come after, in the order they were first seen."""

    def __init__(self, order: Sequence[str] = ()) -> None:
        self.order = list(order)
        self._values: dict[str, dict[str, list[float]]] = {}
        self._rounds: dict[str, dict[str, list[int]]] = {}

    def declare(self, series: str, contender: str) -> None:
        """Make the series and contender exist, even if no sample comes (a failed run)."""
        self._values.setdefault(series, {}).setdefault(contender, [])
        self._rounds.setdefault(series, {}).setdefault(contender, [])

    def add(self, series: str, contender: str, round_index: int | None, value: float) -> None:
        """Record one sample; a warm-up sample (round None) is dropped."""
        self.declare(series, contender)
        if round_index is None:
            return
        self._values[series][contender].append(value)
        self._rounds[series][contender].append(round_index)

    def _sorted(self, by: dict[str, list]) -> dict[str, list]:
        rank = {name: i for i, name in enumerate(self.order)}
        names = sorted(by, key=lambda name: (rank.get(name, len(rank)), list(by).index(name)))
        return {name: by[name] for name in names}

    def series(self) -> dict[str, dict[str, list[float]]]:
        return {s: self._sorted(by) for s, by in sorted(self._values.items())}

    def rounds(self) -> dict[str, dict[str, list[int]]]:
        return {s: self._sorted(by) for s, by in sorted(self._rounds.items())}


def design(rounds: int, warmup: int, per_round: int = 1) -> dict[str, int]:
    """How a scenario's samples were taken, for the report."""
    return {"rounds": rounds, "warm-up rounds": warmup, "per round": per_round}
