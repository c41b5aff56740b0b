"""The shim's own failures and the exit codes they map to.

The codes follow the convention of podman and ``env``/POSIX shells, so a caller can tell
the shim's failures from the container's: 125 for the shim or the runtime, 126 when the
container's command exists but cannot be executed, 127 when it does not exist. Anything
else is the container's own status (128+N when it died of signal N).
"""

SHIM_FAILED = 125
COMMAND_NOT_EXECUTABLE = 126
COMMAND_NOT_FOUND = 127


class ShimError(Exception):
    """A failure to report as one ``shim: ...`` line on stderr and an exit code."""

    def __init__(self, message: str, exit_code: int = SHIM_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(ShimError):
    """A bad flag or argument: always exit code 125."""

    def __init__(self, message: str) -> None:
        super().__init__(message, SHIM_FAILED)
