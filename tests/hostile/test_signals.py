"""A storm of signals at the shim: it does not crash, every realtime signal reaches the
container exactly once (they queue; standard signals may merge, as the kernel merges
them), and a stop still works afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.harness import wait_for_file

pytestmark = [pytest.mark.integration, pytest.mark.hostile]

# A sender process of its own: the test's interpreter would pace it worse. It cycles
# through every realtime signal, with a standard one (USR1, HUP) now and then, and
# counts what the kernel refused (a full queue).
SENDER = r"""
import json, os, signal, sys, time
pid, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
realtime = list(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
sent, refused, standard = {}, 0, 0
began = time.monotonic()
i = 0
while True:
    now = time.monotonic()
    if now - began >= seconds:
        break
    due = int((now - began) * rate)
    while i < due:
        if i % 1000 == 999:
            signum = signal.SIGUSR1 if i % 2000 == 1999 else signal.SIGHUP
            standard += 1
        else:
            signum = realtime[i % len(realtime)]
        try:
            os.kill(pid, signum)
            if signum >= signal.SIGRTMIN:
                sent[signum] = sent.get(signum, 0) + 1
        except BlockingIOError:
            refused += 1
        i += 1
    time.sleep(0.0005)
print(json.dumps({"sent": sent, "refused": refused, "standard": standard, "seconds": time.monotonic() - began}))
"""


def received(log: str) -> list[int]:
    with open(log) as f:
        return [int(line.split()[0]) for line in f.read().splitlines()[1:]]


def test_a_storm_of_signals(shim_runc, tmp_path, scale, figures):
    out = tmp_path / "out"
    out.mkdir()
    bundle = shim_runc.python_bundle("signal_recorder.py", "/out/signals", str(int(signal.SIGTERM)), "0",
                                     out_dir=str(out))
    proc = shim_runc.start(None, bundle=bundle)
    log = str(out / "signals")
    wait_for_file(log, 30)
    sender = subprocess.run([sys.executable, "-c", SENDER, str(proc.pid), str(scale.signal_rate),
                             str(scale.signal_seconds)], capture_output=True, timeout=scale.signal_seconds + 60)
    assert sender.returncode == 0, sender.stderr
    report = json.loads(sender.stdout)
    sent = {int(k): v for k, v in report["sent"].items()}
    total = sum(sent.values())
    sent_at = time.monotonic()
    deadline = sent_at + 60
    while len([s for s in received(log) if s >= signal.SIGRTMIN]) < total:
        assert proc.poll() is None, "the shim died"
        assert time.monotonic() < deadline, f"{total - len(received(log))} realtime signals never arrived"
        time.sleep(0.05)
    drained = time.monotonic() - sent_at
    got = received(log)
    counts = {signum: got.count(signum) for signum in sent}
    assert counts == sent  # each realtime signal exactly once
    assert report["refused"] == 0
    assert {signal.SIGUSR1, signal.SIGHUP} <= set(got)  # standard ones arrive (merged, maybe)
    stop_began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    stop_took = time.monotonic() - stop_began
    assert proc.returncode == 0, err
    assert err == b""
    assert received(log)[-1] == signal.SIGTERM
    figures.record("realtime signals sent, each delivered once", total)
    figures.record("standard signals mixed in", report["standard"])
    figures.record("rate", round(total / report["seconds"]), "signals/s")
    figures.record("last signal delivered after the storm ended", round(drained, 3), "s")
    figures.record("SIGTERM to exit after the storm", round(stop_took, 3), "s")
