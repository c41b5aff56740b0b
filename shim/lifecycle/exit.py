"""The end of a container, as the world outside learns it: exit files and the exit
command. Every front reports through these; which files and which command is its choice.
"""

from __future__ import annotations

from shim.process.exit_status import describe
from shim.process.reaper import Reaper
from shim.process.subreaper import set_subreaper
from shim.state.files import write_atomic


def write_or_warn(path: str, text: str, diagnostics, mode: int = 0o644) -> bool:
    """Files written while or after the container ran (pid, exit, oom files): a failure
    (the directory went away, a full disk) costs the file, not the container's status."""
    try:
        write_atomic(path, text.encode(), mode)
        return True
    except OSError as e:
        diagnostics.warning(f"could not write {path}: {e.strerror}")
        return False


def run_exit_command(argv: list[str], env: dict[str, str], reaper: Reaper, diagnostics,
                     stdio: tuple[int, int, int] = (0, 1, 2)) -> int | None:
    """Run an exit command to completion, as conmon does; return its wait status (None if
    it could not be started).

    The shim stops being a subreaper first, so that what the command leaves running (an
    engine's cleanup may start helpers) is not tied to the shim's life.
    """
    from shim.process.spawn import spawn

    set_subreaper(False)
    try:
        pid = spawn(argv, env=env, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
    except OSError as e:
        diagnostics.warning(f"exit command {argv[0]}: cannot execute: {e.strerror}")
        return None
    reaper.expect(pid)
    status = reaper.wait_blocking(pid)
    if status != 0:
        diagnostics.warning(f"exit command {argv[0]} {describe(status)}")
    reaper.reap()
    return status
