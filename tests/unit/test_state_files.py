"""The state directory claim and atomic writes, on a real file system."""

import os
import stat
import subprocess
import sys

import pytest

from shim.errors import ShimError
from shim.state.files import write_atomic
from shim.state.statedir import StateDir, default_state_root


def test_write_atomic_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "exit"
    write_atomic(str(path), b"137")
    write_atomic(str(path), b"0")
    assert path.read_bytes() == b"0"
    assert os.listdir(tmp_path) == ["exit"]


def test_claim_creates_0700_and_release_removes(tmp_path):
    state = StateDir.claim(str(tmp_path / "root"), "c1")
    assert stat.S_IMODE(os.stat(state.path).st_mode) == 0o700
    open(state.file("x"), "w").close()
    os.mkdir(state.file("notify"))
    state.release()
    assert not os.path.exists(state.path)
    state.release()  # idempotent


def test_second_claim_while_held_fails(tmp_path):
    state = StateDir.claim(str(tmp_path), "c1")
    # another process (flock is per open file description, so use a real second process)
    code = (f"import sys; sys.path.insert(0, {os.getcwd()!r});"
            f"from shim.state.statedir import StateDir\n"
            f"try:\n StateDir.claim({str(tmp_path)!r}, 'c1')\nexcept Exception as e:\n print(e); sys.exit(3)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 3
    assert "container ID c1 is already in use by another shim" in proc.stdout
    state.release()


def test_stale_directory_is_reclaimed(tmp_path):
    os.makedirs(tmp_path / "c1" / "notify")
    (tmp_path / "c1" / "config.json").write_text("{}")
    state = StateDir.claim(str(tmp_path), "c1")
    assert sorted(os.listdir(state.path)) == ["lock"]
    state.release()


def test_default_roots():
    assert default_state_root(0, {}) == "/run/shim"
    assert default_state_root(1000, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == "/run/user/1000/shim"
    with pytest.raises(ShimError):
        default_state_root(1000, {})


def test_reclaim_is_reported():
    import tempfile

    root = tempfile.mkdtemp()
    fresh = StateDir.claim(root, "c1")
    assert not fresh.reclaimed
    fresh._lock_fd and os.close(fresh._lock_fd)  # the owner dies without releasing
    stale = StateDir.claim(root, "c1")
    assert stale.reclaimed
    stale.release()
