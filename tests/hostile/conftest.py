"""The hostile tests' fixtures: their scale, and the figures they measure.

Every figure a test records with ``figures.record(name, value, unit)`` is printed at the
end of the run, and written as JSON to ``$SHIM_HOSTILE_FIGURES`` when that is set: the
numbers RELIABILITY.md publishes come from there.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.hostile.scale import current

FIGURES = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def scale():
    return current()


class Figures:
    def __init__(self, nodeid: str, table: dict) -> None:
        self._nodeid = nodeid
        self._table = table

    def record(self, name: str, value, unit: str = "") -> None:
        self._table[f"{self._nodeid} :: {name}"] = {"value": value, "unit": unit}


@pytest.fixture
def figures(request) -> Figures:
    return Figures(request.node.nodeid, request.config.stash.setdefault(FIGURES, {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    figures_table = config.stash.get(FIGURES, {})
    if not figures_table:
        return
    terminalreporter.section(f"hostile figures ({current().name} scale)")
    for key, figure in figures_table.items():
        value = figure["value"]
        text = f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}" \
            if isinstance(value, int) else str(value)
        terminalreporter.write_line(f"{key}: {text} {figure['unit']}".rstrip())
    path = os.environ.get("SHIM_HOSTILE_FIGURES")
    if path:
        with open(path, "w") as f:
            json.dump({"scale": current().name, "figures": figures_table}, f, indent=1, sort_keys=True)
