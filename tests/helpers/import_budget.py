"""What the installed ``shim`` script loads before it starts ``runtime create``, read from
an strace of a real run: every module file (``.pyc``, ``.py`` or an extension ``.so``)
opened before the runtime's ``execve`` (pure parsing)."""

from __future__ import annotations

import re

_OPEN = re.compile(r'openat\(AT_FDCWD, "([^"]+\.(?:pyc|py|so))", [^)]*\) = \d+')
_EXEC = re.compile(r'execve\("([^"]+)"')

# Modules that must never load before create: each costs milliseconds (re and enum 4 ms
# together, json 5, socket.py 3, trio 50 or more), and the container waits for them.
HEAVY = frozenset({"re", "enum", "json", "socket", "selectors", "typing", "trio", "threading", "subprocess",
                   "ctypes", "hashlib", "collections", "asyncio", "logging", "argparse", "tempfile", "shutil",
                   "psutil", "inspect", "dataclasses"})


def module_name(path: str) -> str:
    """``/x/lib/python3.11/encodings/__pycache__/utf_8.cpython-311.pyc`` -> ``encodings.utf_8``;
    the shim's own by their package path."""
    path = path.replace("/__pycache__/", "/")
    name = path.rsplit("/", 1)[-1].split(".")[0]
    parent = path.rsplit("/", 2)[-2]
    if name == "__init__":
        name, parent = parent, path.rsplit("/", 3)[-3]
    for root in ("shim", "encodings", "ctypes", "collections", "json", "trio", "importlib", "email"):
        marker = f"/{root}/"
        if marker in path and name != root:
            # each part up to its first dot: x.cpython-311.pyc, x.cpython-311.opt-2.pyc, x.py
            parts = (part.split(".")[0] for part in path.split(marker, 1)[1].replace("__init__", "").split("/"))
            return f"{root}." + ".".join(part for part in parts if part)
    return name


def opened_before(trace: str, program: str) -> list[str]:
    """The module files (``.pyc``, ``.py``, ``.so``) opened, in order, before ``program``
    was exec'd."""
    paths: list[str] = []
    for line in trace.splitlines():
        exec_match = _EXEC.search(line)
        if exec_match and exec_match.group(1).endswith(program):
            return paths
        open_match = _OPEN.search(line)
        if open_match:
            paths.append(open_match.group(1))
    raise ValueError(f"{program} was never executed in this trace")


def loaded_before(trace: str, program: str) -> list[str]:
    """The modules opened (in the order they were) before ``program`` was exec'd."""
    return list(dict.fromkeys(module_name(path) for path in opened_before(trace, program)))


def sources_read_before(trace: str, program: str) -> list[str]:
    """The ``.py`` files opened before ``program`` was exec'd: modules compiled at start-up
    because their bytecode (for the interpreter's -O level) was missing or stale."""
    return [path for path in opened_before(trace, program) if path.endswith(".py")]
