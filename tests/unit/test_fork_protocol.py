"""The fork server's pure parts: its protocol (shim.conmon.fork_protocol) and the
interpreter options it inherits from its client."""

from types import SimpleNamespace

from hypothesis import given, strategies as st

from shim.conmon.fork_client import interpreter_flags
from shim.conmon.fork_protocol import (STATUS_FIELDS, ClientRef, ServerFiles, claim_owner, client_argv, client_verdict,
                                       context_differences, environment, fd_flags, scheduling_context, server_path,
                                       split_nul, split_requests, start_time, status_context, status_ids_and_umask)


def flags(isolated=0, no_site=0, optimize=0):
    return SimpleNamespace(isolated=isolated, no_site=no_site, optimize=optimize)


def test_the_server_gets_the_clients_interpreter_options():
    assert interpreter_flags(flags(1, 1, 2)) == ["-I", "-S", "-OO"]
    assert interpreter_flags(flags(1, 1, 1)) == ["-I", "-S", "-O"]
    assert interpreter_flags(flags()) == []
    assert interpreter_flags(flags(no_site=1)) == ["-S"]


def test_requests_are_whole_lines_of_two_numbers():
    clients, rest = split_requests(b"12 345\n7 8\nx y\n-1 2\n0 5\n9 10 11\n13 14")
    assert clients == [ClientRef(12, 345), ClientRef(7, 8)]
    assert rest == b"13 14"  # the next read completes it
    clients, rest = split_requests(rest + b"\n")
    assert clients == [ClientRef(13, 14)] and rest == b""


@given(st.binary(max_size=2000))
def test_any_bytes_in_the_fifo_are_requests_or_dropped(data):
    clients, rest = split_requests(data)
    assert all(c.pid > 0 and c.start >= 0 for c in clients)
    assert len(rest) <= 64  # junk without a newline cannot grow the server's buffer


def test_start_time_is_field_22_whatever_the_name():
    fields = " ".join(str(n) for n in range(3, 30))  # field 3 onwards; field 22 is "22"
    assert start_time(f"42 (shim-conmon) {fields}") == 22
    assert start_time(f"42 (a) b) (c) {fields}") == 22  # a name with spaces and parentheses


def test_status_gives_the_uids_and_the_umask():
    text = "Name:\tbash\nUmask:\t0027\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"
    assert status_ids_and_umask(text) == ([1000, 1000, 1000, 1000], 0o027)
    assert status_ids_and_umask("Name:\tx\n") == ([], None)


def test_environ_and_cmdline():
    assert split_nul(b"/bin/bash\0/x/shim-conmon\0--api-version\0\0") == ["/bin/bash", "/x/shim-conmon",
                                                                          "--api-version", ""]
    assert environment(b"A=1\0B=x=y\0A=2\0junk\0=v\0") == {"A": "1", "B": "x=y"}
    assert client_argv(["/bin/bash", "/x/shim-conmon", "-c", "id"]) == ("/x/shim-conmon", ["-c", "id"])
    assert client_argv(["/usr/bin/python3", "/x/shim-conmon", "-c"]) is None
    assert client_argv(["/bin/bash"]) is None


def test_fd_flags_are_octal():
    assert fd_flags("pos:\t0\nflags:\t02100002\nmnt_id:\t15\n") == 0o2100002


def test_the_clients_verdict():
    assert client_verdict(None) == "direct"
    assert [client_verdict(v) for v in ("off", "absent", "refused", "timeout")] == ["off", "absent", "refused",
                                                                                    "timeout"]
    assert client_verdict("something else") == "direct"


contexts = st.dictionaries(st.sampled_from([*STATUS_FIELDS, "nice", "policy", "mnt namespace", "LSM label"]),
                           st.sampled_from(["0", "1", "4:4026531840", "unconfined"]))


@given(contexts, contexts)
def test_a_client_fits_the_server_only_when_every_inherited_thing_is_the_same(client, server):
    differences = context_differences(client, server)
    assert differences == sorted(differences) and differences == context_differences(server, client)
    assert (differences == []) == (client == server)
    # a kind missing on one side (a namespace the kernel lacks, a process gone) differs too
    assert all(client.get(name) != server.get(name) for name in differences)


STATUS = """Name:\tbash
Umask:\t0022
State:\tS (sleeping)
Uid:\t0\t0\t0\t0
Gid:\t0\t0\t0\t0
Groups:\t
NoNewPrivs:\t0
Seccomp:\t0
Seccomp_filters:\t0
CapInh:\t0000000000000000
CapPrm:\t000001ffffffffff
CapEff:\t000001ffffffffff
CapBnd:\t000001ffffffffff
CapAmb:\t0000000000000000
Cpus_allowed:\t3
Cpus_allowed_list:\t0-1
Mems_allowed_list:\t0
voluntary_ctxt_switches:\t12
"""


def test_the_context_read_from_status_and_stat():
    context = status_context(STATUS)
    assert set(context) == set(STATUS_FIELDS)
    assert context["Uid"] == "0 0 0 0" and context["Groups"] == "" and context["CapBnd"] == "000001ffffffffff"
    assert context["Cpus_allowed_list"] == "0-1"
    with open("/proc/self/status") as f:
        assert set(status_context(f.read())) == set(STATUS_FIELDS)  # all there, on this kernel
    hardened = status_context(STATUS.replace("NoNewPrivs:\t0", "NoNewPrivs:\t1")
                              .replace("CapBnd:\t000001ffffffffff", "CapBnd:\t00000000a80425fb"))
    assert context_differences(hardened, context) == ["CapBnd", "NoNewPrivs"]
    # fields 19 (nice) and 41 (policy); the name in field 2 may hold spaces and parentheses
    fields = [str(n) for n in range(3, 53)]
    fields[19 - 3], fields[41 - 3] = "-5", "3"
    stat = "4242 (a (b) c) " + " ".join(fields)
    assert scheduling_context(stat) == {"nice": "-5", "policy": "3"}


def test_claim_files_name_their_client():
    assert claim_owner("s.12-34.claim", "s") == ClientRef(12, 34)
    assert claim_owner(ServerFiles("/d/s").claim(ClientRef(5, 6)).split("/")[-1], "s") == ClientRef(5, 6)
    for other in ("s.pid", "s.idle", "s.lock", "s.12.claim", "s.a-1.claim", "t.12-34.claim", "s.12-34.claim.tmp"):
        assert claim_owner(other, "s") is None


HOST_IDS = "         0          0 4294967295\n"
ROOTLESS_IDS = "         0       1000          1\n         1     100000      65536\n"  # podman's user namespace


def test_where_the_server_is():
    assert server_path(0, {}, HOST_IDS) == "/run/shim/conmon-fork-server"
    user = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    assert server_path(1000, user, HOST_IDS) == "/run/user/1000/shim/conmon-fork-server"
    # rootless podman's monitor is root in the user's namespace: the user's server
    assert server_path(0, user, ROOTLESS_IDS) == "/run/user/1000/shim/conmon-fork-server"
    assert server_path(0, {}, ROOTLESS_IDS) == "/run/shim/conmon-fork-server"  # root in a container's namespace
    assert server_path(1000, {}, HOST_IDS) is None
    assert server_path(0, {"SHIM_CONMON_FORK_SERVER": "0"}, HOST_IDS) is None
    assert server_path(0, {"SHIM_CONMON_FORK_SERVER": "/tmp/x/s"}, ROOTLESS_IDS) == "/tmp/x/s"
    files = ServerFiles("/tmp/x/s")
    assert (files.idle, files.lock, files.pid) == ("/tmp/x/s.idle", "/tmp/x/s.lock", "/tmp/x/s.pid")
    assert files.claim(ClientRef(12, 34)) == "/tmp/x/s.12-34.claim"
