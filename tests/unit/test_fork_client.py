"""The fork client's pure parts."""

from types import SimpleNamespace

from shim.conmon.fork_client import interpreter_flags


def flags(isolated=0, no_site=0, optimize=0):
    return SimpleNamespace(isolated=isolated, no_site=no_site, optimize=optimize)


def test_the_server_gets_the_clients_interpreter_options():
    assert interpreter_flags(flags(1, 1, 2)) == ["-I", "-S", "-OO"]
    assert interpreter_flags(flags(1, 1, 1)) == ["-I", "-S", "-O"]
    assert interpreter_flags(flags()) == []
    assert interpreter_flags(flags(no_site=1)) == ["-S"]
