"""Another process's fds, taken with ``pidfd_getfd(2)`` (Linux 5.6; the caller needs ptrace
rights over it: the same user, or CAP_SYS_PTRACE). The standard library has
``os.pidfd_open`` but not this."""

from __future__ import annotations

import os

SYS_PIDFD_GETFD = 438  # the same number on every architecture (asm-generic/unistd.h)


def fd_getter():
    """``getfd(pidfd, target_fd)``: a duplicate of the process's ``target_fd`` here
    (close-on-exec), or OSError. Made once: the libc lookup is the costly part."""
    from shim.process import libc

    syscall, long = libc.function("syscall", "l"), libc.long_type()

    def getfd(pidfd: int, target_fd: int) -> int:
        fd = syscall(long(SYS_PIDFD_GETFD), long(pidfd), long(target_fd), long(0))
        if fd < 0:
            errno = libc.errno()
            raise OSError(errno, f"pidfd_getfd({target_fd}): {os.strerror(errno)}")
        return fd

    return getfd
