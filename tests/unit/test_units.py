"""``shim generate systemd``: quoting, socket addresses, names, flags and the unit text (pure)."""

import signal

import pytest
from hypothesis import given, strategies as st

from shim.errors import UsageError
from shim.units.listen import listen_stream
from shim.units.options import generate_help, parse_generate, run_argv, service_spec, unit_name
from shim.units.quoting import check_one_line, exec_line, exec_word, literal, path_list_entry
from shim.units.render import STOP_MARGIN_SECONDS, render_service, render_socket, stop_timeout_sec

PYTHON = ["/opt/venv/bin/python", "/opt/venv/bin/shim"]


def systemd_words(line: str) -> list[str]:
    """A reference reader of what exec_line writes, after systemd.service(5) "Command
    lines": words split on spaces, double quotes group, backslash escapes the next
    character inside them, \\; is a literal ';', then %% -> % and $$ -> $."""
    words, i = [], 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        word = []
        if line[i] == '"':
            i += 1
            while line[i] != '"':
                if line[i] == "\\":
                    i += 1
                word.append(line[i])
                i += 1
            i += 1
        elif line.startswith("\\;", i):
            word.append(";")
            i += 2
        else:
            while i < len(line) and line[i] != " ":
                assert line[i] not in '"\\'
                word.append(line[i])
                i += 1
        text = "".join(word)
        assert "%" not in text.replace("%%", ""), "a lone % would be a specifier"
        assert "$" not in text.replace("$$", ""), "a lone $ would expand a variable"
        words.append(text.replace("%%", "%").replace("$$", "$"))
    return words


@pytest.mark.parametrize("word, written", [
    ("/usr/bin/python3", "/usr/bin/python3"),
    ("--stop-signal", "--stop-signal"),
    ("SIGRTMIN+3", "SIGRTMIN+3"),
    ("a b", '"a b"'),
    ("100%", "100%%"),
    ("$HOME", '"$$HOME"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    (";", "\\;"),
    ("", '""'),
    ("naïve", '"naïve"'),
    ("50%/x", "50%%/x"),
    ("it's", '"it\'s"'),
])
def test_exec_words(word, written):
    assert exec_word(word) == written
    assert systemd_words(written) == [word]


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=0x20, exclude_characters="\x7f")), min_size=1))
def test_any_printable_command_line_reads_back_as_written(argv):
    assert systemd_words(exec_line(argv)) == argv


@pytest.mark.parametrize("value", ["a\nb", "tab\there", "nul\0", "esc\x1b[0m", "del\x7f"])
def test_control_characters_are_refused(value):
    with pytest.raises(UsageError, match="control characters"):
        check_one_line(value, "--name")
    with pytest.raises(UsageError):
        parse_generate(["-b", value, "c1"], "/srv")


def test_literal_values():
    assert literal("50%") == "50%%" and literal("$x") == "$x"
    assert path_list_entry("/srv/web") == "/srv/web"
    assert path_list_entry("/srv/my web/%") == '"/srv/my web/%%"'


@pytest.mark.parametrize("address, value", [
    ("8080", "8080"), ("1", "1"), ("65535", "65535"),
    ("127.0.0.1:8080", "127.0.0.1:8080"), ("0.0.0.0:80", "0.0.0.0:80"),
    ("[::1]:8080", "[::1]:8080"), ("[fe80::1%2]:80", "[fe80::1%2]:80"),
    ("/run/web.sock", "/run/web.sock"), ("/run/50%.sock", "/run/50%%.sock"), ("@web", "@web"),
])
def test_socket_addresses(address, value):
    assert listen_stream(address) == value


@pytest.mark.parametrize("address, complaint", [
    ("0", "port must be"), ("65536", "port must be"), ("http", "not one of"), ("", "not one of"),
    ("localhost:80", "not an IPv4 address"), ("::1:80", "not an IPv4 address"), ("[::x]:80", "not an IPv6"),
    ("1.2.3.4:", "port must be"), ("1.2.3.4:x", "port must be"), ("1.2.3.4:²", "port must be"), ("²", "not one of"),
    ("@", "needs a name"), ("/" + "x" * 107, "longer than"), ("run/web.sock", "not one of"),
    ("/run/a\nb", "control characters"),
])
def test_bad_socket_addresses(address, complaint):
    with pytest.raises(UsageError, match=complaint):
        listen_stream(address)


def test_unit_names():
    assert unit_name("web") == "web" and unit_name("web.service") == "web"
    assert unit_name("my-app_1.2:x") == "my-app_1.2:x"
    for bad in ("", ".service", "web@1", "a b", "x/y", "n" * 248):
        with pytest.raises(UsageError, match="--name"):
            unit_name(bad)
    assert unit_name("n" * 247) == "n" * 247


def test_stop_timeout_sec():
    assert stop_timeout_sec(10, False) == 10 + STOP_MARGIN_SECONDS
    assert stop_timeout_sec(10, True) == 20 + STOP_MARGIN_SECONDS
    assert stop_timeout_sec(0.2, False) == 11 and stop_timeout_sec(0, False) == STOP_MARGIN_SECONDS


def test_help_explains_every_line_of_the_unit():
    text = generate_help()
    request = parse_generate(["-b", "/srv/web", "--socket", "80", "c1"], "/")
    unit = render_service(service_spec(request, interpreter=PYTHON, runtime_path="/usr/bin/crun",
                                       systemd_payload=False, stop_signal=signal.SIGTERM))
    settings = {line.split("=", 1)[0] for line in unit.splitlines() if "=" in line and not line.startswith("#")}
    for setting in settings - {"Description"}:
        assert f"{setting}=" in text, setting
    for flag in ("--socket", "--files", "--name", "--bundle", "--stop-timeout", "--sdnotify", "--systemd"):
        assert flag in text


def test_parse_defaults_and_normalisation():
    request = parse_generate(["c1"], "/srv/web")
    assert request.container_id == "c1" and request.name == "shim-c1"
    assert request.listen == [] and request.files is None
    assert request.run_options.bundle == "/srv/web"
    request = parse_generate(["-b", "../b/./x/", "c1", "-n", "web.service", "--files", "out"], "/srv/a")
    assert request.run_options.bundle == "/srv/b/x" and request.name == "web" and request.files == "out"
    assert parse_generate(["--help"], "/") is None and parse_generate(["c1", "-h"], "/") is None


@pytest.mark.parametrize("argv, complaint", [
    ([], "needs exactly one container ID"),
    (["a", "b"], "takes one container ID, got 2"),
    (["--bad", "c1"], "unknown flag --bad"),
    (["bad/id"], "invalid container ID"),
    (["--sdnotify", "loud", "c1"], "--sdnotify must be one of"),
    (["--systemd", "maybe", "c1"], "--systemd must be one of"),
    (["--stop-signal", "NOPE", "c1"], "NOPE"),
    (["--stop-timeout", "-1", "c1"], "--stop-timeout"),
    (["--log-level", "chatty", "c1"], "--log-level"),
    (["--socket", "nowhere", "c1"], "--socket nowhere"),
    (["--name", "a@b", "c1"], "--name"),
    (["--pid-file", "/x", "c1"], "unknown flag --pid-file"),
])
def test_mistakes(argv, complaint):
    with pytest.raises(UsageError, match=complaint):
        parse_generate(argv, "/srv")


def test_run_argv_carries_flags_in_a_fixed_order():
    request = parse_generate([
        "c1", "--log-level", "info", "--systemd=always", "--sdnotify", "container", "--stop-timeout", "2.5",
        "--stop-signal", "RTMIN+3", "--state-dir", "st", "--runtime-arg", "--debug", "--runtime-arg=--root=/r",
        "-b", "/b"], "/srv")
    assert run_argv(request.run_options, "/usr/sbin/runc") == [
        "run", "-b", "/b", "-r", "/usr/sbin/runc", "--runtime-arg=--debug", "--runtime-arg=--root=/r",
        "--state-dir", "/srv/st", "--stop-signal", "SIGRTMIN+3", "--stop-timeout", "2.5",
        "--sdnotify", "container", "--systemd", "always", "--log-level", "info", "c1"]
    request = parse_generate(["c1", "--sdnotify=auto", "--systemd=true", "--log-level=warning"], "/b")
    assert run_argv(request.run_options, "/usr/bin/crun") == [
        "run", "-b", "/b", "-r", "/usr/bin/crun", "--stop-timeout", "10", "c1"]


def test_the_unit_runs_what_shim_run_accepts():
    """ExecStart's arguments, read back as systemd would, parse as the same run."""
    from shim.cli.run_options import parse_run_options

    request = parse_generate(["-b", "/srv/my web", "--stop-signal", "2", "--runtime-arg", "$x;%", "c1"], "/")
    spec = service_spec(request, interpreter=PYTHON, runtime_path="/usr/sbin/runc", systemd_payload=False,
                        stop_signal=signal.SIGINT)
    exec_start = next(l for l in render_service(spec).splitlines() if l.startswith("ExecStart="))
    words = systemd_words(exec_start[len("ExecStart="):])
    assert words[:2] == PYTHON and words[2] == "run"
    again = parse_run_options(words[3:], "/elsewhere")
    assert (again.bundle, again.runtime, again.runtime_args, again.stop_signal, again.container_id) == (
        "/srv/my web", "/usr/sbin/runc", ["$x;%"], signal.SIGINT, "c1")


def settings_of(text: str) -> dict[str, list[str]]:
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif line and not line.startswith("#"):
            current.append(line)
    return sections


def test_service_unit():
    request = parse_generate(["-b", "/srv/web", "web"], "/")
    text = render_service(service_spec(request, interpreter=PYTHON, runtime_path="/usr/sbin/runc",
                                       systemd_payload=False, stop_signal=signal.SIGTERM))
    assert text.startswith("# shim-web.service: the container web")
    assert "# Generated by shim 0.1.0: shim generate systemd -b /srv/web web\n" in text
    assert settings_of(text) == {
        "Unit": ["Description=shim container web", "RequiresMountsFor=/srv/web"],
        "Service": [
            "Type=notify", "NotifyAccess=main",
            "ExecStart=/opt/venv/bin/python /opt/venv/bin/shim run -b /srv/web -r /usr/sbin/runc --stop-timeout 10 web",
            "KillMode=mixed", "Delegate=yes", f"TimeoutStopSec={10 + STOP_MARGIN_SECONDS:.0f}",
            "SuccessExitStatus=143", "Restart=on-failure", "SyslogIdentifier=shim-web"],
        "Install": ["WantedBy=default.target"],
    }


def test_systemd_payload_and_sdnotify_ignore():
    request = parse_generate(["-b", "/srv/os", "--stop-timeout", "5", "os"], "/")
    text = render_service(service_spec(request, interpreter=PYTHON, runtime_path="/usr/bin/crun",
                                       systemd_payload=True, stop_signal=signal.SIGRTMIN + 3))
    service = settings_of(text)["Service"]
    assert f"TimeoutStopSec={10 + STOP_MARGIN_SECONDS:.0f}" in service
    assert f"SuccessExitStatus={128 + signal.SIGRTMIN + 3}" in service
    request = parse_generate(["-b", "/srv/web", "--sdnotify=ignore", "web"], "/")
    service = settings_of(render_service(service_spec(request, interpreter=PYTHON, runtime_path="/usr/bin/crun",
                                                      systemd_payload=False, stop_signal=signal.SIGTERM)))["Service"]
    assert service[0] == "Type=exec" and not any(s.startswith("NotifyAccess=") for s in service)
    assert "--sdnotify ignore" in service[1]


def test_socket_activated_service_and_its_socket():
    request = parse_generate(["-b", "/srv/web", "-n", "web", "--socket", "8080", "--socket", "/run/web.sock", "c1"], "/")
    spec = service_spec(request, interpreter=PYTHON, runtime_path="/usr/sbin/runc", systemd_payload=False,
                        stop_signal=signal.SIGTERM)
    service = settings_of(render_service(spec))
    assert service["Unit"][-2:] == ["Requires=web.socket", "After=web.socket"]
    assert service["Install"] == ["Also=web.socket"]
    socket = render_socket(spec)
    assert socket.startswith("# web.socket: the container c1")
    assert settings_of(socket) == {
        "Unit": ["Description=sockets of shim container c1"],
        "Socket": ["ListenStream=8080", "ListenStream=/run/web.sock"],
        "Install": ["WantedBy=sockets.target"],
    }
