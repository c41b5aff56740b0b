"""What else the machine did during each scenario, from /proc, before and after it.

A figure measured while something else kept the CPUs busy is not the figure of a quiet
machine, and a reader must be able to tell. Around each scenario: the CPUs' time from
/proc/stat (busy, idle, stolen by a hypervisor), /proc/loadavg, and the CPU time of every
process (utime + stime from /proc/<pid>/stat). Processes of the bench's own tree (the
driver and whatever it started) are told apart from the others; the others' share of all
CPUs' time is the figure that warrants a warning, with their names.

Parsing and comparing are pure; only ``snapshot`` reads /proc.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

# Other processes using more than this share of all CPUs' time during a scenario make its
# figures those of a busy machine.
WARN_SHARE = 0.05
# Over a shorter time, a process's CPU time (counted in clock ticks, 10 ms) says too little
# to warn about: one tick more or less is a share of several percent.
MIN_SECONDS = 0.5
# The record names other processes down to this share, the busiest first, at most MAX_NAMED.
NAME_SHARE = 0.002
MAX_NAMED = 10
# the kernel marks its own threads with this flag (include/linux/sched.h)
PF_KTHREAD = 0x00200000
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")
IDLE_FIELDS = ("idle", "iowait")
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    ppid: int
    ticks: int  # utime + stime
    children_ticks: int  # cutime + cstime: of the children it waited for
    start: int  # starttime, in ticks since boot: tells a reused pid from the first
    kernel: bool


@dataclass(frozen=True)
class Snapshot:
    when: float  # time.monotonic()
    cpus: int
    cpu: dict[str, int]  # /proc/stat's aggregate line, in ticks
    loadavg: dict[str, float]
    procs: dict[tuple[int, int], Proc] = field(default_factory=dict)  # by (pid, start)


def parse_proc_stat(text: str) -> tuple[dict[str, int], int]:
    """The aggregate CPU times (ticks) of /proc/stat, and how many CPUs it lists."""
    times: dict[str, int] = {}
    cpus = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            times = dict(zip(STAT_FIELDS, (int(v) for v in line.split()[1:])))
        elif line.startswith("cpu"):
            cpus += 1
    return times, cpus


def parse_loadavg(text: str) -> dict[str, float]:
    one, five, fifteen, tasks, _ = text.split()
    running, total = tasks.split("/")
    return {"1 min": float(one), "5 min": float(five), "15 min": float(fifteen),
            "runnable": int(running), "tasks": int(total)}


def parse_pid_stat(text: str) -> Proc:
    """One /proc/<pid>/stat line; the name (comm) may hold spaces and parentheses."""
    pid, _, rest = text.partition(" (")
    name, _, rest = rest.rpartition(") ")
    fields = rest.split()
    # fields[0] is field 3 of proc(5): state; ppid 4, flags 9, utime 14, stime 15,
    # cutime 16, cstime 17, starttime 22
    return Proc(pid=int(pid), name=name, ppid=int(fields[1]), ticks=int(fields[11]) + int(fields[12]),
                children_ticks=int(fields[13]) + int(fields[14]), start=int(fields[19]),
                kernel=bool(int(fields[6]) & PF_KTHREAD))


def tree(procs: dict[tuple[int, int], Proc], root: int) -> set[tuple[int, int]]:
    """The keys of ``root`` and of all its descendants."""
    children: dict[int, list[Proc]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc)
    found = {key for key, proc in procs.items() if proc.pid == root}
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            key = (child.pid, child.start)
            if key not in found:
                found.add(key)
                pending.append(child.pid)
    return found


def compare(before: Snapshot, after: Snapshot, root: int) -> dict:
    """The machine's record for the time between two snapshots, ``root`` being the bench.

    Shares are of all CPUs' time. ``own`` counts the bench's live processes and the
    children they waited for; processes that began and ended between the snapshots
    elsewhere (and the bench's daemons, such as conmon, whose parent is init) show only
    in ``busy``."""
    total = sum(after.cpu.values()) - sum(before.cpu.values())
    if total <= 0:
        total = 1  # no tick elapsed: every share is then 0, not a division by zero

    def share(ticks: int) -> float:
        return round(ticks / total, 4)

    def delta(names) -> int:
        return sum(after.cpu.get(n, 0) - before.cpu.get(n, 0) for n in names)

    own_keys = tree(before.procs, root) | tree(after.procs, root)
    own = others = kernel = 0
    busiest: list[tuple[int, Proc]] = []
    for key, proc in after.procs.items():
        earlier = before.procs.get(key)
        used = proc.ticks - (earlier.ticks if earlier else 0)
        if key in own_keys:
            reaped = proc.children_ticks - (earlier.children_ticks if earlier else 0)
            own += used + (reaped if proc.pid == root else 0)
        elif proc.kernel:
            kernel += used
        elif used > 0:
            others += used
            busiest.append((used, proc))
    busiest.sort(key=lambda item: (-item[0], item[1].pid))
    named = [{"pid": p.pid, "name": p.name, "cpu seconds": round(used / TICKS_PER_SECOND, 2), "share": share(used)}
             for used, p in busiest if used / total >= NAME_SHARE][:MAX_NAMED]
    return {"seconds": round(after.when - before.when, 2), "cpus": after.cpus,
            "busy": share(delta(BUSY_FIELDS)), "idle": share(delta(IDLE_FIELDS)), "steal": share(delta(["steal"])),
            "own": share(own), "others": share(others), "kernel threads": share(kernel),
            "busiest others": named, "loadavg before": before.loadavg, "loadavg after": after.loadavg}


def warning(scenario: str, record: dict) -> str | None:
    """A warning when other processes, or the hypervisor (steal), took more than
    WARN_SHARE of the CPUs' time, naming the processes."""
    if record["seconds"] < MIN_SECONDS:
        return None
    causes = []
    if record["others"] > WARN_SHARE:
        names = ", ".join(f"{p['name']} (pid {p['pid']}, {p['share']:.1%})" for p in record["busiest others"])
        causes.append(f"other processes used {record['others']:.0%} of the CPUs ({names or 'each too little to name'})")
    if record["steal"] > WARN_SHARE:
        causes.append(f"the hypervisor took {record['steal']:.0%} of the CPUs' time (steal)")
    if not causes:
        return None
    return f"during {scenario}, {' and '.join(causes)}: these are not a quiet machine's figures"


def snapshot() -> Snapshot:
    when = time.monotonic()
    with open("/proc/stat") as f:
        cpu, cpus = parse_proc_stat(f.read())
    with open("/proc/loadavg") as f:
        loadavg = parse_loadavg(f.read())
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                proc = parse_pid_stat(f.read())
        except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
            continue
        procs[(proc.pid, proc.start)] = proc
    return Snapshot(when, cpus, cpu, loadavg, procs)
