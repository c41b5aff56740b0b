"""What runs before trio: the container's output read early, other fds served meanwhile,
the handoff of signal events, and trio's import held back until something needs it."""

import os
import select
import threading
import time

import pytest

from shim.process import trio_import
from shim.process.trio_import import TrioLoader
from shim.signals.router import ChildExited, Handoff, StopRequested
from shim.stdio.early import capture_until_ready


def readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_output_is_read_until_ready_and_eof_is_not_output():
    out_r, out_w = os.pipe()
    ready_r, ready_w = os.pipe()
    seen = []
    os.write(out_w, b"hello")
    os.close(out_w)  # then EOF: a systemd payload closes its stdio as it starts
    threading.Timer(0.2, os.write, (ready_w, b"\n")).start()
    try:
        chunks, closed = capture_until_ready({out_r: 1}, ready_r, on_output=lambda: seen.append("output"))
        assert [(c.stream, c.data) for c in chunks] == [(1, b"hello")]
        assert closed == {out_r}  # closed by the loop
        assert seen == ["output"]
    finally:
        os.close(ready_r)
        os.close(ready_w)


def test_a_service_that_returns_false_is_left_alone_but_kept_open():
    service_r, service_w = os.pipe()
    ready_r, ready_w = os.pipe()
    calls = []

    def serve():
        calls.append(time.monotonic())
        return False  # not now: trio takes it over (the fd stays readable)

    os.write(service_w, b"x")
    threading.Timer(0.2, os.write, (ready_w, b"\n")).start()
    try:
        capture_until_ready({}, ready_r, also={service_r: serve})
        assert len(calls) == 1  # not called again and again while the fd stayed readable
        assert os.read(service_r, 1) == b"x"
    finally:
        for fd in (service_r, service_w, ready_r, ready_w):
            os.close(fd)


def test_handoff_tells_of_events_kept_for_trio():
    pending, reaped = [], []
    handoff = Handoff(reap_early=lambda: reaped.append(1), on_pending=lambda: pending.append(1))
    handoff.post(ChildExited())
    assert reaped == [1] and pending == []  # reaped at once: nothing kept
    handoff.post(StopRequested(15))
    assert pending == [1]
    delivered = []
    handoff.attach(object(), delivered.append)
    assert [type(e) for e in delivered] == [StopRequested]


@pytest.fixture
def recorded_imports(monkeypatch):
    """TrioLoader's import, recorded: with which priority, and when."""
    calls = []

    def fake_import(idle=True):
        calls.append(("idle" if idle else "own priority", time.monotonic()))
        return "trio"

    monkeypatch.setattr(trio_import, "import_trio", fake_import)
    monkeypatch.setattr(trio_import, "already_imported", lambda: None)  # pytest-trio has it
    return calls


def test_a_loader_in_a_process_that_has_trio_starts_no_thread(recorded_imports, monkeypatch):
    monkeypatch.setattr(trio_import, "already_imported", lambda: "trio, imported before the fork")
    threads = threading.active_count()
    loader = TrioLoader(gated=True, gate_timeout=30)
    assert threading.active_count() == threads and not loader.waiting
    assert readable(loader.ready_fd, 0) and loader.result() == "trio, imported before the fork"
    assert recorded_imports == []


def test_an_ungated_import_begins_at_once(recorded_imports):
    loader = TrioLoader()
    assert not loader.waiting
    loader.open_gate(idle=False)  # nothing to open: no effect
    assert readable(loader.ready_fd, 5) and loader.result() == "trio"
    assert [c[0] for c in recorded_imports] == ["idle"]


def test_a_gated_import_waits_for_the_gate(recorded_imports):
    loader = TrioLoader(gated=True, gate_timeout=30)
    assert loader.waiting
    assert not readable(loader.ready_fd, 0.2) and recorded_imports == []
    loader.open_gate(idle=False)  # something waits for trio: the shim's own priority
    loader.open_gate(idle=True)  # a later opener changes nothing
    assert readable(loader.ready_fd, 5) and loader.result() == "trio"
    assert not loader.waiting
    assert [c[0] for c in recorded_imports] == ["own priority"]


def test_a_gated_import_opened_for_output_stays_at_idle_priority(recorded_imports):
    loader = TrioLoader(gated=True, gate_timeout=30)
    loader.open_gate()
    assert readable(loader.ready_fd, 5) and loader.result() == "trio"
    assert [c[0] for c in recorded_imports] == ["idle"]


def test_a_gate_nobody_opens_opens_after_its_timeout(recorded_imports):
    began = time.monotonic()
    loader = TrioLoader(gated=True, gate_timeout=0.3)
    assert readable(loader.ready_fd, 5) and loader.result() == "trio"
    assert recorded_imports[0][0] == "idle" and recorded_imports[0][1] - began >= 0.3
