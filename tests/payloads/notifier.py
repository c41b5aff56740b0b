"""A container payload speaking sd_notify through $NOTIFY_SOCKET, raw, for the relay tests.

    python3 -IS notifier.py SCENARIO [ARG]

Scenarios (each ends by waiting for SIGTERM, then exits 0):
- ``sequence``: sleep 1 s, STATUS=warming, sleep 0.5 s, READY=1.
- ``hostile``: MAINPID=1, FDSTORE=1 with an fd, a 5000-byte datagram, binary garbage,
  NOTIFYACCESS=all, BARRIER=1 mixed with READY=1, then READY=1 and STATUS=survived.
- ``flood N``: N datagrams at 10,000 a second (STATUS=<i>), then STATUS=flood-done.
- ``barrier``: READY=1, then BARRIER=1 with one fd, and wait until that fd is closed
  by the receiver; writes "barrier-ok" or "barrier-timeout" to /out/barrier.
- ``env``: write the environment to /out/env and exit 0 at once.
- ``send TEXT``: send TEXT (\\n for newlines).
- ``extend``: EXTEND_TIMEOUT_USEC=6000000, then READY=1 after 3 s.
- ``watchdog SECONDS``: READY=1, then WATCHDOG=1 every 0.2 s for SECONDS, then silence.
- ``ping``: READY=1, then STATUS=ping-<n> for the n-th SIGUSR1 (a test's sentinel: what
  was sent to the socket before it has been judged once it arrives).
- ``gated``: STATUS=warming, then READY=1 once /out/go exists.
- ``relay PATH``: bind a datagram socket at PATH and send on every datagram it receives,
  one by one in order, from one socket: the first byte is how many fds (of /dev/null) go
  with it (255: stop relaying), the rest is the datagram. Tests fuzz the relay with it.
"""

import os
import select
import signal
import socket
import sys
import time

scenario = sys.argv[1]
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def address():
    path = os.environ["NOTIFY_SOCKET"]
    return "\0" + path[1:] if path.startswith("@") else path


def send(data: bytes, fds=()) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(__import__("array").array("i", fds)))] if fds else []
    sock.sendmsg([data], ancillary, 0, address())
    sock.close()


if scenario == "env":
    with open("/out/env", "w") as f:
        f.write("\n".join(f"{k}={v}" for k, v in sorted(os.environ.items())))
    sys.exit(0)

if scenario == "sequence":
    time.sleep(1)
    send(b"STATUS=warming")
    time.sleep(0.5)
    send(b"READY=1")
elif scenario == "hostile":
    send(b"MAINPID=1")
    r, w = os.pipe()
    send(b"FDSTORE=1\nFDNAME=stolen", [r])
    send(b"STATUS=" + b"x" * 5000)
    send(bytes(range(256)) * 4)
    send(b"NOTIFYACCESS=all\nMAINPID=1\nX_SYSTEMD_UNIT_ACTIVE=evil")
    send(b"BARRIER=1\nREADY=1", [w])
    send(b"READY=1\nSTATUS=survived")
elif scenario == "flood":
    count = int(sys.argv[2])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect(address())
    began = time.monotonic()
    for i in range(count):
        sock.send(b"STATUS=%d" % i)
        pause = began + (i + 1) / 10000 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    sock.send(b"STATUS=flood-done")
elif scenario == "barrier":
    send(b"READY=1")
    r, w = os.pipe()
    send(b"BARRIER=1", [w])
    os.close(w)
    ready, _, _ = select.select([r], [], [], 5)
    with open("/out/barrier", "w") as f:
        f.write("barrier-ok" if ready and os.read(r, 1) == b"" else "barrier-timeout")
elif scenario == "extend":
    send(b"EXTEND_TIMEOUT_USEC=6000000\nSTATUS=extending")
    time.sleep(3)
    send(b"READY=1\nSTATUS=extended")
elif scenario == "watchdog":
    send(b"READY=1\nSTATUS=pinging")
    until = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < until:
        send(b"WATCHDOG=1")
        time.sleep(0.2)
    send(b"STATUS=silent")
elif scenario == "send":
    send(sys.argv[2].replace("\\n", "\n").encode())
elif scenario == "ping":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    send(b"READY=1")
    pings = 0
    while signal.sigwait({signal.SIGUSR1, signal.SIGTERM}) == signal.SIGUSR1:
        pings += 1
        send(b"STATUS=ping-%d" % pings)
    sys.exit(0)
elif scenario == "gated":
    send(b"STATUS=warming")
    while not os.path.exists("/out/go"):
        time.sleep(0.01)
    send(b"READY=1")
elif scenario == "relay":
    feed = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    feed.bind(sys.argv[2])
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    upstream.connect(address())
    while True:
        message = feed.recv(1 << 16)
        if message[:1] == b"\xff":
            break
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(message[0])]
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(__import__("array").array("i", fds)))] if fds else []
        while True:
            try:
                upstream.sendmsg([message[1:]], ancillary)
                break
            except OSError as e:  # fds in flight count against the sender's RLIMIT_NOFILE
                if e.errno != __import__("errno").ETOOMANYREFS:
                    with open("/out/relay-error", "w") as f:
                        f.write(f"{e} sending {len(message) - 1} bytes with {len(fds)} fds")
                    raise
                time.sleep(0.001)
        for fd in fds:
            os.close(fd)

with open("/out/done", "w") as f:
    f.write("done")
signal.sigwait({signal.SIGTERM})
sys.exit(0)
