"""The machine's load around a scenario: parsing /proc, telling the bench's own processes
from the others, and warning when the others were busy."""

import os

import pytest

from bench import machine
from bench.machine import Proc, Snapshot

PROC_STAT = """cpu  100 5 50 800 10 3 2 30 0 0
cpu0 50 2 25 400 5 1 1 15 0 0
cpu1 50 3 25 400 5 2 1 15 0 0
intr 12345 0 0
ctxt 999
"""


def test_parse_proc_stat():
    times, cpus = machine.parse_proc_stat(PROC_STAT)
    assert cpus == 2
    assert times == {"user": 100, "nice": 5, "system": 50, "idle": 800, "iowait": 10, "irq": 3, "softirq": 2,
                     "steal": 30}


def test_parse_loadavg():
    assert machine.parse_loadavg("1.65 0.88 0.42 3/119 27401\n") == {
        "1 min": 1.65, "5 min": 0.88, "15 min": 0.42, "runnable": 3, "tasks": 119}


def stat_line(pid, name, ppid=1, utime=0, stime=0, cutime=0, cstime=0, start=100, flags=0):
    fields = ["S", ppid, pid, pid, 0, -1, flags, 0, 0, 0, 0, utime, stime, cutime, cstime, 20, 0, 1, 0, start,
              0, 0]
    return f"{pid} ({name}) " + " ".join(str(f) for f in fields)


@pytest.mark.parametrize("name", ["bash", "tmux: server", "a) (b", "x)", ""])
def test_parse_pid_stat_takes_any_name(name):
    proc = machine.parse_pid_stat(stat_line(42, name, ppid=7, utime=3, stime=4, cutime=5, cstime=6, start=99))
    assert proc == Proc(pid=42, name=name, ppid=7, ticks=7, children_ticks=11, start=99, kernel=False)


def test_parse_pid_stat_tells_kernel_threads():
    assert machine.parse_pid_stat(stat_line(3, "kworker/0:1", ppid=2, flags=machine.PF_KTHREAD | 0x40)).kernel


def test_parse_pid_stat_reads_this_process():
    with open("/proc/self/stat") as f:
        proc = machine.parse_pid_stat(f.read())
    assert (proc.pid, proc.ppid, proc.kernel) == (os.getpid(), os.getppid(), False)


def procs(*items):
    return {(p.pid, p.start): p for p in items}


def proc(pid, name, ppid=1, ticks=0, children_ticks=0, start=100, kernel=False):
    return Proc(pid, name, ppid, ticks, children_ticks, start, kernel)


def test_tree_follows_children_and_not_a_reused_pid():
    found = machine.tree(procs(proc(10, "bench"), proc(11, "shim", ppid=10), proc(12, "runc", ppid=11),
                               proc(20, "other"), proc(21, "its child", ppid=20)), root=10)
    assert found == {(10, 100), (11, 100), (12, 100)}


CPU_BEFORE = {"user": 0, "nice": 0, "system": 0, "idle": 0, "iowait": 0, "irq": 0, "softirq": 0, "steal": 0}


def snapshots(before_procs, after_procs, busy=600, idle=400, steal=0):
    """Two snapshots 1000 ticks apart (all CPUs together)."""
    after_cpu = {**CPU_BEFORE, "user": busy, "idle": idle - steal, "steal": steal}
    load = {"1 min": 0.5, "5 min": 0.4, "15 min": 0.3, "runnable": 1, "tasks": 100}
    return (Snapshot(0.0, 2, CPU_BEFORE, load, procs(*before_procs)),
            Snapshot(5.0, 2, after_cpu, load, procs(*after_procs)))


def test_compare_tells_own_others_and_kernel_threads():
    before, after = snapshots(
        [proc(10, "bench", ticks=100, children_ticks=50), proc(20, "compiler", ticks=10), proc(30, "idle", ticks=7),
         proc(2, "kthreadd", ppid=0, kernel=True), proc(31, "kworker", ppid=2, ticks=1, kernel=True),
         proc(40, "gone", ticks=5)],
        [proc(10, "bench", ticks=300, children_ticks=150), proc(11, "shim", ppid=10, ticks=40),
         proc(20, "compiler", ticks=110), proc(30, "idle", ticks=7),
         proc(2, "kthreadd", ppid=0, kernel=True), proc(31, "kworker", ppid=2, ticks=21, kernel=True),
         proc(50, "new", ticks=30), proc(60, "tiny", ticks=1)])
    record = machine.compare(before, after, root=10)
    # own: the bench's 200, its reaped children's 100 and the live shim's 40
    assert record["own"] == 0.34
    assert record["others"] == 0.131  # compiler 100, new 30, tiny 1; "idle" used nothing
    assert record["kernel threads"] == 0.02
    assert (record["busy"], record["idle"], record["steal"]) == (0.6, 0.4, 0.0)
    assert [p["name"] for p in record["busiest others"]] == ["compiler", "new"]  # tiny is below NAME_SHARE
    assert record["busiest others"][0] == {"pid": 20, "name": "compiler", "share": 0.1,
                                           "cpu seconds": round(100 / machine.TICKS_PER_SECOND, 2)}
    assert (record["seconds"], record["cpus"]) == (5.0, 2)
    assert record["loadavg before"]["1 min"] == 0.5


def test_a_reused_pid_counts_from_zero():
    before, after = snapshots([proc(20, "old", ticks=500, start=1)], [proc(20, "new", ticks=30, start=900)])
    assert machine.compare(before, after, root=10)["others"] == 0.03


def test_no_time_elapsed_gives_zero_shares():
    before, _ = snapshots([proc(20, "x")], [])
    record = machine.compare(before, before, root=10)
    assert record["busy"] == record["others"] == 0


def test_the_number_of_named_processes_is_bounded():
    before, after = snapshots([], [proc(100 + i, f"p{i}", ticks=10 + i) for i in range(machine.MAX_NAMED + 5)])
    named = machine.compare(before, after, root=10)["busiest others"]
    assert len(named) == machine.MAX_NAMED
    assert named[0]["name"] == f"p{machine.MAX_NAMED + 4}"  # the busiest first


def test_a_warning_names_the_busy_processes():
    before, after = snapshots([], [proc(20, "compiler", ticks=200), proc(21, "indexer", ticks=40)])
    text = machine.warning("signals", machine.compare(before, after, root=10))
    assert "signals" in text and "24%" in text
    assert "compiler (pid 20, 20.0%)" in text and "indexer (pid 21, 4.0%)" in text


def test_no_warning_on_a_quiet_machine():
    quiet_ticks = int(machine.WARN_SHARE * 1000)  # exactly the share: not more than it
    before, after = snapshots([], [proc(20, "cron", ticks=quiet_ticks)])
    assert machine.warning("signals", machine.compare(before, after, root=10)) is None


def test_no_warning_over_too_short_a_time():
    before, after = snapshots([], [proc(20, "compiler", ticks=200)])
    after = Snapshot(machine.MIN_SECONDS / 2, after.cpus, after.cpu, after.loadavg, after.procs)
    assert machine.warning("systemd", machine.compare(before, after, root=10)) is None


def test_a_warning_for_stolen_time():
    before, after = snapshots([], [], steal=100)
    text = machine.warning("notify", machine.compare(before, after, root=10))
    assert "steal" in text and "10%" in text


def test_snapshot_sees_this_process():
    snap = machine.snapshot()
    assert snap.cpus >= 1 and snap.cpu["idle"] > 0
    assert any(p.pid == os.getpid() for p in snap.procs.values())
