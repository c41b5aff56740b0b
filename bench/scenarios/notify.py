"""Readiness relay: a payload sends ``STATUS=<its CLOCK_MONOTONIC ns>`` datagrams; a host
listener stamps each on receipt. Through the shim (``--sdnotify=container``: container ->
shim -> host) and, as the floor, the same program sending to the listener directly.

Latency: messages at 1,000 a second (each one alone in flight), in rounds of a fresh
container each (and of the payload alone), the order rotated each round, a warm-up round
and each run's first messages discarded. Throughput: 10,000 messages at 10,000 a second,
then as fast as the payload can send; every message must arrive (the payload waits when
a queue is full, it never drops).

Each payload starts sending only when told to (SIGUSR1, through the shim), once its
monitor has settled after its start: the relay's steady state is measured, not the shim
still importing trio. It exits only when told to (SIGTERM), once STATUS=done arrived: a
sender must live until its messages are read (the shim, like systemd, drops the messages
of a sender already gone, as it can no longer tell whose they were). As for signals, the
driver (with the listener), the shim and the payloads share one CPU, and the driver
collects no garbage meanwhile (bench/README.md, "Same figures whoever runs them")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

from bench.monitors import ShimRun, now_ns
from bench.placement import collector_paused, format_cpus, pinned, settle
from bench.rounds import Samples, design, schedule

UNIT = "us"


class Listener:
    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.latencies: list[float] = []
        self.count = 0
        self.done = threading.Event()
        self.first = self.last = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self.sock.recv(4096)
            received = now_ns()
            if data == b"STATUS=done":
                self.done.set()
                continue
            if data.startswith(b"STATUS=") and data[7:].isdigit():
                self.count += 1
                self.first = self.first or received
                self.last = received
                self.latencies.append((received - int(data[7:])) / 1e3)

    def reset(self) -> None:
        self.latencies, self.count, self.first, self.last = [], 0, 0, 0
        self.done.clear()


SERIES = "relay latency"
LATENCY_RATE = 1000  # a second: each message alone in flight
# 10 rounds of 20 (200 messages, as before rounds were explicit), each round a fresh
# container, so that the intervals resample rounds (bench/stats.py, MIN_ROUNDS) and a
# run's own luck (where its memory landed, its first messages) weighs on one round only.
ROUNDS, PER_ROUND = 10, 20
QUICK_ROUNDS, QUICK_PER_ROUND = 3, 10
WARMUP_ROUNDS = 1
# The first messages of every run pay for first use (page faults, cold caches along the
# path): measured, then discarded.
WARMUP_MESSAGES = 5
FLOOD_RATES = (("10k/s", 10000), ("max", 0))
# How long past its due time STATUS=done may take to come before the run counts as
# incomplete (its messages lost); only ever waited for when something was lost.
DRAIN_TIMEOUT = 10  # seconds


class Run:
    """What one sender's run showed: whether its monitor had settled when it was told to
    go, and whether all it sent arrived (STATUS=done, after the last, did)."""

    def __init__(self, settled: bool, complete: bool) -> None:
        self.settled, self.complete = settled, complete


def through_shim(env, runtime, listener, count, rate) -> Run:
    """One container sending ``count`` messages at ``rate``, through the shim."""
    bundle = env.bundle(f"notify-{count}-{rate}", "notify", str(count), str(rate), "go")
    run = ShimRun(env, runtime, bundle, "--sdnotify=container", extra_env={"NOTIFY_SOCKET": listener.path})
    try:
        return _go(run.proc, listener, count, rate)
    finally:
        run.finish()


def direct(env, listener, count, rate) -> Run:
    """The same payload sending straight to the listener."""
    proc = subprocess.Popen(env.stamp_argv("notify", str(count), str(rate), "go", inside=False),
                            env={**os.environ, "NOTIFY_SOCKET": listener.path}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE)
    try:
        return _go(proc, listener, count, rate)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()


def _go(proc, listener, count, rate) -> Run:
    """Once the payload is ready and its monitor (or itself) settled, SIGUSR1 to it (the
    shim forwards it to the container): the payload sends, and the listener records.
    Then SIGTERM, once everything came: the payload lives until its messages are read."""
    assert proc.stdout.readline().strip() == b"ready"
    settled = settle(proc.pid)
    listener.reset()
    os.kill(proc.pid, signal.SIGUSR1)
    complete = listener.done.wait(count / rate + DRAIN_TIMEOUT if rate else DRAIN_TIMEOUT)
    os.kill(proc.pid, signal.SIGTERM)
    if proc.wait() != 0:
        raise RuntimeError(f"the notify payload's run failed: exit status {proc.returncode}")
    return Run(settled, complete)


def run(env, quick: bool) -> dict:
    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    listener = Listener(os.path.join(env.workdir, "notify-listener.sock"))
    rounds, per_round = (QUICK_ROUNDS, QUICK_PER_ROUND) if quick else (ROUNDS, PER_ROUND)
    flood_count = 1000 if quick else 10000
    senders = {"shim": lambda c, r: through_shim(env, runtime, listener, c, r),
               "direct": lambda c, r: direct(env, listener, c, r)}
    samples = Samples(order=list(senders))
    throughput = {}
    unsettled: set[str] = set()
    incomplete: list[str] = []
    notes = [f"container runtime: {runtime.rsplit('/', 1)[-1]}"]
    if env.cpus:
        notes.append(f"driver (with the listener), shim and payloads on CPU {format_cpus(env.cpus)}")
    with pinned(env.cpus), collector_paused():
        for index, order in schedule(list(senders), rounds, WARMUP_ROUNDS):
            for name in order:
                samples.declare(SERIES, name)
                count = WARMUP_MESSAGES + per_round
                outcome = senders[name](count, LATENCY_RATE)
                if not outcome.settled:
                    unsettled.add(name)
                if not outcome.complete:
                    incomplete.append(f"{name} in round {index}: {listener.count} of {count}")
                for latency in listener.latencies[WARMUP_MESSAGES:]:
                    samples.add(SERIES, name, index, latency)
        for rate_name, rate in FLOOD_RATES:
            for name, send in senders.items():
                began = time.monotonic()
                if not send(flood_count, rate).complete:
                    incomplete.append(f"{name} at {rate_name}: {listener.count} of {flood_count}")
                elapsed = (listener.last - listener.first) / 1e9 or time.monotonic() - began
                throughput[f"{name} {rate_name}"] = {"sent": flood_count, "received": listener.count,
                                                     "lost": flood_count - listener.count,
                                                     "per_second": round(listener.count / elapsed) if elapsed else 0}
    listener.sock.close()
    if unsettled:
        notes.append(f"still busy after their start, measured anyway: {', '.join(sorted(unsettled))}")
    if incomplete:
        notes.append(f"runs whose STATUS=done never came (messages received): {'; '.join(incomplete)}")
    notes.append("each payload lives until all it sent was read, as the protocol asks of a sender")
    return {"unit": UNIT, "series": samples.series(), "rounds": samples.rounds(),
            "design": design(rounds, WARMUP_ROUNDS, per_round), "throughput": throughput, "notes": notes}
