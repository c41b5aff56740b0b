"""conmon's command line, as podman and CRI-O pass it (pure)."""

import pytest
from hypothesis import given, strategies as st

from shim.conmon.options import (CONMON_OPTIONS, MonitorError, check_options, parse_conmon_options,
                                 preserve_fds_of, version_text)
from shim.errors import ShimError, UsageError
from shim.logs.drivers import LogDrivers

CID = "0123456789abcdef0123456789abcdef"

# podman 4.3.1's create argv (libpod/oci_conmon_common.go), root, cgroupfs, k8s-file.
PODMAN_ARGV = [
    "--api-version", "1", "-c", CID, "-u", CID, "-r", "/usr/bin/runc", "-b", "/b/userdata",
    "-p", "/r/userdata/pidfile", "-n", "web", "--exit-dir", "/run/libpod/exits", "--full-attach",
    "-l", "k8s-file:/b/userdata/ctr.log", "--log-level", "warning",
    "--runtime-arg", "--log-format=json", "--runtime-arg", "--log", "--runtime-arg=/r/userdata/oci-log",
    "--conmon-pidfile", "/r/userdata/conmon.pid", "--exit-command", "/usr/bin/podman",
    "--exit-command-arg", "--root", "--exit-command-arg", "/var/lib/containers/storage",
    "--exit-command-arg", "--network-config-dir", "--exit-command-arg", "",
    "--exit-command-arg", "container", "--exit-command-arg", "cleanup", "--exit-command-arg", CID,
    "--runtime-opt", "--preserve-fds", "--runtime-opt", "2",
]


def check(argv, cwd="/cwd"):
    return check_options(parse_conmon_options(argv), cwd)


def test_podmans_create_argv():
    o = check(PODMAN_ARGV)
    assert o.api_version and o.sync_key == "data"
    assert (o.cid, o.cuuid, o.runtime, o.bundle, o.name) == (CID, CID, "/usr/bin/runc", "/b/userdata", "web")
    assert o.container_pidfile == "/r/userdata/pidfile" and o.conmon_pidfile == "/r/userdata/conmon.pid"
    assert o.log_drivers == LogDrivers(k8s_file="/b/userdata/ctr.log")
    assert o.runtime_args == ["--log-format=json", "--log", "/r/userdata/oci-log"]
    assert o.exit_command_args == ["--root", "/var/lib/containers/storage", "--network-config-dir", "",
                                   "container", "cleanup", CID]
    assert o.runtime_opts == ["--preserve-fds", "2"] and o.preserved_fds == 2
    assert o.full_attach and o.log_level == "warning" and not o.exec and not o.sync


def test_api_version_takes_no_value_and_positionals_are_ignored():
    o = check(["--api-version", "1", "-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "stray"])
    assert o.api_version
    with pytest.raises(UsageError, match="takes no value"):
        parse_conmon_options(["--api-version=1"])


def test_legacy_keys_without_api_version():
    assert check(["-c", CID, "-u", CID, "-r", "/rt", "-l", "none"]).sync_key == "pid"
    legacy_exec = check(["-c", CID, "-r", "/rt", "-l", "none", "-e", "--exec-process-spec", "/s"])
    assert legacy_exec.sync_key == "exit_code" and legacy_exec.bundle is None  # exec: no default bundle


def test_defaults_like_conmon():
    o = check(["--api-version", "-c", CID, "-u", CID, "-r", "/rt", "-l", "/logs/x"])
    assert o.bundle == "/cwd"
    assert o.container_pidfile == f"/cwd/pidfile-{CID}"
    assert o.socket_dir_path == "/var/run/crio" and o.log_max_files == 1 and o.timeout == 0
    assert o.log_drivers == LogDrivers(k8s_file="/logs/x")


@pytest.mark.parametrize("argv, words", [
    ([], "Container ID not provided"),
    (["-c", CID], "Container UUID not provided"),
    (["-c", CID, "-u", CID], "Runtime path not provided"),
    (["-c", CID, "-u", CID, "-r", "/rt"], "Log driver not provided"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "--exec-attach"], "Attach can only be specified with exec"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "-e", "--exec-attach", "--exec-process-spec", "/s"],
     "non-legacy exec"),
    (["--api-version", "-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "-e"], "Exec process spec"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "-e", "--exec-process-spec", "/s", "--restore", "/x"],
     "'exec' and 'restore'"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "--exit-delay", "-1"], "greater than or equal to 0"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "--log-level", "loud"], "No such log level"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "k8s-file:/x", "--log-tag", "t"], "doesn't support --log-tag"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "k8s-file:"], "requires a filename"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "syslog:/x"], "No such log driver syslog"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "--timeout", "ten"], "Cannot parse integer value"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "--exit-command-arg", "x"], "needs --exit-command"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "--runtime-opt", "--preserve-fds", "--runtime-opt", "x"],
     "Cannot parse integer value"),
    (["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "--seccomp-notify-socket", "/s"], "not supported"),
])
def test_bad_command_lines_name_the_problem(argv, words):
    with pytest.raises(ShimError, match=words):
        check(argv)


@pytest.mark.parametrize("word", ["--bogus", "-Z", "--cid"])
def test_unknown_or_incomplete_flags(word):
    with pytest.raises(UsageError):
        parse_conmon_options([word])


@pytest.mark.parametrize("specs, drivers", [
    (["k8s-file:/a"], LogDrivers(k8s_file="/a")),
    (["/a"], LogDrivers(k8s_file="/a")),
    ([":/a"], LogDrivers(k8s_file="/a")),
    (["journald"], LogDrivers(journald=True)),
    (["journald:ignored"], LogDrivers(journald=True)),
    (["none"], LogDrivers()), (["off"], LogDrivers()), (["null"], LogDrivers()),
    (["passthrough"], LogDrivers(passthrough=True)),
    (["k8s-file:/a", "journald", "none"], LogDrivers(k8s_file="/a", journald=True)),
])
def test_log_driver_specs(specs, drivers):
    assert check(["-c", CID, "-u", CID, "-r", "/rt", *sum((["-l", s] for s in specs), [])]).log_drivers == drivers


def test_every_conmon_216_option_is_known():
    known = {o.long for o in CONMON_OPTIONS}
    conmon_216 = {"api-version", "bundle", "cid", "conmon-pidfile", "container-pidfile", "cuuid", "exec",
                  "exec-attach", "exec-process-spec", "exit-command", "exit-command-arg", "exit-delay", "exit-dir",
                  "leave-stdin-open", "log-level", "log-path", "log-size-max", "log-global-size-max", "log-tag",
                  "name", "no-new-keyring", "no-pivot", "no-sync-log", "persist-dir", "pidfile", "replace-listen-pid",
                  "restore", "restore-arg", "runtime", "runtime-arg", "runtime-opt", "sdnotify-socket",
                  "socket-dir-path", "stdin", "sync", "syslog", "systemd-cgroup", "terminal", "timeout", "version",
                  "full-attach", "seccomp-notify-socket", "seccomp-notify-plugins"}
    assert conmon_216 <= known
    shorts = {o.short for o in CONMON_OPTIONS if o.short}
    assert {"b", "c", "P", "p", "u", "e", "l", "n", "0", "r", "i", "s", "t", "T"} <= shorts


def test_version_line_matches_podmans_probe():
    import re

    # podman 4.3.1 (containers/common pkg/config/default.go): stdout, first match.
    probe = re.compile(r"^(version:|conmon version)? (?P<Major>\d+).(?P<Minor>\d+).(?P<Patch>\d+)")
    match = probe.match(version_text("0.1.0"))
    assert match and (int(match["Major"]), int(match["Minor"]), int(match["Patch"])) >= (2, 0, 1)
    assert version_text("0.1.0").split()[2] == "2.1.6"  # CRI-O reads the third word


@given(st.lists(st.sampled_from(["--preserve-fds", "3", "--preserve-fds=4", "--tcp-established", "x"]), max_size=6))
def test_preserve_fds_is_the_last_one_given(words):
    try:
        n = preserve_fds_of(words)
    except ShimError:
        return
    assert n >= 0


def test_bundle_and_paths_are_absolute():
    o = check(["-c", CID, "-u", CID, "-r", "/rt", "-l", "none", "-b", "rel", "-p", "p", "-P", "../P"], cwd="/a/b")
    assert (o.bundle, o.container_pidfile, o.conmon_pidfile) == ("/a/b/rel", "/a/b/p", "/a/P")


def test_monitor_errors_exit_1():
    with pytest.raises(MonitorError) as info:
        check([])
    assert info.value.exit_code == 1


def test_the_sh_front_answers_the_version_probe_like_the_monitor():
    import os

    from shim import __version__

    script = os.path.join(os.path.dirname(__file__), "..", "..", "shim", "cli", "scripts", "shim-conmon")
    with open(script) as f:
        line = next(l for l in f if l.strip().startswith("printf"))
    printed = line.strip().split("'")[1].encode().decode("unicode_escape")
    assert printed == version_text(__version__)
