"""Container IDs (pure).

An ID names the runtime's state, the shim's state directory and the exit file, so it must
be safe as a single path component and as a runtime argument: ``[A-Za-z0-9]`` followed by
up to 127 of ``[A-Za-z0-9_.-]`` (runc's character set, with a length bound so that the ID
always fits in a file name).
"""

from __future__ import annotations

from shim.errors import UsageError

MAX_LENGTH = 128
_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_REST = _FIRST | frozenset("_.-")


def is_valid(container_id: str) -> bool:
    return (
        0 < len(container_id) <= MAX_LENGTH
        and container_id[0] in _FIRST
        and all(c in _REST for c in container_id[1:])
    )


def validate(container_id: str) -> str:
    """Return the ID unchanged, or raise UsageError saying what is wrong with it."""
    if not is_valid(container_id):
        raise UsageError(
            f"invalid container ID {container_id!r}: use 1 to {MAX_LENGTH} characters of "
            "[A-Za-z0-9_.-], starting with a letter or digit"
        )
    return container_id
