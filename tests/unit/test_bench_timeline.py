"""The boot profile's timeline: perf's lines, the shim's, systemd's and the journal's, and
the milestones read from them (bench/timeline.py)."""

import json

import pytest

from bench import timeline
from bench.timeline import Event

S = 1_000_000_000


def line(comm, pid, tid, secs, kind, trace):
    return f"{comm:>16} {pid}/{tid} {secs}: {kind:>28}: {trace}"


@pytest.mark.parametrize("text, expected", [
    ("            runc 25781/25785 10453.472063891:   sched:sched_process_exit: comm=runc pid=25785 prio=120 "
     "group_dead=true",
     Event(10453 * S + 472063891, "runc", 25781, 25785, "sched:sched_process_exit",
           {"comm": "runc", "pid": "25785", "prio": "120", "group_dead": "true"})),
    (" runc:[0:PARENT] 25789/25789 10453.435245130:   sched:sched_process_exit: comm=runc:[0:PARENT] pid=25789 "
     "prio=120 group_dead=true",
     Event(10453 * S + 435245130, "runc:[0:PARENT]", 25789, 25789, "sched:sched_process_exit",
           {"comm": "runc:[0:PARENT]", "pid": "25789", "prio": "120", "group_dead": "true"})),
    ("   (sd-executor) 25854/25854 10453.896475:   sched:sched_process_fork: comm=(sd-executor) pid=25854 "
     "child_comm=(sd-executor) child_pid=25855",  # perf without --ns: microseconds
     Event(10453 * S + 896475000, "(sd-executor)", 25854, 25854, "sched:sched_process_fork",
           {"comm": "(sd-executor)", "pid": "25854", "child_comm": "(sd-executor)", "child_pid": "25855"})),
    ("    gmain thread 700/702 12.000000001:   sched:sched_process_exec: filename=/sbin/init pid=700 old_pid=700",
     Event(12 * S + 1, "gmain thread", 700, 702, "sched:sched_process_exec",
           {"filename": "/sbin/init", "pid": "700", "old_pid": "700"})),
    ("         python3 25796/25796 10454.581385000:    syscalls:sys_exit_wait4: 0xfffffffffffffff6",
     Event(10454 * S + 581385000, "python3", 25796, 25796, "syscalls:sys_exit_wait4", {"ret": -10})),
    ("         python3 25796/25796 10454.581363000:    syscalls:sys_exit_wait4: 0x64e6",
     Event(10454 * S + 581363000, "python3", 25796, 25796, "syscalls:sys_exit_wait4", {"ret": 25830})),
    ("         python3 25796/25851 10454.581174000:  syscalls:sys_enter_sendto: fd: 0x0000000b, buff: 0x7f9a, "
     "len: 0x00000001, flags: 0x00000000, addr: 0x00000000, addr_len: 0x00000000",
     Event(10454 * S + 581174000, "python3", 25796, 25851, "syscalls:sys_enter_sendto",
           {"fd": 11, "buff": 0x7f9a, "len": 1, "flags": 0, "addr": 0, "addr_len": 0})),
    ("            runc 6073/6073  10488.112237000:     signal:signal_generate: sig=37 errno=0 code=0 comm=systemd "
     "pid=5819 grp=1 res=0",
     Event(10488 * S + 112237000, "runc", 6073, 6073, "signal:signal_generate",
           {"sig": "37", "errno": "0", "code": "0", "comm": "systemd", "pid": "5819", "grp": "1", "res": "0"})),
])
def test_parse_perf_line(text, expected):
    assert timeline.parse_perf_line(text) == expected


@pytest.mark.parametrize("text", ["", "Warning:", "  Processed 3172 events and lost 2 chunks!",
                                  "# ========", "python3 1/1 x.y: sched:sched_process_exec: filename=/a"])
def test_parse_perf_line_ignores_the_rest(text):
    assert timeline.parse_perf_line(text) is None


def test_parse_perf_script_sorts_by_time():
    text = "\n".join([line("b", 2, 2, "1.000000002", "sched:sched_process_exec", "filename=/b pid=2 old_pid=2"),
                      "junk",
                      line("a", 1, 1, "1.000000001", "sched:sched_process_exec", "filename=/a pid=1 old_pid=1")])
    assert [e.comm for e in timeline.parse_perf_script(text)] == ["a", "b"]


def ev(t_ms, kind, process, tid=None, comm="x", **fields):
    return Event(int(t_ms * 1e6), comm, process, process if tid is None else tid, kind, fields)


def fork(t, parent, child, parent_tid=None):
    return ev(t, "sched:sched_process_fork", parent, parent_tid, child_pid=str(child))


def exec_(t, pid, filename):
    return ev(t, "sched:sched_process_exec", pid, filename=filename)


def exit_(t, pid, tid=None, group_dead="true"):
    return ev(t, "sched:sched_process_exit", pid, tid, group_dead=group_dead)


def test_descendants_follow_threads_and_processes_only_from_the_root():
    events = [fork(1, 10, 11), fork(2, 11, 12, parent_tid=13), fork(3, 99, 100), fork(4, 12, 14)]
    # 13 is a thread of 11 (its fork is told by the pid column): what it forks belongs too
    assert timeline.descendants(events, 10) == {10, 11, 12, 14}


def test_process_exit_is_the_last_thread_or_else_the_leader():
    events = [exit_(5, 20, 21, "false"), exit_(6, 20, 20, "false"), exit_(7, 20, 22, "true")]
    assert timeline.process_exit(events, 20) == 7 * 1e6
    old_kernel = [ev(5, "sched:sched_process_exit", 20, 21), ev(6, "sched:sched_process_exit", 20, 20)]
    assert timeline.process_exit(old_kernel, 20) == 6 * 1e6
    assert timeline.process_exit(events, 99) is None


def test_runs_of_a_program_in_order():
    events = [exec_(1, 30, "/usr/sbin/runc"), exec_(2, 31, "/proc/self/exe"), exit_(3, 30),
              exec_(4, 32, "/usr/sbin/runc"), exec_(5, 77, "/usr/sbin/runc")]
    assert timeline.runs_of(events, {30, 31, 32}, "runc") == [timeline.Run(30, 1e6, 3e6), timeline.Run(32, 4e6, None)]


def test_notify_sends_are_first_sendmsgs_on_fresh_sockets():
    events = [
        ev(1, "syscalls:sys_exit_socket", 5, ret=3),  # the journal's socket, kept: its first send counts,
        ev(2, "syscalls:sys_enter_sendmsg", 5, fd=3),
        ev(3, "syscalls:sys_enter_sendmsg", 5, fd=3),  # the next ones do not
        ev(4, "syscalls:sys_exit_socket", 5, ret=9),  # sd_notify: a socket, one sendmsg, closed
        ev(5, "syscalls:sys_enter_sendmsg", 5, fd=9),
        ev(6, "syscalls:sys_enter_sendmsg", 6, fd=9),  # another process
        ev(7, "syscalls:sys_exit_socket", 5, ret=-24),  # EMFILE
        ev(8, "syscalls:sys_exit_socket", 5, ret=9),
        ev(9, "syscalls:sys_enter_sendmsg", 5, fd=9),
        ev(10, "syscalls:sys_enter_sendmsg", 5, fd=9),
    ]
    assert timeline.notify_sends(events, 5) == [2e6, 5e6, 9e6]


def shim_boot_events():
    """A shim run (pid 100) started by the driver (pid 1): runc create (101) whose runc
    init (102) becomes the container's init, runc start (103), READY=1 relayed."""
    return sorted([
        fork(0.1, 1, 100), exec_(0.5, 100, "/venv/bin/shim"), exec_(1, 100, "/venv/bin/python3"),
        fork(20, 100, 101), exec_(20.1, 101, "/usr/sbin/runc"), fork(21, 101, 102),
        exec_(22, 102, "/proc/self/exe"), exit_(50, 101), ev(50.5, "syscalls:sys_exit_wait4", 100, ret=101),
        fork(51, 100, 103), exec_(51.2, 103, "/usr/sbin/runc"), exec_(55, 102, "/sbin/init"), exit_(56, 103),
        ev(57, "syscalls:sys_enter_sendto", 100, fd=4, len=40),  # MAINPID= upstream
        ev(80, "syscalls:sys_exit_socket", 102, ret=7), ev(80.1, "syscalls:sys_enter_sendmsg", 102, fd=7),
        ev(300, "syscalls:sys_exit_socket", 102, ret=7), ev(300.1, "syscalls:sys_enter_sendmsg", 102, fd=7),
        ev(300.3, "syscalls:sys_exit_recvmsg", 100, ret=21),
        ev(300.35, "syscalls:sys_exit_recvfrom", 100, ret=1),  # trio's wake-up byte
        ev(300.4, "syscalls:sys_enter_sendto", 100, fd=4, len=21),
        ev(300.45, "syscalls:sys_enter_sendto", 100, tid=105, fd=11, len=1),  # the router's wake-up byte
        exec_(300.5, 555, "/usr/sbin/runc"),  # somebody else's
    ], key=lambda e: e.t)


def test_boot_from_perf_names_each_milestone():
    found = timeline.boot_from_perf(shim_boot_events(), driver_pid=1, monitor_pid=100, monitor_pids={100},
                                    runtime="/usr/sbin/runc", init_path="/sbin/init", since=0, ready=int(301e6))
    assert {k: v / 1e6 for k, v in found.items()} == {
        "exec": 0.5, "interpreter": 1, "create_spawned": 20.1, "runc_init": 22, "create_done": 50,
        "create_reaped": 50.5, "start_spawned": 51.2, "start_done": 56, "init_exec": 55, "ready_relayed": 300.4,
        "ready_read": 300.3, "ready_sent": 300.1}


def test_boot_from_perf_without_the_ready_path():
    events = [e for e in shim_boot_events() if "send" not in e.kind and "recv" not in e.kind]
    found = timeline.boot_from_perf(events, driver_pid=1, monitor_pid=100, monitor_pids={100},
                                    runtime="runc", init_path="/sbin/init", since=0, ready=int(301e6))
    assert "ready_relayed" not in found and "ready_sent" not in found and found["init_exec"] == 55e6


def conmon_stop_events():
    """conmon's stop: the driver (1) runs runtime kill (200) and delete (201); conmon's
    daemon (150) reaps the init (140)."""
    return [
        fork(1000, 1, 200), exec_(1000.5, 200, "/usr/sbin/runc"),
        ev(1004, "signal:signal_generate", 200, sig="37", pid="140"), exit_(1005, 200),
        exec_(1100, 140, "/lib/systemd/systemd-shutdown"),
        ev(1101, "signal:signal_generate", 140, sig="15", pid="141"),
        exit_(1110, 140), ev(1111, "syscalls:sys_exit_wait4", 150, ret=140), exit_(1112, 150),
        fork(1113, 1, 201), exec_(1113.5, 201, "/usr/sbin/runc"), exit_(1120, 201),
    ]


def test_stop_from_perf_conmon():
    events = [fork(0, 1, 149), fork(1, 149, 150), fork(2, 150, 140)] + conmon_stop_events()
    found = timeline.stop_from_perf(events, driver_pid=1, monitor_pid=150, init_pid=140, runtime="runc",
                                    stop_signal=37, since=int(1000e6), until=int(1121e6))
    assert {k: v / 1e6 for k, v in found.items()} == {
        "kill_spawned": 1000.5, "kill_done": 1005, "delete_spawned": 1113.5, "delete_done": 1120,
        "stop_signal_sent": 1004, "shutdown_exec": 1100, "init_exit": 1110, "init_reaped": 1111,
        "monitor_exit": 1112}


def test_stop_from_perf_shim():
    events = [fork(0, 1, 100), fork(1, 100, 140),
              ev(1000.8, "signal:signal_generate", 100, sig="37", pid="140"), exit_(1110, 140),
              ev(1110.5, "syscalls:sys_exit_wait4", 100, ret=140), fork(1111, 100, 202),
              exec_(1111.2, 202, "/usr/sbin/runc"), exit_(1120, 202), exit_(1124, 100)]
    found = timeline.stop_from_perf(events, driver_pid=1, monitor_pid=100, init_pid=140, runtime="runc",
                                    stop_signal=37, since=int(1000e6), until=int(1125e6))
    assert {k: v / 1e6 for k, v in found.items()} == {
        "delete_spawned": 1111.2, "delete_done": 1120, "stop_signal_sent": 1000.8, "init_exit": 1110,
        "init_reaped": 1110.5, "monitor_exit": 1124}
    assert timeline.container_init([fork(0, 1, 100), fork(1, 100, 140), exec_(2, 140, "/sbin/init")], 1,
                                   "/sbin/init") == 140


SHIM_LOG = """\
shim: [10585.865223] debug: runtime create of container bench-x-5938-1 begins
shim: [10585.909016] debug: runtime create done; the container's init is pid 6131
shim: [10585.909057] debug: runtime start begins
shim: [10585.920216] debug: runtime start done
shim: [10585.921091] runtime runc (/usr/sbin/runc) created container bench-x-5938-1 in 44 ms and started it in 11 ms
shim: [10586.036589] debug: trio imported
shim: [10586.037290] debug: supervising: trio runs, every task started
shim: [10586.1] debug: notify: relayed from pid 6131: STATUS=Starting
shim: [10586.329592] debug: notify: relayed from pid 6131: READY=1 STATUS=Ready.
shim: [10586.669380] SIGTERM received: stopping container bench-x-5938-1
shim: [10586.669473] debug: sent SIGRTMIN+3 to the container's init
shim: [10586.670814] debug: notify: relayed from pid 6131: STATUS=Activating special unit halt.target...
shim: [10586.782071] debug: the container's init pid 6131 was reaped
shim: [10586.782241] debug: output drained; runtime delete begins
shim: [10586.806629] debug: runtime delete done
shim: [10586.807833] container bench-x-5938-1 exited 0 after 0.74 s; output drained, container deleted
shim: [10586.816555] debug: leaving with exit status 0
shim: a line without a time
not the shim's
"""


def test_shim_log_and_its_milestones():
    lines = timeline.parse_shim_log(SHIM_LOG)
    assert lines[0] == (10585865223000, "runtime create of container bench-x-5938-1 begins")
    assert lines[7] == (10586100000000, "notify: relayed from pid 6131: STATUS=Starting")
    assert len(lines) == 17
    found = {k: v / 1e9 for k, v in timeline.shim_milestones(lines).items()}
    assert found == pytest.approx({
        "create_spawned": 10585.865223, "create_reaped": 10585.909016, "start_spawned": 10585.909057,
        "start_reaped": 10585.920216, "trio_imported": 10586.036589, "supervising": 10586.037290,
        "ready_logged": 10586.329592, "stop_taken": 10586.669380, "stop_signal_logged": 10586.669473,
        "init_reaped_logged": 10586.782071, "delete_logged": 10586.782241, "deleted_logged": 10586.806629,
        "leaving": 10586.816555}, abs=1e-7)


def test_systemd_show():
    text = ("UserspaceTimestampMonotonic=10761315168\nFinishTimestampMonotonic=10761691779\n"
            "SecurityFinishTimestampMonotonic=0\nGeneratorsFinishTimestampMonotonic=10761385994\n"
            "UnitsLoadFinishTimestampMonotonic=\nOther=5\n")
    assert timeline.parse_systemd_show(text) == {
        "systemd_userspace": 10761315168000, "systemd_finish": 10761691779000,
        "systemd_generators": 10761385994000}


def test_journal():
    entries = [
        {"__MONOTONIC_TIMESTAMP": "100", "_PID": "20", "MESSAGE": "Journal started"},
        {"__MONOTONIC_TIMESTAMP": "101", "_PID": "1", "MESSAGE": [104, 105]},  # binary: not text
        {"__MONOTONIC_TIMESTAMP": "102", "_PID": "1", "MESSAGE": "Starting foo..."},
        {"__MONOTONIC_TIMESTAMP": "103", "_PID": "33", "MESSAGE": "Startup finished in 5ms."},  # not PID 1's
        {"__MONOTONIC_TIMESTAMP": "104", "_PID": "1", "MESSAGE": "Startup finished in 438ms."},
        {"__MONOTONIC_TIMESTAMP": "105", "_PID": "1", "MESSAGE": "Startup finished in 1.2s."},
        {"_PID": "1", "MESSAGE": "no time"},
    ]
    text = "\n".join(json.dumps(e) for e in entries) + "\nnot json\n"
    assert timeline.parse_journal(text) == {"journal_started": 100_000, "journal_pid1": 102_000,
                                            "journal_finished": 104_000}


def test_relative_phases_medians_and_the_table():
    rounds = [timeline.relative_ms({"create_spawned": 10_000_000, "ready": 300_000_000}, 0),
              timeline.relative_ms({"create_spawned": 14_000_000}, 0),
              timeline.relative_ms({"create_spawned": 12_000_000, "ready": 310_000_000}, 0)]
    assert rounds[0] == {"create_spawned": 10.0, "ready": 300.0, "zero": 0.0}
    phases = (("before create", "zero", "create_spawned"), ("to ready", "create_spawned", "ready"))
    assert timeline.phase_durations(rounds[1], phases) == {"before create": 14.0}
    backwards = timeline.relative_ms({"create_spawned": 10_000_000, "ready": 9_000_000}, 0)
    assert timeline.phase_durations(backwards, phases) == {"before create": 10.0}
    shim = timeline.medians(rounds)
    assert shim == {"create_spawned": 12.0, "ready": 305.0, "zero": 0.0}
    conmon = {"create_spawned": 2.0, "ready": 290.0}
    table = timeline.side_by_side("milestone", (("create_spawned", "create spawned"), ("nothing", "never"),
                                                ("ready", "READY=1")), {"shim": shim, "conmon": conmon})
    assert table.splitlines() == [
        "| milestone | shim | conmon | shim - conmon |",
        "|---|---:|---:|---:|",
        "| create spawned | 12.0 | 2.0 | +10.0 |",
        "| READY=1 | 305.0 | 290.0 | +15.0 |",
    ]
    one_sided = timeline.side_by_side("m", (("ready", "READY=1"),), {"shim": {"ready": 1.0}, "conmon": {}})
    assert one_sided.splitlines()[-1] == "| READY=1 | 1.0 | - |  |"
