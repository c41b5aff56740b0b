"""How hard the hostile tests push: CI's sizes by default, release sizes with
``SHIM_HOSTILE_SCALE=release`` (see RELIABILITY.md).

CI's run must fit the suite's time budget, so its floods and storms are shorter; the
release run is the one whose figures RELIABILITY.md publishes.
"""

from __future__ import annotations

import os

VARIABLE = "SHIM_HOSTILE_SCALE"


class Scale:
    __slots__ = ("name", "fuzz_datagrams", "notify_rate", "notify_seconds", "orphans", "bomb_seconds",
                 "signal_rate", "signal_seconds", "containers", "engine_containers", "races")

    def __init__(self, **values) -> None:
        for name in self.__slots__:
            setattr(self, name, values[name])


SCALES = {
    "ci": Scale(name="ci", fuzz_datagrams=10_000, notify_rate=10_000, notify_seconds=2, orphans=1_000,
                bomb_seconds=2, signal_rate=10_000, signal_seconds=2, containers=100, engine_containers=10,
                races=5),
    "release": Scale(name="release", fuzz_datagrams=50_000, notify_rate=10_000, notify_seconds=10, orphans=5_000,
                     bomb_seconds=10, signal_rate=10_000, signal_seconds=10, containers=100, engine_containers=100,
                     races=50),
}


def current() -> Scale:
    name = os.environ.get(VARIABLE, "ci")
    if name not in SCALES:
        raise ValueError(f"{VARIABLE}={name!r}: use one of {', '.join(SCALES)}")
    return SCALES[name]
