"""Reading the kernel's exit records (taskstats) and sorting out whose CPU time is a
monitor's: on records made up here, byte for byte as the kernel lays them out."""

import struct

from bench import taskstats
from bench.attribution import Container, monitor_cpu
from bench.taskstats import Exit

STATS_SIZE = 416  # struct taskstats, version 13


def stats(pid, tgid, ppid, comm, utime, stime, last=False, version=13):
    raw = bytearray(STATS_SIZE)
    struct.pack_into("=H", raw, 0, version)
    raw[taskstats.FLAG_AT] = taskstats.AGROUP if last else 0
    raw[taskstats.COMM.start:taskstats.COMM.start + len(comm)] = comm.encode()
    taskstats.PIDS.pack_into(raw, taskstats.PIDS_AT, pid, ppid)
    taskstats.TIMES.pack_into(raw, taskstats.TIMES_AT, utime, stime)
    taskstats.TGID.pack_into(raw, taskstats.TGID_AT, tgid)
    return bytes(raw)


def datagram(*records, aggregate=None):
    """One TASKSTATS_CMD_NEW message: each thread's AGGR_PID, then the process's AGGR_TGID."""
    payload = b""
    for record in records:
        pid = struct.unpack_from("=I", record, taskstats.PIDS_AT)[0]
        payload += taskstats.attribute(taskstats.TYPE_AGGR_PID, taskstats.attribute(taskstats.TYPE_PID, struct.pack(
            "=I", pid)) + taskstats.attribute(taskstats.TYPE_STATS, record))
    if aggregate:
        payload += taskstats.attribute(taskstats.TYPE_AGGR_TGID, taskstats.attribute(taskstats.TYPE_STATS, aggregate))
    return taskstats.message(99, taskstats.TASKSTATS_CMD_NEW, payload)


def test_a_thread_exit_is_read_back_whole():
    data = datagram(stats(41, 40, 7, "conmon", 3000, 1000, last=True))
    assert taskstats.parse_datagram(data, 5.0) == [Exit(41, 40, 7, "conmon", 4000, True, 5.0)]


def test_a_process_aggregate_is_not_counted_twice():
    thread = stats(40, 40, 7, "shim-conmon-mon", 8000, 0, last=True)
    data = datagram(thread, aggregate=stats(40, 40, 7, "shim-conmon-mon", 12000, 0))
    assert [e.cpu_us for e in taskstats.parse_datagram(data)] == [8000]


def test_before_version_12_a_record_is_its_own_process():
    assert taskstats.parse_stats(stats(41, 0, 7, "x", 1, 1, version=11)).tgid == 41


def test_several_messages_in_one_datagram_and_a_truncated_tail():
    data = datagram(stats(1, 1, 0, "a", 1, 0)) + datagram(stats(2, 2, 0, "b", 2, 0))
    assert [e.comm for e in taskstats.parse_datagram(data)] == ["a", "b"]
    assert [e.comm for e in taskstats.parse_datagram(data + data[:30])] == ["a", "b"]


def test_attributes_round_trip_with_padding():
    packed = taskstats.attribute(3, b"0-1\0") + taskstats.attribute(2, b"abcde")
    assert taskstats.attributes(packed) == [(3, b"0-1\0"), (2, b"abcde")]


# -- whose time is the monitor's --------------------------------------------------------

PODMAN_RUN, PODMAN_STOP, MONITOR, SERVER, CLEANUP = 100, 300, 210, 50, 400
SHIM = frozenset({"shim-conmon", "shim-conmon-mon"})


def e(pid, ppid, comm, cpu, tgid=None, last=True, arrived=1.5):
    return Exit(pid, tgid or pid, ppid, comm, cpu, last, arrived)


def test_conmon_the_daemon_its_first_process_and_the_version_checks_count_and_nothing_it_runs():
    exits = [
        e(101, PODMAN_RUN, "conmon", 1000),  # --version
        e(209, PODMAN_RUN, "conmon", 500),  # the first process, which daemonized
        e(211, MONITOR, "runc", 9000),  # runtime create: not the monitor's
        e(212, MONITOR, "true", 4000),  # the container
        e(CLEANUP, MONITOR, "podman", 30000),  # the exit command: not the monitor's...
        e(401, CLEANUP, "conmon", 700),  # ...but its --version check of the monitor is
        e(301, PODMAN_STOP, "conmon", 800),
        e(102, PODMAN_RUN, "runc", 5000),  # runtime start, podman's own
        e(MONITOR, 1, "conmon", 2000),
        e(777, 555, "conmon", 99999),  # someone else's container
    ]
    container = Container(MONITOR, frozenset({PODMAN_RUN, PODMAN_STOP}), frozenset({"conmon"}), (1.0, 2.0))
    cpu = monitor_cpu(exits, container)
    assert cpu.parts == {"monitor": 2000, "started by the engine": 1000 + 500 + 700 + 800, "fork server": 0}
    assert cpu.cpu_us == 5000 and cpu.complete and not cpu.via_server


def test_every_thread_of_the_monitor_counts_and_completeness_needs_its_last():
    exits = [e(211, 1, "python3", 300, tgid=MONITOR, last=False), e(MONITOR, 1, "python3", 700, last=False)]
    container = Container(MONITOR, frozenset({PODMAN_RUN}), SHIM, (1.0, 2.0))
    assert monitor_cpu(exits, container).cpu_us == 1000
    assert not monitor_cpu(exits, container).complete
    assert monitor_cpu(exits + [e(212, 1, "python3", 0, tgid=MONITOR)], container).complete


def test_the_fork_servers_part_is_its_time_and_its_child_during_the_start():
    exits = [
        e(101, PODMAN_RUN, "shim-conmon-mon", 20000),  # the client
        e(209, SERVER, "python3", 400, arrived=1.5),  # the intermediate child, during this start
        e(150, SERVER, "python3", 400, arrived=0.5),  # another container's, before
        e(MONITOR, 1, "python3", 3000),
    ]
    container = Container(MONITOR, frozenset({PODMAN_RUN}), SHIM, (1.0, 2.0), SERVER, server_cpu_us=600)
    cpu = monitor_cpu(exits, container)
    assert cpu.parts == {"monitor": 3000, "started by the engine": 20000, "fork server": 1000}
    assert cpu.via_server


def test_a_start_the_server_did_not_fork_is_a_fallback():
    exits = [e(101, PODMAN_RUN, "shim-conmon-mon", 20000), e(MONITOR, 1, "shim-conmon-mon", 90000)]
    container = Container(MONITOR, frozenset({PODMAN_RUN}), SHIM, (1.0, 2.0), SERVER)
    assert not monitor_cpu(exits, container).via_server
