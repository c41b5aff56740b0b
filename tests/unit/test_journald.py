"""The journald driver's pure parts: whole lines, pieces of long ones, conmon's fields."""

from hypothesis import given, strategies as st

from shim.logs.journald import LineAssembler, fixed_fields

CID = "8960b66229aae3a30628e8099b2094eda080682208d170589cbca6ae8193f977"


def test_lines_keep_their_newline_and_partials_wait():
    lines = LineAssembler()
    assert lines.feed(b"one\ntw") == [(b"one\n", False)]
    assert lines.feed(b"o\nthree") == [(b"two\n", False)]
    assert lines.flush() == [(b"three", True)]  # open at the end: a piece, no newline invented
    assert lines.flush() == []


def test_long_lines_go_out_in_marked_pieces():
    lines = LineAssembler(line_max=4)
    assert lines.feed(b"abcdefghij\n") == [(b"abcd", True), (b"efgh", True), (b"ij\n", False)]
    assert lines.feed(b"0123456") == [(b"0123", True)]
    assert lines.flush() == [(b"456", True)]


@given(st.lists(st.binary(max_size=50), max_size=20), st.integers(min_value=1, max_value=16))
def test_podman_reads_back_every_byte(chunks, line_max):
    """podman: MESSAGE minus one trailing newline, plus a newline unless partial."""
    lines = LineAssembler(line_max=line_max)
    messages = [m for chunk in chunks for m in lines.feed(chunk)] + lines.flush()
    shown = b"".join(m[:-1] + b"\n" if not partial and m.endswith(b"\n") else m for m, partial in messages)
    assert shown == b"".join(chunks)
    assert all(len(m) <= line_max + 1 for m, _ in messages)
    assert all(partial or m.endswith(b"\n") for m, partial in messages)


def test_fields_like_conmon():
    assert dict(fixed_fields(CID, "web", None, [])) == {
        "CONTAINER_ID_FULL": CID.encode(), "CONTAINER_ID": CID[:12].encode(), "CONTAINER_NAME": b"web",
        "SYSLOG_IDENTIFIER": b"web"}
    tagged = dict(fixed_fields(CID, "web", "tag1", ["TEAM=blue"]))
    assert tagged["SYSLOG_IDENTIFIER"] == b"tag1" and tagged["CONTAINER_TAG"] == b"tag1" and tagged["TEAM"] == b"blue"
    assert dict(fixed_fields("short", None, None, []))["SYSLOG_IDENTIFIER"] == b"short"


async def test_both_streams_wait_for_a_full_journal_without_losing_a_line(tmp_path):
    """stdout and stderr are relayed by two tasks into one journal socket: when the journal
    has no room, both wait for it (trio allows one waiter per fd), and every line arrives."""
    import socket

    import trio

    from shim.diagnostics import Diagnostics
    from shim.logs.journald import JournaldLog
    from shim.stdio.output import STDERR, STDOUT

    path = str(tmp_path / "journal.sock")
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(path)
    log = JournaldLog("c" * 64, None, None, [], Diagnostics("error"), path=path)
    lines = 200  # far more than a datagram queue holds: both writers must wait
    received: list[bytes] = []

    async def write(stream: int, word: bytes) -> None:
        for i in range(lines):
            await log.write(stream, b"%s-%d\n" % (word, i))

    async def read_slowly() -> None:
        while len(received) < 2 * lines:
            await trio.sleep(0.001)
            try:
                received.append(journal.recv(65536, socket.MSG_DONTWAIT))
            except BlockingIOError:
                pass

    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write, STDOUT, b"out")
                nursery.start_soon(write, STDERR, b"err")
                nursery.start_soon(read_slowly)
    finally:
        log.close()
        journal.close()
    assert log.lost == 0
    # MESSAGE comes first, in the binary form (it holds a newline): name, length, value
    messages = [entry[16:16 + int.from_bytes(entry[8:16], "little")] for entry in received]
    assert [m for m in messages if m.startswith(b"out")] == [b"out-%d\n" % i for i in range(lines)]
    assert [m for m in messages if m.startswith(b"err")] == [b"err-%d\n" % i for i in range(lines)]
