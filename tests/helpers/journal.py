"""A real systemd-journald for tests, on a machine whose PID 1 is not systemd.

journald runs in a private mount namespace whose ``/run/systemd`` and ``/run/log`` are
tmpfs of its own (the host's are untouched); commands that should log to it, or read it,
run in that namespace (``argv`` prefixes them with ``nsenter``). Ended by its pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

JOURNALD = "/lib/systemd/systemd-journald"
SOCKET = "/run/systemd/journal/socket"
DIRECTORY = "/run/log/journal"

_START = f"""
set -e
mount -t tmpfs -o mode=755 tmpfs /run/systemd
mount -t tmpfs -o mode=755 tmpfs /run/log
mkdir -p /run/systemd/journal {DIRECTORY}
exec {JOURNALD}
"""


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "a private journald needs root (mount namespaces)"
    for path in (JOURNALD, "/usr/bin/journalctl", "/usr/bin/nsenter", "/run/systemd", "/run/log"):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install systemd util-linux)"
    return None


class PrivateJournal:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", _START],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while subprocess.run(self.argv("test", "-S", SOCKET)).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"journald did not start: {self.proc.stderr.read()[-500:]!r}")
            time.sleep(0.05)

    def argv(self, *command: str) -> list[str]:
        """``command`` in the journal's mount namespace."""
        return ["nsenter", f"--mount=/proc/{self.proc.pid}/ns/mnt", "--", *command]

    def entries(self, *matches: str, timeout: float = 10, count: int = 1) -> list[dict]:
        """The entries matching ``FIELD=value`` words, once there are at least ``count``
        (journald writes what it received a moment later)."""
        deadline = time.monotonic() + timeout
        while True:
            out = subprocess.run(self.argv("journalctl", "-D", DIRECTORY, "-o", "json", "--all",
                                           *matches), capture_output=True).stdout
            found = [json.loads(line) for line in out.splitlines() if line.strip()]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
