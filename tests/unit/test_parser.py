"""The command-line parser: GNU getopt rules without abbreviations."""

import pytest
from hypothesis import given, strategies as st

from shim.cli.parser import Option, format_help, parse
from shim.errors import UsageError

OPTIONS = [
    Option("bundle", "b", metavar="DIR"),
    Option("runtime-arg", metavar="ARG", repeat=True, dest="runtime_args"),
    Option("terminal", "t"),
    Option("stdin", "i"),
    Option("help", "h"),
]


@pytest.mark.parametrize("argv, values, positionals", [
    ([], {}, []),
    (["ID"], {}, ["ID"]),
    (["--bundle", "/b", "ID"], {"bundle": "/b"}, ["ID"]),
    (["--bundle=/b", "ID"], {"bundle": "/b"}, ["ID"]),
    (["-b", "/b", "ID"], {"bundle": "/b"}, ["ID"]),
    (["-b/b", "ID"], {"bundle": "/b"}, ["ID"]),
    (["ID", "-b", "/b"], {"bundle": "/b"}, ["ID"]),
    # a value is taken verbatim, even when it looks like a flag (conmon's callers do this)
    (["--runtime-arg", "--log-format=json", "--runtime-arg", "--debug", "ID"],
     {"runtime_args": ["--log-format=json", "--debug"]}, ["ID"]),
    (["--runtime-arg=--x", "ID"], {"runtime_args": ["--x"]}, ["ID"]),
    (["-b", "-", "ID"], {"bundle": "-"}, ["ID"]),
    (["-it", "ID"], {"terminal": True, "stdin": True}, ["ID"]),
    (["-tb", "/b", "ID"], {"terminal": True, "bundle": "/b"}, ["ID"]),
    (["-tb/b", "ID"], {"terminal": True, "bundle": "/b"}, ["ID"]),
    (["--", "-b", "ID"], {}, ["-b", "ID"]),
    (["-", "ID"], {}, ["-", "ID"]),
    (["-b", "/one", "-b", "/two", "ID"], {"bundle": "/two"}, ["ID"]),
    (["--bundle="], {"bundle": ""}, []),
])
def test_parses_like_getopt(argv, values, positionals):
    assert parse(argv, OPTIONS) == (values, positionals)


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unknown flag --bogus"),
    (["-x"], "unknown flag -x"),
    (["--bund", "/b"], "unknown flag --bund"),  # no abbreviations
    (["--bundle"], "flag --bundle needs a value (DIR)"),
    (["-b"], "flag -b needs a value (DIR)"),
    (["--terminal=yes"], "flag --terminal takes no value"),
])
def test_bad_flags_name_the_word(argv, message):
    with pytest.raises(UsageError) as e:
        parse(argv, OPTIONS)
    assert str(e.value) == message
    assert e.value.exit_code == 125


@given(st.lists(st.text(max_size=12), max_size=8))
def test_any_argv_parses_or_fails_with_a_usage_error(argv):
    try:
        values, positionals = parse(argv, OPTIONS)
    except UsageError as e:
        assert "\n" not in str(e)
    else:
        assert all(isinstance(p, str) for p in positionals)
        assert set(values) <= {o.dest for o in OPTIONS}


def test_help_lists_every_flag():
    text = format_help("shim x", "Does x.", OPTIONS)
    for option in OPTIONS:
        assert f"--{option.long}" in text
    assert "(repeatable)" in text


def test_exception_groups_report_their_first_real_error():
    from shim.cli.app import first_leaf

    inner = ValueError("the real problem")
    group = BaseExceptionGroup("outer", [ExceptionGroup("inner", [inner, KeyError("x")])])
    assert first_leaf(group) is inner
