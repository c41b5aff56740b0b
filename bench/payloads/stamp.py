"""The stamping payload in Python, for hosts without a C compiler: same modes and output
as stamp.c, but its first instruction comes about 10 ms after exec (reported as such)."""

import os
import signal
import socket
import sys
import time

first = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
mode = sys.argv[1] if len(sys.argv) > 1 else "start"
if mode == "start":
    os.write(1, b"%d\n" % first)
    sys.exit(0)
if mode == "lines":  # see stamp.c
    count, length = int(sys.argv[2]), int(sys.argv[3])
    per = (1 << 16) // length
    chunk = (b"x" * (length - 1) + b"\n") * per
    while count > 0:
        n = min(count, per)
        sys.stdout.buffer.write(chunk[:n * length])
        count -= n
    sys.stdout.buffer.flush()
    sys.exit(0)
if mode == "notify":
    count, rate = int(sys.argv[2]), int(sys.argv[3])
    when = sys.argv[4] if len(sys.argv) > 4 else "0"
    if when == "go":  # see stamp.c
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGTERM})
        os.write(1, b"ready\n")
        signal.sigwaitinfo({signal.SIGUSR1})
    else:
        time.sleep(int(when) / 1000)
    path = os.environ["NOTIFY_SOCKET"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect("\0" + path[1:] if path.startswith("@") else path)
    began = time.monotonic()
    for i in range(count):
        if rate:
            pause = began + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        sock.send(b"STATUS=%d" % time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    sock.send(b"STATUS=done")
    if when == "go":
        signal.sigwaitinfo({signal.SIGTERM})
    sys.exit(0)
catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
signal.pthread_sigmask(signal.SIG_BLOCK, catchable)
os.write(1, b"ready\n")
while True:
    info = signal.sigwaitinfo(catchable)
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    if mode == "signals":
        os.write(1, b"%d %d\n" % (info.si_signo, t))
    if info.si_signo in (signal.SIGTERM, signal.SIGRTMIN + 3):
        sys.exit(0)
