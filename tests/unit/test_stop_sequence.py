"""The stop sequence state machine, event by event."""

import signal

from hypothesis import given, strategies as st

from shim.signals.stop_sequence import KILLING, RUNNING, STOPPING, StopSequence

RT3 = signal.SIGRTMIN + 3


def test_stop_signal_then_kill_after_timeout():
    s = StopSequence(signal.SIGTERM, 10)
    assert s.state == RUNNING and not s.stopping
    assert s.request() == [("announce",), ("send", signal.SIGTERM), ("deadline", 10)]
    assert s.state == STOPPING
    assert s.deadline_passed() == [("kill_all",)]
    assert s.state == KILLING
    assert s.deadline_passed() == [] and s.request() == []


def test_second_request_kills_at_once():
    s = StopSequence(signal.SIGTERM, 10)
    s.request()
    assert s.request() == [("kill_all",)]
    assert s.request() == []


def test_systemd_waits_for_signals_level_before_signalling():
    s = StopSequence(RT3, 5, signals_ready=False)
    assert s.request() == [("announce",), ("deadline", 5)]
    assert s.signals_ready() == [("send", RT3), ("deadline", 5)]
    assert s.deadline_passed() == [("kill_all",)]


def test_systemd_never_ready_is_signalled_after_the_timeout():
    s = StopSequence(RT3, 5, signals_ready=False)
    s.request()
    assert s.deadline_passed() == [("send", RT3), ("deadline", 5)]
    assert s.deadline_passed() == [("kill_all",)]


def test_ready_before_the_request():
    s = StopSequence(RT3, 5, signals_ready=False)
    assert s.signals_ready() == []
    assert s.request() == [("announce",), ("send", RT3), ("deadline", 5)]


def test_second_request_while_awaiting_signals_kills():
    s = StopSequence(RT3, 5, signals_ready=False)
    s.request()
    assert s.request() == [("kill_all",)]
    assert s.signals_ready() == []


@given(st.booleans(), st.lists(st.sampled_from(["request", "signals_ready", "deadline_passed"]), max_size=20))
def test_invariants(ready, events):
    s = StopSequence(signal.SIGTERM, 1, signals_ready=ready)
    sends = kills = announces = 0
    for event in events:
        actions = getattr(s, event)()
        sends += sum(a[0] == "send" for a in actions)
        kills += sum(a[0] == "kill_all" for a in actions)
        announces += sum(a[0] == "announce" for a in actions)
        if event == "request" and s.state != KILLING:
            assert s.stopping
    assert sends <= 1 and kills <= 1 and announces <= 1  # each step happens at most once
    if kills:
        assert s.state == KILLING
