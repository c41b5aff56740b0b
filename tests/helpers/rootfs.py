"""Root filesystems for test containers, cached outside the repository.

The cache lives in ``$SHIM_TEST_CACHE`` or ``$XDG_CACHE_HOME/shim-tests`` (default
``~/.cache/shim-tests``). The busybox tree is built by the same code as the demo's.
"""

from __future__ import annotations

import os

from shim.demo.bundle import cached_busybox_rootfs as _cached_busybox_rootfs


def cache_dir() -> str:
    base = os.environ.get("SHIM_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "shim-tests")
    os.makedirs(base, exist_ok=True)
    return base


def cached_busybox_rootfs() -> str:
    return _cached_busybox_rootfs(cache_dir())
