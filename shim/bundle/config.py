"""Reading an OCI bundle's ``config.json`` (parsing and checks are pure).

The shim checks what it relies on, so that a broken bundle fails with a line that names the
file and the field, before any runtime state exists: ``process.args`` (a non-empty list of
strings), ``process.env``, ``root.path``, ``process.terminal`` (a boolean), and the shapes
of ``mounts``, ``linux.namespaces`` and the user namespace's id mappings, which the shim
reads and edits.
"""

from __future__ import annotations

import os

from shim.bundle import json_lite
from shim.errors import ShimError


class Bundle:
    """A bundle directory and its parsed configuration."""

    __slots__ = ("directory", "config")

    def __init__(self, directory: str, config: dict) -> None:
        self.directory = directory
        self.config = config

    @property
    def args(self) -> list[str]:
        return self.config["process"]["args"]

    @property
    def terminal(self) -> bool:
        return self.config["process"].get("terminal") is True

    @property
    def annotations(self) -> dict:
        value = self.config.get("annotations")
        return value if isinstance(value, dict) else {}

    def has_namespace(self, kind: str) -> bool:
        namespaces = self.config.get("linux", {}).get("namespaces") or []
        return any(isinstance(ns, dict) and ns.get("type") == kind and not ns.get("path") for ns in namespaces)


def load_bundle(directory: str) -> Bundle:
    """Read and check ``<directory>/config.json``; ShimError names what is wrong."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise ShimError(f"bundle {directory}: not a directory" if os.path.exists(directory)
                        else f"bundle {directory}: no such directory")
    path = os.path.join(directory, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ShimError(f"bundle {directory}: no config.json") from None
    except OSError as e:
        raise ShimError(f"{path}: cannot read: {e.strerror}") from None
    return Bundle(directory, parse_config(raw, path))


def parse_config(raw: bytes, source: str) -> dict:
    """Parse and check a config.json document; ``source`` names it in errors."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ShimError(f"{source}: not UTF-8 text") from None
    try:
        config = json_lite.loads(text)
    except ValueError as e:
        raise ShimError(f"{source}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(config, dict):
        raise ShimError(f"{source}: invalid configuration: the top level must be an object")
    process = config.get("process")
    if not isinstance(process, dict):
        raise ShimError(f"{source}: invalid configuration: no \"process\" object")
    args = process.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args) or not args[0]:
        raise ShimError(f"{source}: invalid configuration: process.args must be a non-empty list of strings")
    env = process.get("env", [])
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise ShimError(f"{source}: invalid configuration: process.env must be a list of strings")
    if not isinstance(process.get("terminal", False), bool):
        raise ShimError(f"{source}: invalid configuration: process.terminal must be true or false")
    root = config.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str) or not root["path"]:
        raise ShimError(f"{source}: invalid configuration: root.path must be a non-empty string")
    _check_list_of_objects(config, "mounts", config.get("mounts"), source, required="destination")
    linux = config.get("linux", {})
    if not isinstance(linux, dict):
        raise ShimError(f"{source}: invalid configuration: linux must be an object")
    _check_list_of_objects(config, "linux.namespaces", linux.get("namespaces"), source, required="type")
    for field in ("uidMappings", "gidMappings"):
        mappings = linux.get(field)
        _check_list_of_objects(config, f"linux.{field}", mappings, source)
        for m in mappings or []:
            if not all(isinstance(m.get(k), int) and not isinstance(m.get(k), bool)
                       for k in ("containerID", "hostID", "size")):
                raise ShimError(f"{source}: invalid configuration: linux.{field} entries need integer "
                                "containerID, hostID and size")
    annotations = config.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ShimError(f"{source}: invalid configuration: annotations must be an object")
    return config


def _check_list_of_objects(config: dict, name: str, value, source: str, required: str | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ShimError(f"{source}: invalid configuration: {name} must be a list of objects")
    if required and not all(isinstance(item.get(required), str) for item in value):
        raise ShimError(f"{source}: invalid configuration: every entry of {name} needs a string {required}")
