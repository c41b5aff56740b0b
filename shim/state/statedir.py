"""The per-container state directory ``<state-dir>/<ID>/`` (mode 0700).

It holds what the shim needs while the container lives: the effective ``config.json`` (the
directory is the bundle the runtime sees), the runtime's pid file and JSON log, and the
notify socket. It doubles as the claim on the ID: a shim holds an ``flock`` on
``<ID>/lock`` for its whole life, so a second shim for the same ID fails at once, while a
directory left by a shim that was SIGKILLed (its lock free) is recognised as stale and
reused. Only a directory that is unmistakably a shim's (a real directory, 0700, ours, with
a ``lock`` file) is ever reused or emptied: ``--state-dir /srv`` and an ID of ``data``
must never touch ``/srv/data``.
"""

from __future__ import annotations

import fcntl
import os
import stat

from shim.errors import ShimError

LOCK_NAME = "lock"
CLAIM_ATTEMPTS = 5  # a claim can race with a shim releasing the same ID


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
        for _ in range(CLAIM_ATTEMPTS):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                claimed = cls._reclaim_stale(path, container_id)
            except OSError as e:
                raise ShimError(f"state directory {path}: cannot create: {e.strerror}") from None
            else:
                claimed = cls._lock_new(path, container_id)
            if claimed is not None:
                return claimed
        raise ShimError(f"container ID {container_id} is already in use by another shim ({path})")

    @classmethod
    def _lock_new(cls, path: str, container_id: str) -> "StateDir | None":
        fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return cls._finish_claim(path, fd, container_id, reclaimed=False)

    @classmethod
    def _reclaim_stale(cls, path: str, container_id: str) -> "StateDir | None":
        not_ours = ShimError(f"{path} exists and is not a shim state directory; "
                             f"container ID {container_id} cannot use it")
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None  # released meanwhile: try again
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) != 0o700:
            raise not_ours
        try:
            fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if os.path.isdir(path):
                raise not_ours from None
            return None
        except OSError:
            raise not_ours from None
        return cls._finish_claim(path, fd, container_id, reclaimed=True)

    @classmethod
    def _finish_claim(cls, path: str, fd: int, container_id: str, reclaimed: bool) -> "StateDir | None":
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ShimError(f"container ID {container_id} is already in use by another shim ({path})") from None
        # A shim releasing this ID renames its directory away before it unlocks: if the
        # lock we hold is no longer the one at this path, the claim starts over.
        try:
            current = os.stat(os.path.join(path, LOCK_NAME)).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            os.close(fd)
            return None
        if reclaimed:  # the previous owner died without cleaning up: empty it, keep the lock
            for entry in os.scandir(path):
                if entry.name != LOCK_NAME:
                    _remove_tree(entry.path)
        return cls(path, fd, reclaimed)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def release(self) -> None:
        """Remove the directory and everything in it, then drop the claim.

        The directory is first renamed out of the way, so the ID is free at once for a new
        shim (a restart), which never sees a half-removed directory.
        """
        if self._lock_fd < 0:
            return
        doomed = f"{self.path}.released.{os.getpid()}"
        try:
            os.rename(self.path, doomed)
        except OSError:
            doomed = self.path
        _remove_tree(doomed)
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
    except OSError:
        pass  # not empty: something was created inside meanwhile; leave it rather than fail
