"""The import budget's trace reading (tests/helpers/import_budget.py), on made-up traces:
it must see a heavy module that slips in."""

import pytest

from tests.helpers.import_budget import HEAVY, loaded_before, module_name

TRACE = """\
100 execve("/venv/bin/python3", ["python3", "-I", "-S", "/venv/bin/shim"], ...) = 0
100 openat(AT_FDCWD, "/usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3
100 openat(AT_FDCWD, "/usr/lib/python3.11/encodings/__pycache__/utf_8.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3
100 openat(AT_FDCWD, "/src/shim/lifecycle/__pycache__/run.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3
100 openat(AT_FDCWD, "/usr/lib/python3.11/__pycache__/nothere.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = -1 ENOENT
{stray}101 execve("/usr/sbin/runc", ["runc", "create"], ...) = 0
101 openat(AT_FDCWD, "/usr/lib/python3.11/__pycache__/enum.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3
"""


def test_names():
    assert module_name("/usr/lib/python3.11/encodings/__pycache__/__init__.cpython-311.pyc") == "encodings"
    assert module_name("/src/shim/lifecycle/__pycache__/run.cpython-311.pyc") == "shim.lifecycle.run"
    assert module_name("/src/shim/__pycache__/__init__.cpython-311.pyc") == "shim"
    # -OO bytecode, as the installed scripts load it
    assert module_name("/src/shim/cli/__pycache__/__init__.cpython-311.opt-2.pyc") == "shim.cli"
    assert module_name("/src/shim/cli/__pycache__/app.cpython-311.opt-2.pyc") == "shim.cli.app"
    assert module_name("/usr/lib/python3.11/encodings/__pycache__/aliases.cpython-311.opt-2.pyc") == "encodings.aliases"
    assert module_name("/usr/lib/python3.11/__pycache__/enum.cpython-311.opt-2.pyc") == "enum"
    assert module_name("/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so") == "_json"
    assert module_name("/venv/lib/python3.11/site-packages/trio/_core/__pycache__/_run.cpython-311.pyc") == \
        "trio._core._run"


def test_only_what_came_before_the_runtime():
    names = loaded_before(TRACE.format(stray=""), "runc")
    assert names == ["encodings", "encodings.utf_8", "shim.lifecycle.run"]  # not enum: after exec


@pytest.mark.parametrize("stray", ["re", "trio", "json", "enum", "socket"])
def test_a_heavy_module_is_seen(stray):
    path = {"trio": "/venv/lib/python3.11/site-packages/trio/__pycache__/__init__.cpython-311.pyc",
            "json": "/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc"}.get(
        stray, f"/usr/lib/python3.11/__pycache__/{stray}.cpython-311.pyc")
    line = f'100 openat(AT_FDCWD, "{path}", O_RDONLY|O_CLOEXEC) = 3\n'
    names = loaded_before(TRACE.format(stray=line), "runc")
    assert stray in names and stray in HEAVY


def test_a_run_that_never_reached_the_runtime_is_an_error():
    with pytest.raises(ValueError):
        loaded_before("100 openat(AT_FDCWD, \"/x/a.pyc\", O_RDONLY) = 3\n", "runc")
