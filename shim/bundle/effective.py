"""The effective configuration handed to the runtime (pure edits of a config dict).

The shim never writes over the user's ``config.json``: it writes the configuration it
actually runs into its state directory and passes that directory as the bundle. Paths that
the OCI spec resolves against the bundle directory (``root.path``, relative bind-mount
sources) are made absolute first, so they still point into the user's bundle.
"""

from __future__ import annotations

import os

from shim.bundle.json_lite import copy


def rebase_on(config: dict, bundle_dir: str) -> dict:
    """A copy of ``config`` whose bundle-relative paths are absolute."""
    config = copy(config)
    root = config["root"]
    root["path"] = os.path.join(bundle_dir, root["path"])
    for mount in config.get("mounts") or []:
        if not isinstance(mount, dict):
            continue
        source = mount.get("source")
        if isinstance(source, str) and source and not source.startswith("/") and _is_bind(mount):
            mount["source"] = os.path.join(bundle_dir, source)
    return config


def _is_bind(mount: dict) -> bool:
    options = mount.get("options") or []
    return mount.get("type") == "bind" or "bind" in options or "rbind" in options


def set_env(config: dict, name: str, value: str) -> None:
    """Set ``name=value`` in the process environment, replacing an earlier value."""
    env = config["process"].setdefault("env", [])
    prefix = name + "="
    env[:] = [e for e in env if not e.startswith(prefix)] + [prefix + value]


def get_env(config: dict, name: str) -> str | None:
    prefix = name + "="
    for entry in reversed(config["process"].get("env", [])):
        if entry.startswith(prefix):
            return entry[len(prefix):]
    return None
