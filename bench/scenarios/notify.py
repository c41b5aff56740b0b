"""Readiness relay: a payload sends ``STATUS=<its CLOCK_MONOTONIC ns>`` datagrams; a host
listener stamps each on receipt. Through the shim (``--sdnotify=container``: container ->
shim -> host) and, as the floor, the same program sending to the listener directly.

Latency: 200 messages at 1,000 a second (each one alone in flight). Throughput: 10,000
messages at 10,000 a second, then as fast as the payload can send; every message must
arrive (the payload waits when a queue is full, it never drops)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

from bench.monitors import ShimRun, now_ns

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


# The payload waits this long before sending, so that the shim is fully up (trio
# imported): the relay's steady state is measured, not the shim's start-up.
SETTLE_MS = 300


def through_shim(env, runtime, listener, count, rate) -> None:
    bundle = env.bundle(f"notify-{count}-{rate}", "notify", str(count), str(rate), str(SETTLE_MS))
    run = ShimRun(env, runtime, bundle, "--sdnotify=container", extra_env={"NOTIFY_SOCKET": listener.path},
                  stdout=subprocess.DEVNULL)
    run.proc.wait()
    run.finish()


def direct(env, listener, count, rate) -> None:
    subprocess.run(env.stamp_argv("notify", str(count), str(rate), inside=False),
                   env={**os.environ, "NOTIFY_SOCKET": listener.path}, check=True)


def run(env, quick: bool) -> dict:
    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    listener = Listener(os.path.join(env.workdir, "notify-listener.sock"))
    latency_count = 50 if quick else 200
    flood_count = 1000 if quick else 10000
    latency = {"shim": [], "direct": []}
    throughput = {}
    rounds = [("shim", lambda c, r: through_shim(env, runtime, listener, c, r)),
              ("direct", lambda c, r: direct(env, listener, c, r))]
    for name, send in rounds:
        listener.reset()
        send(latency_count, 1000)
        listener.done.wait(10)
        latency[name] = list(listener.latencies)
    for rate_name, rate in (("10k/s", 10000), ("max", 0)):
        for name, send in rounds:
            listener.reset()
            began = time.monotonic()
            send(flood_count, rate)
            listener.done.wait(30)
            elapsed = (listener.last - listener.first) / 1e9 or time.monotonic() - began
            throughput[f"{name} {rate_name}"] = {"sent": flood_count, "received": listener.count,
                                                 "lost": flood_count - listener.count,
                                                 "per_second": round(listener.count / elapsed) if elapsed else 0}
    listener.sock.close()
    return {"unit": UNIT, "series": {"relay latency": latency}, "throughput": throughput,
            "notes": [f"container runtime: {runtime.rsplit('/', 1)[-1]}"]}
