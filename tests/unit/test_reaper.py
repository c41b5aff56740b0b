"""The reaper: pure dispatch, and the real thing against real children."""

import os
import signal

import pytest
import trio

from shim.process.reaper import ExitTable, Reaper
from shim.process.spawn import spawn


def test_table_keeps_only_expected_statuses():
    table = ExitTable()
    table.expect(10)
    assert table.claim(10) is None  # not reaped yet
    assert table.record(11, 0) is False  # an orphan: forgotten
    assert table.record(10, 3 << 8) is True
    assert table.claim(10) == 3 << 8
    assert table.claim(10) is None and len(table) == 0


def test_zero_status_is_a_status():
    table = ExitTable()
    table.expect(5)
    table.record(5, 0)
    assert table.claim(5) == 0


def test_has_exited_until_claimed():
    table = ExitTable()
    table.expect(7)
    assert not table.has_exited(7) and not table.has_exited(8)
    table.record(7, 0)
    assert table.has_exited(7)
    table.claim(7)
    assert not table.has_exited(7)


def sh(script: str) -> int:
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        return spawn(["/bin/sh", "-c", script], env=dict(os.environ),
                     stdin=devnull, stdout=devnull, stderr=2)
    finally:
        os.close(devnull)


def test_blocking_wait_gets_the_real_status():
    reaper = Reaper()
    pid = sh("exit 3")
    reaper.expect(pid)
    assert os.waitstatus_to_exitcode(reaper.wait_blocking(pid)) == 3


# waitpid(-1) reaps any child of the calling process: these tests run in a process of their
# own, so that the test process's other children (fixtures' helpers) are not involved.
ISOLATED_PRELUDE = """
import os, trio
from shim.process.reaper import Reaper
from shim.process.spawn import spawn
def sh(script):
    return spawn(["/bin/sh", "-c", script], env=dict(os.environ), stdin=0, stdout=1, stderr=2)
"""


def run_isolated(body: str) -> str:
    import subprocess
    import sys
    import textwrap

    proc = subprocess.run([sys.executable, "-c", ISOLATED_PRELUDE + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_waitpid_minus_one_does_not_steal_statuses():
    """The bug this design prevents: a waitpid(-1) sweep must hand 3 to the waiter, not 0."""
    out = run_isolated("""
        async def main():
            reaper = Reaper()
            pids = {}
            for code in (3, 0, 7):
                pid = sh(f"exit {code}")
                reaper.expect(pid)
                pids[pid] = code
            sh("exit 9")  # nobody expects it: reaped and counted, not kept

            async def sweeper():
                while True:
                    reaper.reap()
                    await trio.sleep(0.01)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sweeper)
                got = [os.waitstatus_to_exitcode(await reaper.wait(pid)) for pid in pids]
                with trio.fail_after(5):
                    while reaper.orphans_reaped < 1:
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            print(got, reaper.orphans_reaped)
        trio.run(main)
    """)
    assert out.split("\n")[0] == "[3, 0, 7] 1"


async def test_wait_for_an_unexpected_pid_is_a_bug():
    with pytest.raises(RuntimeError):
        await Reaper().wait(123456)


def test_wait_until_childless():
    out = run_isolated("""
        async def main():
            reaper = Reaper()
            for _ in range(5):
                sh("sleep 0.05")

            async def on_sigchld():
                while True:
                    await trio.sleep(0.01)
                    reaper.reap()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(on_sigchld)
                with trio.fail_after(5):
                    await reaper.wait_until_childless()
                nursery.cancel_scope.cancel()
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                print("childless", reaper.orphans_reaped)
        trio.run(main)
    """)
    assert out.strip() == "childless 5"


def test_spawned_child_has_default_signals_and_empty_mask():
    """Python ignores SIGPIPE and the shim blocks nearly everything; none of it may leak."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})
    r, w = os.pipe()
    try:
        pid = spawn(["/bin/sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"],
                    env=dict(os.environ), stdin=0, stdout=w, stderr=2)
    finally:
        os.close(w)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    fields = dict(line.split(":\t") for line in out.decode().splitlines())
    assert int(fields["SigBlk"], 16) == 0
    # glibc's posix_spawn sets its two internal signals (32 and 33, below SIGRTMIN) to
    # SIG_IGN in the child; no program can use them, and every real signal is at default.
    glibc_internal = (1 << 31) | (1 << 32)
    assert int(fields["SigIgn"], 16) & ~glibc_internal == 0


def test_spawn_passes_only_stdio_and_kept_fds():
    leaked = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(leaked, True)  # even an inheritable fd of ours must not pass...
    kept = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # ...while a kept one does
    r, w = os.pipe()
    try:
        from shim.process.spawn import seal_inherited_fds

        seal_inherited_fds()
        pid = spawn(["/bin/sh", "-c", "ls /proc/self/fd"], env=dict(os.environ), stdin=0, stdout=w, stderr=2,
                    keep_fds=(kept,))
    finally:
        os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    fds = {int(x) for x in out.split()}
    os.close(leaked)
    os.close(kept)
    # ls opens one fd of its own to read the directory
    assert leaked not in fds
    assert kept in fds
    assert {0, 1, 2} <= fds and len(fds - {0, 1, 2, kept}) <= 1

