"""A container payload that records every signal it receives, exactly once each.

    python3 -IS signal_recorder.py LOG [EXIT_ON_SIGNAL EXIT_CODE]

Blocks every catchable signal and takes them one by one with sigwaitinfo (a Python
handler would coalesce repeats), appending "<signum> <CLOCK_MONOTONIC ns>" to LOG. Writes
"ready" first. Exits with EXIT_CODE when EXIT_ON_SIGNAL arrives.
"""

import os
import signal
import sys
import time

log_path = sys.argv[1]
exit_on = int(sys.argv[2]) if len(sys.argv) > 2 else None
exit_code = int(sys.argv[3]) if len(sys.argv) > 3 else 0
catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
signal.pthread_sigmask(signal.SIG_BLOCK, catchable)
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(log, b"ready\n")
while True:
    info = signal.sigwaitinfo(catchable)
    os.write(log, b"%d %d\n" % (info.si_signo, time.clock_gettime_ns(time.CLOCK_MONOTONIC)))
    if info.si_signo == exit_on:
        sys.exit(exit_code)
