"""The one reaper: it owns every wait of the shim.

A child subreaper must ``waitpid(-1)`` to collect the orphans re-parented to it, and that
steals the status of any child somebody else waits for (``subprocess`` then reports 0 for a
child that exited 3). So every child of the shim is spawned with ``shim.process.spawn``,
its pid is registered here with ``expect`` before anything can reap it, and the reaper hands
each status to the one waiter of that pid. Statuses nobody expects are orphans: reaped and
counted, nothing more.

``ExitTable`` is the pure bookkeeping; ``Reaper`` adds the system calls and trio wake-ups.
"""

from __future__ import annotations

import os


class ExitTable:
    """Which pids somebody waits for, and their statuses once reaped (pure)."""

    def __init__(self) -> None:
        self._statuses: dict[int, int | None] = {}

    def expect(self, pid: int) -> None:
        """Keep the status of ``pid`` when it is reaped, until ``claim`` takes it."""
        self._statuses.setdefault(pid, None)

    def is_expected(self, pid: int) -> bool:
        return pid in self._statuses

    def has_exited(self, pid: int) -> bool:
        """An expected pid was reaped and its status is not claimed yet."""
        return self._statuses.get(pid) is not None

    def record(self, pid: int, status: int) -> bool:
        """Note a reaped pid. False means nobody expects it: an orphan, forgotten at once."""
        if pid not in self._statuses:
            return False
        self._statuses[pid] = status
        return True

    def claim(self, pid: int) -> int | None:
        """The status of an expected pid once reaped (and forget the pid), else None."""
        status = self._statuses.get(pid)
        if status is not None:
            del self._statuses[pid]
        return status

    def __len__(self) -> int:
        return len(self._statuses)


class Reaper:
    """Reaps every child of the shim and dispatches statuses by pid.

    Two ways to wait: ``wait_blocking`` before trio runs (the container's start-up path
    must not pay for importing trio), and ``await wait`` afterwards, woken by ``reap``,
    which the signal router calls on each SIGCHLD.
    """

    def __init__(self) -> None:
        self._table = ExitTable()
        self._waiters: dict[int, object] = {}  # pid -> trio.Event
        self._sweep_waiters: list[object] = []  # trio.Events pulsed after each sweep
        self.orphans_reaped = 0

    def expect(self, pid: int) -> None:
        self._table.expect(pid)

    def is_expected(self, pid: int) -> bool:
        """True until the status of an expected pid has been claimed."""
        return self._table.is_expected(pid)

    def has_exited(self, pid: int) -> bool:
        """``pid`` (expected) was reaped, and nobody has claimed its status yet."""
        return self._table.has_exited(pid)

    def reap(self) -> bool:
        """Reap every child that has exited, without blocking.

        Returns False once the shim has no children left at all.
        """
        has_children = True
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                has_children = False
                break
            if pid == 0:
                break
            if self._table.record(pid, status):
                waiter = self._waiters.pop(pid, None)
                if waiter is not None:
                    waiter.set()  # type: ignore[attr-defined]
            else:
                self.orphans_reaped += 1
        sweep_waiters, self._sweep_waiters = self._sweep_waiters, []
        for event in sweep_waiters:
            event.set()  # type: ignore[attr-defined]
        return has_children

    def wait_blocking(self, pid: int) -> int:
        """Block until ``pid`` (expected) exits; for use before trio runs."""
        status = self._table.claim(pid)
        if status is not None:
            return status
        _, status = os.waitpid(pid, 0)
        self._table.record(pid, status)
        return self._table.claim(pid)  # type: ignore[return-value]

    async def wait(self, pid: int) -> int:
        """Wait until ``pid`` (expected) has been reaped and return its wait status."""
        import trio

        if not self._table.is_expected(pid):
            raise RuntimeError(f"waiting for pid {pid}, which was never expected")
        while (status := self._table.claim(pid)) is None:
            event = self._waiters.get(pid)
            if event is None:
                event = self._waiters[pid] = trio.Event()
            await event.wait()  # type: ignore[attr-defined]
        return status

    async def wait_until_childless(self) -> None:
        """Reap until the shim has no children left (e.g. a container's killed leftovers)."""
        import trio

        while self.reap():
            event = trio.Event()
            self._sweep_waiters.append(event)
            await event.wait()
