"""One systemd boot and one stop as a timeline, from the sources that cost the run least
(``python -m bench.profiles boot``). Everything here is pure: text in, milestones out.

Every source speaks ``CLOCK_MONOTONIC`` nanoseconds, so they lay on one axis:

- the kernel's trace events, recorded system-wide by ``perf record -k mono`` and printed by
  ``perf script --ns -F comm,pid,tid,time,event,trace`` (``parse_perf_script``): fork,
  exec and exit of every process, signals as they are generated, and a few socket calls.
  Tracepoints cost the kernel a few microseconds per event and stop nobody, where
  ``strace -f`` stops every traced process at each traced call (and slows a systemd boot,
  dozens of processes, by tens of milliseconds);
- the shim's own ``--log-level debug`` lines, which carry the monotonic time they were
  written (``parse_shim_log``): what only the shim knows (trio imported, supervision
  running, a stop request taken);
- systemd's own timestamps inside the container (``systemctl show``, ``parse_systemd_show``)
  and its journal (``journalctl -o json``, ``parse_journal``): the journal's
  ``__MONOTONIC_TIMESTAMP`` is the time journald received an entry;
- the driver's stamps: the monitor's exec, READY=1 at the host's listener, the stop.

A process is named by what it is (the monitor, the runtime's runs in order, the container's
init), found through the fork tree of the driver: perf records the whole machine, and other
users' processes are left out.
"""

from __future__ import annotations

import json
import re
import statistics
from typing import NamedTuple


class Event(NamedTuple):
    t: int  # ns, CLOCK_MONOTONIC
    comm: str
    pid: int  # the thread group
    tid: int
    kind: str  # "sched:sched_process_exec", "syscalls:sys_exit_wait4", ...
    fields: dict  # key=value pairs; syscalls: their arguments (sys_enter_*) or "ret" (sys_exit_*)


_PERF_LINE = re.compile(r"^\s*(?P<comm>.*?)\s+(?P<pid>-?\d+)/(?P<tid>\d+)\s+(?P<secs>\d+)\.(?P<frac>\d+):\s+"
                        r"(?P<kind>[\w-]+:[\w-]+):\s*(?P<trace>.*)$")
_KEY_VALUE = re.compile(r"(\w+)=(\S*)")
_SYSCALL_ARG = re.compile(r"(\w+): (0x[0-9a-fA-F]+)")


def parse_perf_line(line: str) -> Event | None:
    """One line of ``perf script --ns -F comm,pid,tid,time,event,trace``; None for anything
    else (perf's own warnings, blank lines)."""
    m = _PERF_LINE.match(line)
    if m is None:
        return None
    frac = m["frac"]
    t = int(m["secs"]) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
    kind, trace = m["kind"], m["trace"]
    if kind.startswith("syscalls:sys_exit_"):
        value = int(trace.split()[0], 16) if trace.startswith("0x") else 0
        fields = {"ret": value - (1 << 64) if value >= 1 << 63 else value}
    elif kind.startswith("syscalls:sys_enter_"):
        fields = {key: int(value, 16) for key, value in _SYSCALL_ARG.findall(trace)}
    else:
        fields = dict(_KEY_VALUE.findall(trace))
    return Event(t, m["comm"], int(m["pid"]), int(m["tid"]), kind, fields)


def parse_perf_script(text: str) -> list[Event]:
    events = [e for e in map(parse_perf_line, text.splitlines()) if e is not None]
    events.sort(key=lambda e: e.t)
    return events


def descendants(events: list[Event], root: int) -> set[int]:
    """Every thread and process forked, directly or not, from ``root`` (a pid), with it."""
    members = {root}
    for e in events:
        if e.kind == "sched:sched_process_fork" and (e.tid in members or e.pid in members):
            members.add(int(e.fields["child_pid"]))
    return members


class Run(NamedTuple):
    """One process of a given program: exec'd at ``began``, gone at ``ended``."""

    pid: int
    began: int
    ended: int | None


def process_exit(events: list[Event], pid: int) -> int | None:
    """When process ``pid`` was gone: its last thread's exit (``group_dead=true``), or its
    leader's on kernels whose tracepoint does not say."""
    leader = None
    for e in events:
        if e.kind == "sched:sched_process_exit" and e.pid == pid:
            if e.fields.get("group_dead") == "true":
                return e.t
            if e.tid == pid:
                leader = e.t
    return leader


def runs_of(events: list[Event], members: set[int], program: str) -> list[Run]:
    """Each exec of ``program`` (a basename) by a member, in order, with its exit."""
    runs = []
    for e in events:
        if (e.kind == "sched:sched_process_exec" and e.pid in members
                and e.fields.get("filename", "").rsplit("/", 1)[-1] == program):
            runs.append(Run(e.pid, e.t, process_exit(events, e.pid)))
    return runs


def _first(events, predicate, since: int | None = None, until: int | None = None) -> Event | None:
    for e in events:
        if (since is None or e.t >= since) and (until is None or e.t <= until) and predicate(e):
            return e
    return None


def _last(events, predicate, since: int | None = None, until: int | None = None) -> Event | None:
    found = None
    for e in events:
        if (since is None or e.t >= since) and (until is None or e.t <= until) and predicate(e):
            found = e
    return found


def _t(event: Event | None) -> int | None:
    return None if event is None else event.t


def notify_sends(events: list[Event], pid: int) -> list[int]:
    """When process ``pid`` may have sent an sd_notify message: ``sd_notify()`` makes a
    socket of its own (``socket()``), sends once on it (``sendmsg``) and closes it, so each
    notification is the first ``sendmsg`` on a fresh socket. systemd's journal and D-Bus
    traffic goes through sockets it keeps open, whose first message is counted too (perf
    cannot read the datagram): the caller takes the last such send before the monitor
    read READY=1."""
    fresh: set[int] = set()
    sends = []
    for e in events:
        if e.pid != pid:
            continue
        if e.kind == "syscalls:sys_exit_socket" and e.fields["ret"] >= 0:
            fresh.add(e.fields["ret"])
        elif e.kind == "syscalls:sys_enter_sendmsg" and e.fields.get("fd") in fresh:
            fresh.discard(e.fields["fd"])
            sends.append(e.t)
    return sends


SENDS = ("syscalls:sys_enter_sendto", "syscalls:sys_enter_sendmsg")
RECEIVES = ("syscalls:sys_exit_recvfrom", "syscalls:sys_exit_recvmsg")
# A notify datagram is at least "READY=1"; the one-byte sends and reads of an event loop's
# wake-up socket (trio's, glib's) are not.
DATAGRAM_MIN = len("READY=1")


def boot_from_perf(events: list[Event], *, driver_pid: int, monitor_pid: int, monitor_pids: set[int],
                   runtime: str, init_path: str, since: int, ready: int) -> dict[str, int]:
    """The boot's milestones the kernel saw, between the monitor's exec (``since``) and
    READY=1 at the host (``ready``). ``monitor_pids``: the monitor's own processes (conmon
    daemonizes: the one started and the daemon), which relay READY=1."""
    members = descendants(events, driver_pid)
    window = [e for e in events if since <= e.t <= ready and e.pid in members]
    found: dict[str, int | None] = {}
    execs = [e for e in window if e.kind == "sched:sched_process_exec" and e.pid == monitor_pid]
    if execs:
        found["exec"] = execs[0].t
        if len(execs) > 1:
            found["interpreter"] = execs[-1].t
    runs = runs_of(window, members, runtime.rsplit("/", 1)[-1])
    for name, run in zip(("create", "start"), runs):
        found[f"{name}_spawned"] = run.began
        found[f"{name}_done"] = run.ended
    if runs:
        create = runs[0]
        runc_init = _first(window, lambda e: e.kind == "sched:sched_process_exec"
                           and e.fields.get("filename") == "/proc/self/exe", since=create.began)
        found["runc_init"] = _t(runc_init)
        found["create_reaped"] = _t(_first(window, lambda e: e.kind == "syscalls:sys_exit_wait4"
                                           and e.fields["ret"] == create.pid, since=create.began))
    init = _first(window, lambda e: e.kind == "sched:sched_process_exec" and e.fields.get("filename") == init_path)
    if init is not None:
        found["init_exec"] = init.t
        relayed = _last(window, lambda e: e.kind in SENDS and e.pid in monitor_pids
                        and e.fields.get("len", DATAGRAM_MIN) >= DATAGRAM_MIN, since=init.t)
        found["ready_relayed"] = _t(relayed)
        if relayed is not None:
            read = _last(window, lambda e: e.kind in RECEIVES and e.pid in monitor_pids
                         and e.fields["ret"] >= DATAGRAM_MIN, until=relayed.t)
            found["ready_read"] = _t(read)
            until = read.t if read is not None else relayed.t
            sent = [t for t in notify_sends(window, init.pid) if t <= until]
            found["ready_sent"] = sent[-1] if sent else None
    return {k: v for k, v in found.items() if v is not None}


def container_init(events: list[Event], driver_pid: int, init_path: str) -> int | None:
    members = descendants(events, driver_pid)
    init = _first(events, lambda e: e.kind == "sched:sched_process_exec" and e.pid in members
                  and e.fields.get("filename") == init_path)
    return None if init is None else init.pid


def stop_from_perf(events: list[Event], *, driver_pid: int, monitor_pid: int, init_pid: int,
                   runtime: str, stop_signal: int, since: int, until: int) -> dict[str, int]:
    """The stop's milestones the kernel saw between the stop request (``since``) and the
    driver's last step (``until``). ``monitor_pid``: the process that exits last (the
    shim; conmon's daemon)."""
    members = descendants(events, driver_pid)
    window = [e for e in events if since <= e.t <= until]
    mine = [e for e in window if e.pid in members]
    found: dict[str, int | None] = {}
    runs = runs_of(mine, members, runtime.rsplit("/", 1)[-1])
    if len(runs) >= 2:  # conmon: the driver runs `runtime kill`, then `runtime delete`
        found["kill_spawned"], found["kill_done"] = runs[0].began, runs[0].ended
    if runs:
        found["delete_spawned"], found["delete_done"] = runs[-1].began, runs[-1].ended
    found["stop_signal_sent"] = _t(_first(window, lambda e: e.kind == "signal:signal_generate"
                                          and e.fields.get("sig") == str(stop_signal)
                                          and e.fields.get("pid") == str(init_pid)))
    found["shutdown_exec"] = _t(_first(window, lambda e: e.kind == "sched:sched_process_exec" and e.pid == init_pid
                                       and e.fields.get("filename", "").endswith("/systemd-shutdown")))
    found["init_exit"] = process_exit(window, init_pid)
    found["init_reaped"] = _t(_first(mine, lambda e: e.kind == "syscalls:sys_exit_wait4"
                                     and e.fields["ret"] == init_pid))
    found["monitor_exit"] = process_exit(window, monitor_pid)
    return {k: v for k, v in found.items() if v is not None}


_SHIM_LINE = re.compile(r"^[\w.-]+: \[(?P<secs>\d+)\.(?P<frac>\d+)\] (?:(?P<level>debug|warning): )?(?P<text>.*)$")


def parse_shim_log(text: str) -> list[tuple[int, str]]:
    """The shim's time-stamped lines (``--log-level debug``): (ns, message), in order."""
    lines = []
    for line in text.splitlines():
        m = _SHIM_LINE.match(line)
        if m:
            lines.append((int(m["secs"]) * 1_000_000_000 + int(m["frac"].ljust(9, "0")[:9]), m["text"]))
    return lines


# What the shim's own lines say, by milestone: the first line that matches each.
_SHIM_MILESTONES = (
    ("create_spawned", re.compile(r"^runtime create of container .* begins$")),
    ("create_reaped", re.compile(r"^runtime create done")),
    ("start_spawned", re.compile(r"^runtime start begins$")),
    ("start_reaped", re.compile(r"^runtime start done$")),
    ("trio_imported", re.compile(r"^trio imported$")),
    ("supervising", re.compile(r"^supervising: ")),
    ("ready_logged", re.compile(r"^notify: relayed from pid \d+: (.* )?READY=1( |$)")),
    ("stop_taken", re.compile(r"^\S+ received: stopping container ")),
    ("stop_signal_logged", re.compile(r"^sent \S+ to the container's init$")),
    ("init_reaped_logged", re.compile(r"^the container's init pid \d+ was reaped$")),
    ("delete_logged", re.compile(r"^output drained; runtime delete begins$")),
    ("deleted_logged", re.compile(r"^runtime delete done$")),
    ("leaving", re.compile(r"^leaving with exit status ")),
)


def shim_milestones(lines: list[tuple[int, str]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for t, text in lines:
        for key, pattern in _SHIM_MILESTONES:
            if key not in found and pattern.search(text):
                found[key] = t
    return found


SYSTEMD_TIMESTAMPS = {
    # systemctl show property (CLOCK_MONOTONIC, us) -> milestone
    "UserspaceTimestampMonotonic": "systemd_userspace",
    "SecurityFinishTimestampMonotonic": "systemd_security",
    "GeneratorsFinishTimestampMonotonic": "systemd_generators",
    "UnitsLoadFinishTimestampMonotonic": "systemd_units_loaded",
    "FinishTimestampMonotonic": "systemd_finish",
}


def parse_systemd_show(text: str) -> dict[str, int]:
    """``systemctl show --property=...`` of the container's manager: its own boot
    timestamps (us on the host's CLOCK_MONOTONIC: a container shares it), as ns; a
    timestamp systemd never took (0) is left out."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in SYSTEMD_TIMESTAMPS and value.strip().isdigit() and int(value) > 0:
            found[SYSTEMD_TIMESTAMPS[key]] = int(value) * 1000
    return found


def parse_journal(text: str) -> dict[str, int]:
    """``journalctl -o json`` inside the container: when journald received its own first
    entry and PID 1's first and "Startup finished" ones."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("MESSAGE")
        if not isinstance(message, str) or not str(entry.get("__MONOTONIC_TIMESTAMP", "")).isdigit():
            continue
        t = int(entry["__MONOTONIC_TIMESTAMP"]) * 1000
        if message.startswith("Journal started"):
            found.setdefault("journal_started", t)
        if entry.get("_PID") == "1":
            found.setdefault("journal_pid1", t)
            if message.startswith("Startup finished"):
                found.setdefault("journal_finished", t)
    return found


# The rows of each table, in the order things usually happen; a row that a contender has
# no source for shows "-".
BOOT_ROWS = (
    ("exec", "monitor exec'd"),
    ("interpreter", "its interpreter exec'd (the shim script's shell line)"),
    ("create_spawned", "runtime create spawned"),
    ("runc_init", "runc init (the container's process) exec'd"),
    ("create_done", "runtime create exited"),
    ("create_reaped", "the monitor reaped runtime create"),
    ("start_spawned", "runtime start spawned (conmon: by the driver, as podman)"),
    ("init_exec", "the container's init exec'd /sbin/init"),
    ("start_done", "runtime start exited"),
    ("systemd_userspace", "systemd: its own start (UserspaceTimestamp)"),
    ("systemd_security", "systemd: security set up"),
    ("systemd_generators", "systemd: generators done"),
    ("systemd_units_loaded", "systemd: units loaded"),
    ("journal_started", "journald: its first entry"),
    ("trio_imported", "shim: trio imported (thread at idle priority)"),
    ("supervising", "shim: supervision runs (trio)"),
    ("systemd_finish", "systemd: startup finished (FinishTimestamp)"),
    ("journal_finished", "journald: 'Startup finished' received"),
    ("ready_sent", "READY=1 sent by the container's init (sd_notify)"),
    ("ready_read", "READY=1 read by the monitor"),
    ("ready_logged", "shim: READY=1 relayed (its log line)"),
    ("ready_relayed", "READY=1 sent on by the monitor"),
    ("ready", "READY=1 at the host's listener"),
)

STOP_ROWS = (
    ("stop", "stop: SIGTERM to the shim; conmon: the driver runs runtime kill"),
    ("kill_spawned", "runtime kill spawned"),
    ("stop_taken", "shim: the stop request reached trio"),
    ("stop_signal_sent", "SIGRTMIN+3 sent to the container's init"),
    ("kill_done", "runtime kill exited"),
    ("shutdown_exec", "the init exec'd systemd-shutdown (units stopped)"),
    ("init_exit", "the container's init exited"),
    ("init_reaped", "the monitor reaped it"),
    ("delete_spawned", "runtime delete spawned (conmon: by the driver)"),
    ("delete_done", "runtime delete exited"),
    ("leaving", "shim: leaving (exit file, cleanup done)"),
    ("monitor_exit", "the monitor exited"),
    ("exit_seen", "the driver saw it: the shim's exit; conmon's exit file"),
    ("deleted", "conmon + delete: the driver's runtime delete returned"),
)

# Where the time goes: (label, from, to); a phase missing either end is left out.
BOOT_PHASES = (
    ("the monitor before runtime create", "zero", "create_spawned"),
    ("runtime create", "create_spawned", "create_done"),
    ("create exited -> runtime start spawned", "create_done", "start_spawned"),
    ("runtime start spawned -> /sbin/init exec'd", "start_spawned", "init_exec"),
    ("/sbin/init exec'd -> systemd's own start", "init_exec", "systemd_userspace"),
    ("systemd's boot (its own figure)", "systemd_userspace", "systemd_finish"),
    ("startup finished -> READY=1 sent", "systemd_finish", "ready_sent"),
    ("READY=1: sent -> read by the monitor", "ready_sent", "ready_read"),
    ("READY=1: read -> sent on by the monitor", "ready_read", "ready_relayed"),
    ("READY=1: sent on -> host listener", "ready_relayed", "ready"),
    ("exec -> READY=1 at the host (the bench's figure)", "zero", "ready"),
)

STOP_PHASES = (
    ("request -> SIGRTMIN+3 sent", "zero", "stop_signal_sent"),
    ("SIGRTMIN+3 -> systemd-shutdown exec'd (systemd stops its units)", "stop_signal_sent", "shutdown_exec"),
    ("systemd-shutdown -> the init exited", "shutdown_exec", "init_exit"),
    ("init exited -> reaped by the monitor", "init_exit", "init_reaped"),
    ("reaped -> runtime delete spawned", "init_reaped", "delete_spawned"),
    ("runtime delete", "delete_spawned", "delete_done"),
    ("delete exited -> the monitor exited", "delete_done", "monitor_exit"),
    ("init exited -> the end the driver sees", "init_exit", "exit_seen"),
    ("request -> exit seen (the bench's figure)", "zero", "exit_seen"),
    ("request -> deleted (conmon + delete)", "zero", "deleted"),
)


def relative_ms(milestones: dict[str, int], zero: int) -> dict[str, float]:
    out = {k: (t - zero) / 1e6 for k, t in milestones.items()}
    out["zero"] = 0.0
    return out


def phase_durations(relative: dict[str, float], phases) -> dict[str, float]:
    """Each phase whose two ends are known, and in that order: one whose end came first
    does not apply to that contender (conmon exits before the driver deletes)."""
    return {label: relative[b] - relative[a] for label, a, b in phases
            if a in relative and b in relative and relative[b] >= relative[a]}


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the median over the rounds that have it."""
    keys = {k for s in samples for k in s}
    return {k: statistics.median([s[k] for s in samples if k in s]) for k in keys}


def side_by_side(title: str, rows, by_contender: dict[str, dict[str, float]], counts: dict[str, int] | None = None) -> str:
    """A markdown table: one row per milestone or phase, one column per contender (ms),
    and the difference of the first two."""
    names = list(by_contender)
    header = [title, *names]
    if len(names) == 2:
        header.append(f"{names[0]} - {names[1]}")
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for key, label in rows:
        values = [by_contender[n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        cells = ["-" if v is None else f"{v:.1f}" for v in values]
        if len(names) == 2:
            cells.append("" if None in values else f"{values[0] - values[1]:+.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
