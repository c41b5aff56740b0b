"""The stop sequence state machine, event by event."""

import signal

import pytest
from hypothesis import given, strategies as st

from shim.signals.stop_sequence import (KILLING, RUNNING, STOPPING, Announce, Deadline, KillAll, Send, StopSequence,
                                        StopSequenceError)

RT3 = signal.SIGRTMIN + 3


def test_stop_signal_then_kill_after_timeout():
    s = StopSequence(signal.SIGTERM, 10)
    assert s.state == RUNNING and not s.stopping
    assert s.request() == [Announce(), Send(signal.SIGTERM), Deadline(10)]
    assert s.state == STOPPING
    assert s.deadline_passed() == [KillAll()]
    assert s.state == KILLING
    assert s.request() == []


def test_second_request_kills_at_once():
    s = StopSequence(signal.SIGTERM, 10)
    s.request()
    assert s.request() == [KillAll()]
    assert s.request() == []


def test_systemd_waits_for_signals_level_before_signalling():
    s = StopSequence(RT3, 5, signals_ready=False)
    assert s.request() == [Announce(), Deadline(5)]
    assert s.signals_ready() == [Send(RT3), Deadline(5)]
    assert s.deadline_passed() == [KillAll()]


def test_systemd_never_ready_is_signalled_after_the_timeout():
    s = StopSequence(RT3, 5, signals_ready=False)
    s.request()
    assert s.deadline_passed() == [Send(RT3), Deadline(5)]
    assert s.deadline_passed() == [KillAll()]


def test_ready_before_the_request():
    s = StopSequence(RT3, 5, signals_ready=False)
    assert s.signals_ready() == []
    assert s.request() == [Announce(), Send(RT3), Deadline(5)]


def test_second_request_while_awaiting_signals_kills():
    s = StopSequence(RT3, 5, signals_ready=False)
    s.request()
    assert s.request() == [KillAll()]
    assert s.signals_ready() == []


@pytest.mark.parametrize("before", [[], ["request", "request"]])
def test_a_deadline_nobody_set_is_a_bug(before):
    s = StopSequence(signal.SIGTERM, 1)
    for event in before:
        getattr(s, event)()
    assert not s.deadline_pending
    with pytest.raises(StopSequenceError):
        s.deadline_passed()


@given(st.booleans(), st.lists(st.sampled_from(["request", "signals_ready", "deadline_passed"]), max_size=20))
def test_invariants(ready, events):
    s = StopSequence(signal.SIGTERM, 1, signals_ready=ready)
    sends = kills = announces = 0
    deadline_set = False
    for event in events:
        if event == "deadline_passed" and not s.deadline_pending:
            continue  # the caller only reports deadlines it was asked to set
        if event == "deadline_passed":
            assert deadline_set
        actions = getattr(s, event)()
        sends += sum(isinstance(a, Send) for a in actions)
        kills += sum(isinstance(a, KillAll) for a in actions)
        announces += sum(isinstance(a, Announce) for a in actions)
        if any(isinstance(a, Deadline) for a in actions):
            deadline_set = True
        if event == "request" and s.state != KILLING:
            assert s.stopping
    assert sends <= 1 and kills <= 1 and announces <= 1  # each step happens at most once
    if kills:
        assert s.state == KILLING and not s.deadline_pending
