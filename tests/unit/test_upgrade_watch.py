"""The fork server's upgrade watch (shim.conmon.upgrade_watch) on a package of its own."""

import os

from shim.conmon.upgrade_watch import UpgradeWatch


def package(tmp_path):
    for name in ("pkg/__init__.py", "pkg/sub/mod.py", "pkg/__pycache__/mod.cpython-311.pyc"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return tmp_path / "pkg"


def test_a_change_anywhere_in_the_package_is_seen(tmp_path):
    root = package(tmp_path)
    for change in (lambda: os.utime(root / "sub" / "mod.py", ns=(1, 1)),  # a new file's time, as an install sets
                   lambda: (root / "sub" / "new.py").write_text("x = 1\n"),
                   lambda: os.rename(root / "__init__.py", root / "old.py")):
        watch = UpgradeWatch(str(root))
        try:
            assert not watch.changed()
            change()
            assert watch.changed()
        finally:
            watch.close()


def test_bytecode_caches_are_not_changes(tmp_path):
    root = package(tmp_path)
    watch = UpgradeWatch(str(root))
    try:
        (root / "__pycache__" / "mod.cpython-311.pyc").write_text("new bytecode")
        (root / "__pycache__" / "other.cpython-311.pyc").write_text("")
        assert not watch.changed()
    finally:
        watch.close()
