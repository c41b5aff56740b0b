"""A fork bomb that keeps going at its pids limit, and makes orphans all the time.

    python3 -IS bomb.py

The init forks bombs without end (reaping its own children, retrying a refused fork a
millisecond later); each bomb forks more of its kind for 50 ms, then exits, orphaning
whatever it started: outside a pid namespace of its own those orphans are the shim's to
reap. SIGTERM ends the init with status 3. Writes /out/ready once its signals are set.
"""

import os
import signal
import time


def bomb() -> None:
    until = time.monotonic() + 0.05
    while time.monotonic() < until:
        try:
            if os.fork() == 0:
                bomb()
        except OSError:  # EAGAIN at the pids limit
            time.sleep(0.001)
    os._exit(0)


signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
with open("/out/ready", "w") as f:
    f.write("ready")
while not signal.sigpending():
    try:
        if os.fork() == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            bomb()
    except OSError:
        time.sleep(0.001)
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
os._exit(3)
