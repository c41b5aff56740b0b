"""Knowing at once that the code on disk changed (an upgrade), without walking it.

The fork server must not fork monitors from code that is no longer the installed one.
Walking the package on every request (fork_protocol.code_identity: some 120 stats and a
hash) cost about 0.8 ms of the server's CPU per container; an inotify watch on every
package directory costs nothing until something changes. Set up before the server
imports what it serves, so that no change after the import goes unseen.
"""

from __future__ import annotations

import os
import select

# <sys/inotify.h>
IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_CLOEXEC, IN_NONBLOCK = os.O_CLOEXEC, os.O_NONBLOCK
CHANGES = (IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
           | IN_MOVE_SELF)


class UpgradeWatch:
    """Every directory of a package, watched; ``changed()`` once anything in it did."""

    def __init__(self, package_dir: str) -> None:
        from shim.process import libc

        self.fd = libc.function("inotify_init1")(IN_CLOEXEC | IN_NONBLOCK)
        if self.fd < 0:
            errno = libc.errno()
            raise OSError(errno, f"inotify_init1: {os.strerror(errno)}")
        add_watch = libc.function("inotify_add_watch")
        try:
            # bytecode caches change as a matter of course (monitors may write them)
            for directory, subdirectories, _ in os.walk(package_dir):
                subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
                if add_watch(self.fd, os.fsencode(directory), CHANGES) < 0:
                    errno = libc.errno()
                    raise OSError(errno, f"inotify_add_watch({directory}): {os.strerror(errno)}")
        except BaseException:
            os.close(self.fd)
            raise

    def changed(self) -> bool:
        return bool(select.select([self.fd], [], [], 0)[0])

    def close(self) -> None:
        os.close(self.fd)
