"""Exit-status encoding (pure): what a wait status means as a shell-style exit code."""

from __future__ import annotations

import os

SIGNAL_EXIT_OFFSET = 128  # the shells' (and conmon's, tini's, containerd's) convention


def exit_code(wait_status: int) -> int:
    """The container's exit code: its own, or 128+N when signal N killed it."""
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status)
    if os.WIFSIGNALED(wait_status):
        return SIGNAL_EXIT_OFFSET + os.WTERMSIG(wait_status)
    raise ValueError(f"wait status {wait_status:#x} is neither an exit nor a death by signal")


def killed_by(wait_status: int) -> int | None:
    """The signal that killed the process, or None if it exited."""
    return os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None


def describe(wait_status: int) -> str:
    """Human words for a status: ``exited 7`` or ``killed by SIGTERM (143)``."""
    from shim.signals.catalog import signal_name

    signum = killed_by(wait_status)
    if signum is None:
        return f"exited {exit_code(wait_status)}"
    return f"killed by {signal_name(signum)} ({exit_code(wait_status)})"
