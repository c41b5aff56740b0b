"""Holding the latency scenarios still: CPU lists, pinning, the collector, settling."""

import gc
import os
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from bench import placement

WINDOW = placement.SETTLE_WINDOW
QUIET_NS = int(placement.SETTLED_SHARE * WINDOW * 1e9)


@pytest.mark.parametrize("text, cpus", [("1", {1}), ("0,2", {0, 2}), ("2-4", {2, 3, 4}), ("0, 3-4", {0, 3, 4})])
def test_parse_cpus(text, cpus):
    assert placement.parse_cpus(text) == cpus


@given(st.sets(st.integers(0, 255), min_size=1))
def test_cpu_lists_round_trip(cpus):
    assert placement.parse_cpus(placement.format_cpus(cpus)) == cpus


def test_the_default_is_one_cpu_the_highest_allowed():
    assert placement.default_cpus({0, 1, 5}) == {5}


def test_pinning_is_inherited_and_undone():
    allowed = os.sched_getaffinity(0)
    cpu = placement.default_cpus(allowed)
    with placement.pinned(cpu):
        child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == str(sorted(cpu))
    assert os.sched_getaffinity(0) == allowed


def test_no_cpus_means_no_pinning():
    allowed = os.sched_getaffinity(0)
    with placement.pinned(None):
        assert os.sched_getaffinity(0) == allowed


def test_the_collector_is_paused_and_given_back():
    assert gc.isenabled()
    with placement.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with placement.collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


@pytest.mark.parametrize("samples, expected", [
    ([(0.0, 0, False)], False),  # nothing to compare yet
    ([(0.0, 0, False), (WINDOW / 2, 0, False)], False),  # not a whole window yet
    ([(0.0, 0, False), (WINDOW, QUIET_NS - 1, False)], True),
    ([(0.0, 0, False), (WINDOW, QUIET_NS, False)], False),  # used its share: still busy
    ([(0.0, 0, False), (WINDOW / 2, 0, True), (WINDOW, 0, False)], False),  # runnable, starved
    ([(0.0, 0, True), (WINDOW / 2, 10**9, False), (WINDOW * 1.6, 10**9, False)], True),  # busy, then quiet
    ([(0.0, 0, False), (WINDOW / 2, 0, False), (WINDOW * 1.2, 10**9, False)], False),  # busy lately
])
def test_quiet(samples, expected):
    assert placement.quiet(samples) == expected


def test_settle_waits_for_a_busy_process_and_not_for_an_idle_one():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() < t + 0.5: pass\n"
                             "import sys\nsys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert placement.settle(busy.pid, timeout=0.3) is False  # still spinning
        assert placement.settle(busy.pid, timeout=10) is True  # blocked on its stdin
    finally:
        busy.stdin.close()
        busy.wait()
