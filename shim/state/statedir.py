"""The per-container state directory ``<state-dir>/<ID>/`` (mode 0700).

It holds what the shim needs while the container lives: the effective ``config.json`` (the
directory is the bundle the runtime sees), the runtime's pid file and JSON log, and later
the notify socket. It doubles as the claim on the ID: a shim holds an ``flock`` on
``<ID>/lock`` for its whole life, so a second shim for the same ID fails at once, while a
directory left by a shim that was SIGKILLed is recognised as stale and reused.
"""

from __future__ import annotations

import fcntl
import os

from shim.errors import ShimError

LOCK_NAME = "lock"


def default_state_root(euid: int, env: dict[str, str]) -> str:
    """``/run/shim`` for root, else ``$XDG_RUNTIME_DIR/shim`` (pure)."""
    if euid == 0:
        return "/run/shim"
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if not runtime_dir:
        raise ShimError("no state directory: set XDG_RUNTIME_DIR or pass --state-dir")
    return os.path.join(runtime_dir, "shim")


class StateDir:
    """A claimed ``<root>/<ID>`` directory; ``release`` removes it."""

    def __init__(self, path: str, lock_fd: int, reclaimed: bool = False) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self.reclaimed = reclaimed  # a shim that died without cleaning up had this ID

    @classmethod
    def claim(cls, root: str, container_id: str) -> "StateDir":
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
        except OSError as e:
            raise ShimError(f"state directory {root}: cannot create: {e.strerror}") from None
        path = os.path.join(root, container_id)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return cls._reclaim_stale(path, container_id)
        except OSError as e:
            raise ShimError(f"state directory {path}: cannot create: {e.strerror}") from None
        lock_fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cls(path, lock_fd)

    @classmethod
    def _reclaim_stale(cls, path: str, container_id: str) -> "StateDir":
        try:
            lock_fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise ShimError(f"container ID {container_id} is already in use ({path}: {e.strerror})") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise ShimError(f"container ID {container_id} is already in use by another shim ({path})") from None
        # The previous owner died without cleaning up: empty the directory, keep the lock.
        for name in os.listdir(path):
            if name != LOCK_NAME:
                _remove_tree(os.path.join(path, name))
        os.chmod(path, 0o700)
        return cls(path, lock_fd, reclaimed=True)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def release(self) -> None:
        """Remove the directory and everything in it, then drop the claim."""
        if self._lock_fd < 0:
            return
        _remove_tree(self.path)
        os.close(self._lock_fd)
        self._lock_fd = -1


def _remove_tree(path: str) -> None:
    """Remove a file or a directory tree (the state directory holds a handful of entries;
    shutil would cost a few ms to import at the very end of every run)."""
    try:
        os.unlink(path)
        return
    except IsADirectoryError:
        pass
    except FileNotFoundError:
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
