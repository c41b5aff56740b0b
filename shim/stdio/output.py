"""The container's output path: each stream is read by one task and fanned out, in
order, to every destination a front chose (the shim's own stdio, a k8s-file log, the
journal, attach clients).

Backpressure, not loss: a chunk goes to the destinations one after the other and the next
read waits until all took it, so a destination that falls behind (a slow disk, a slow
attach client) slows the container down, through its full pipe, instead of dropping its
output. A destination that cannot take any more for good (a reader gone, a client that
never reads) stops taking output itself and says so; the others go on.
"""

from __future__ import annotations

# The attach protocol's stream ids (conmon's and podman's), used as the streams' names
# everywhere on the output path.
STDIN, STDOUT, STDERR = 1, 2, 3
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}


class Destination:
    """Where output goes. Subclasses override what they need."""

    name = "output"

    async def write(self, stream: int, data: bytes, received_ns: int | None = None) -> None:
        """``received_ns``: when the chunk was read (time.time_ns()), if not just now."""
        raise NotImplementedError

    async def finish(self) -> None:
        """All output is in (or the rest is given up): complete what is pending."""

    def close(self) -> None:
        """Release fds; called once, after ``finish`` or on failure."""


class Output:
    """The fan-out: ``write`` each chunk to every destination, in order."""

    def __init__(self, destinations: list[Destination], before_read=None, early_services=None) -> None:
        self.destinations = list(destinations)
        # Called before each read of a stream: the attach socket accepts waiting clients
        # there, so a client that connected before output was written sees all of it.
        self.before_read = before_read or (lambda: None)
        # {fd: callback} served while trio loads (see shim.stdio.early): the control fifos.
        self.early_services = early_services or {}

    async def write(self, stream: int, data: bytes, received_ns: int | None = None) -> None:
        for destination in self.destinations:
            await destination.write(stream, data, received_ns)

    async def finish(self) -> None:
        for destination in self.destinations:
            await destination.finish()

    def close(self) -> None:
        for destination in self.destinations:
            destination.close()
