"""A socket-activated container payload: serves every fd systemd passed, forever.

    python3 -IS listener.py

Checks the activation variables like sd_listen_fds() (LISTEN_PID must be its own pid),
records its environment and its open fds in /out, then answers each connection on fd
3+i with one line: "fd=<fd> name=<name> pid=<pid> started=<monotonic ns>".
"""

import os
import select
import signal
import socket
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # as a pid namespace's init it needs a handler
started = time.monotonic_ns()
fds_at_start = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
with open("/out/fds", "w") as f:
    f.write(" ".join(map(str, fds_at_start)))
with open("/out/env", "w") as f:
    f.write("\n".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("LISTEN_")))

if os.environ.get("LISTEN_PID") != str(os.getpid()):
    raise SystemExit(f"LISTEN_PID={os.environ.get('LISTEN_PID')} is not my pid {os.getpid()}")
count = int(os.environ["LISTEN_FDS"])
names = os.environ.get("LISTEN_FDNAMES", "").split(":")
sockets = {fd: socket.socket(fileno=fd) for fd in range(3, 3 + count)}
while True:
    ready, _, _ = select.select(list(sockets), [], [])
    for fd in ready:
        conn, _ = sockets[fd].accept()
        name = names[fd - 3] if fd - 3 < len(names) else ""
        conn.sendall(f"fd={fd} name={name} pid={os.getpid()} started={started}\n".encode())
        conn.close()
