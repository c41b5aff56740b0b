"""Spawning children with ``os.posix_spawn`` from the main thread.

Why posix_spawn: it runs no Python in the child (no ``preexec_fn`` hazards with threads),
it is the fastest way to start a process here (about 0.5 ms), and it lets us give the
child a clean signal state. The shim blocks nearly every signal and Python ignores SIGPIPE
and SIGXFSZ; both would leak into the runtime and the container through exec, so every
child gets default dispositions and an empty signal mask.

Only fds 0, 1, 2 and the ones listed in ``keep_fds`` reach the child: every other fd of the
shim is close-on-exec (Python's default; ``seal_inherited_fds`` covers the ones the shim
inherited), and the kept ones are made inheritable in the child alone, by dup2-ing each
onto itself.
"""

from __future__ import annotations

import os

from shim.signals.catalog import SIGKILL, SIGSTOP, usable_signals

STDIO_FDS = (0, 1, 2)


def _default_dispositions() -> frozenset[int]:
    return usable_signals() - {SIGKILL, SIGSTOP}


def seal_inherited_fds(keep: frozenset[int] = frozenset()) -> None:
    """Mark every fd above 2 close-on-exec, except ``keep``.

    A parent (a shell, systemd, an engine) may have leaked fds into the shim; they must not
    travel on to the runtime and the container.
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the fd listdir itself used, already closed


def spawn(argv: list[str], *, env: dict[str, str], stdin: int, stdout: int, stderr: int,
          keep_fds: tuple[int, ...] = (), new_process_group: bool = True, new_session: bool = False) -> int:
    """Start ``argv[0]`` (an absolute path) and return its pid.

    The caller must register the pid with the reaper before anything can reap it, i.e.
    before its next checkpoint or blocking wait.

    ``new_process_group`` keeps a terminal's Ctrl-C (sent to the foreground process group)
    away from the runtime: the shim decides what a stop means, and a runtime killed
    half-way through ``delete`` would leave state behind.
    """
    sources = [stdin, stdout, stderr]
    extra: list[int] = []
    # A source fd among 0..2 that is not its own target could be overwritten by an earlier
    # dup2; move it out of the way first.
    for i, fd in enumerate(sources):
        if fd in STDIO_FDS and fd != i:
            sources[i] = os.dup(fd)
            extra.append(sources[i])
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(sources)]
    actions += [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in keep_fds]
    group = {"setsid": True} if new_session else {"setpgroup": 0} if new_process_group else {}
    try:
        return os.posix_spawn(
            argv[0], argv, env,
            file_actions=actions,
            setsigmask=(),
            setsigdef=_default_dispositions(),
            **group,
        )
    finally:
        for fd in extra:
            os.close(fd)


def close_all(fds) -> None:
    """Close fds the shim no longer needs (handed over, or received and refused)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def open_devnull() -> int:
    return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
