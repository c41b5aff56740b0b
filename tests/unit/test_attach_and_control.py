"""Attach packets, control-fifo messages, OOM counters and journal entries (pure)."""

import pytest
from hypothesis import given, strategies as st

from shim.logs.journal_protocol import encode_entry, encode_field, syslog_line, valid_key
from shim.process.oom import memory_cgroup_of, oom_kills
from shim.stdio.attach import PACKET_PAYLOAD, packets, short_path_dir
from shim.stdio.control import LineBuffer, Malformed, ReopenLogs, Resize, parse_ctl_line, parse_winsz_line
from shim.stdio.output import STDERR, STDOUT


@given(st.binary(max_size=40000), st.sampled_from([STDOUT, STDERR]))
def test_packets_fit_podmans_buffer_and_carry_every_byte(data, stream):
    out = packets(stream, data)
    assert all(len(p) <= PACKET_PAYLOAD + 1 and p[0] == stream for p in out)
    assert b"".join(p[1:] for p in out) == data
    assert len(out) == -(-len(data) // PACKET_PAYLOAD)


def test_short_attach_paths_avoid_conmons_corner_case():
    assert short_path_dir("/var/run/crio/", "abc") == "/var/run/crio/abc"
    long_dir = "/d" * 40
    cuuid = "x" * (107 - len(long_dir) - 1)
    assert len(short_path_dir(long_dir, cuuid)) == 106


@pytest.mark.parametrize("line, message", [
    (b"1 24 80", Resize(24, 80)),
    (b"2 0 0", ReopenLogs()),
    (b"1 24", Malformed(b"1 24")),
    (b"3 1 1", Malformed(b"3 1 1")),
    (b"1 -1 80", Malformed(b"1 -1 80")),
    (b"x y z", Malformed(b"x y z")),
])
def test_ctl_lines(line, message):
    assert parse_ctl_line(line) == message


def test_winsz_lines():
    assert parse_winsz_line(b"50 132") == Resize(50, 132)
    assert parse_winsz_line(b"50") == Malformed(b"50")


def test_line_buffer_splits_and_bounds():
    buffer = LineBuffer()
    assert buffer.feed(b"1 2 3\n1 4") == [b"1 2 3"]
    assert buffer.feed(b" 5\n") == [b"1 4 5"]
    assert buffer.feed(b"x" * 300) == [b"x" * 300]  # no newline in sight: given up, reported


@given(st.binary(max_size=300))
def test_line_buffer_never_raises(data):
    for line in LineBuffer().feed(data):
        parse_ctl_line(line)
        parse_winsz_line(line)


V1 = "12:pids:/libpod_parent/libpod-x\n4:memory:/libpod_parent/libpod-x\n0::/\n"
V2 = "0::/system.slice/libpod-x.scope\n"


def test_memory_cgroup_on_v1_and_v2():
    assert memory_cgroup_of(V1) == "/sys/fs/cgroup/memory/libpod_parent/libpod-x"
    assert memory_cgroup_of(V2) == "/sys/fs/cgroup/system.slice/libpod-x.scope"
    assert memory_cgroup_of("4:memory:/\n") == "/sys/fs/cgroup/memory"
    assert memory_cgroup_of("") is None


def test_oom_kill_counters():
    assert oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n") == 3  # v1 memory.oom_control
    assert oom_kills("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n") == 1  # v2 memory.events
    assert oom_kills("under_oom 0\n") is None  # a kernel without the counter


def test_journal_fields():
    assert encode_field("MESSAGE", b"hi") == b"MESSAGE=hi\n"
    assert encode_field("MESSAGE", b"a\nb") == b"MESSAGE\n" + (3).to_bytes(8, "little") + b"a\nb\n"
    assert encode_entry([("A", b"1"), ("B", b"2")]) == b"A=1\nB=2\n"
    with pytest.raises(ValueError):
        encode_entry([("_PID", b"1")])  # trusted fields are the journal's own
    assert not valid_key("lower") and valid_key("CONTAINER_ID_FULL")


@given(st.binary(max_size=200))
def test_every_value_round_trips_through_the_binary_form(value):
    encoded = encode_field("MESSAGE", value)
    if b"\n" in value:
        size = int.from_bytes(encoded[8:16], "little")
        assert encoded[16:16 + size] == value and encoded.endswith(b"\n")
    else:
        assert encoded == b"MESSAGE=" + value + b"\n"


def test_syslog_line():
    assert syslog_line(3, "shim-conmon", 42, "boom") == b"<27>shim-conmon[42]: boom"


async def test_two_attach_clients_feeding_a_full_stdin_both_wait():
    """Each attach client's input is written by a task of its own: when the container does
    not read its stdin, both wait for room (trio lets one task at a time wait on an fd),
    and every byte arrives, each client's in order."""
    import os

    import trio

    from shim.stdio.attach import StdinPipe

    read_end, write_end = os.pipe()
    stdin = StdinPipe(write_end, close_on_client_eof=False)
    chunk = 256 * 1024  # more than a pipe holds: both writers must wait
    got = bytearray()

    async def read_slowly() -> None:
        os.set_blocking(read_end, False)
        while len(got) < 2 * chunk:
            await trio.sleep(0.001)
            try:
                got.extend(os.read(read_end, 65536))
            except BlockingIOError:
                pass

    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stdin.write, b"a" * chunk)
                nursery.start_soon(stdin.write, b"b" * chunk)
                nursery.start_soon(read_slowly)
    finally:
        stdin.close()
        os.close(read_end)
    assert sorted(got) == sorted(b"a" * chunk + b"b" * chunk)


async def test_stdin_closed_by_one_client_while_another_waits_to_write():
    """A client's EOF closes the container's stdin (podman attach without
    --leave-stdin-open) while another client's input waits for room: that input is
    dropped, the waiting task ends quietly."""
    import os

    import trio
    import trio.testing

    from shim.stdio.attach import StdinPipe

    read_end, write_end = os.pipe()
    stdin = StdinPipe(write_end, close_on_client_eof=True)
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stdin.write, b"x" * (256 * 1024))
                await trio.testing.wait_all_tasks_blocked()
                stdin.client_finished()
    finally:
        os.close(read_end)
    assert stdin.fd == -1
