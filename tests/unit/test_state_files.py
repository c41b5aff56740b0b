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
    os.chmod(tmp_path / "c1", 0o700)
    (tmp_path / "c1" / "lock").write_text("")
    (tmp_path / "c1" / "config.json").write_text("{}")
    state = StateDir.claim(str(tmp_path), "c1")
    assert state.reclaimed
    assert sorted(os.listdir(state.path)) == ["lock"]
    state.release()


@pytest.mark.parametrize("make", ["plain directory", "no lock", "symlink", "file", "wrong mode"])
def test_what_is_not_a_state_directory_is_never_touched(tmp_path, make):
    """--state-dir /srv with the ID 'data' must not empty /srv/data."""
    victim = tmp_path / "data"
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious").write_text("keep me")
    if make == "symlink":
        victim.symlink_to(target)
    elif make == "file":
        victim.write_text("keep me")
    else:
        victim.mkdir(mode=0o755 if make == "wrong mode" else 0o700)
        os.chmod(victim, 0o755 if make == "wrong mode" else 0o700)
        (victim / "precious").write_text("keep me")
        if make == "wrong mode":
            (victim / "lock").write_text("")
    with pytest.raises(ShimError, match="is not a shim state directory"):
        StateDir.claim(str(tmp_path), "data")
    assert (target / "precious").read_text() == "keep me"
    if make != "symlink" and make != "file":
        assert (victim / "precious").read_text() == "keep me"


def test_release_frees_the_id_at_once(tmp_path):
    state = StateDir.claim(str(tmp_path), "c1")
    state.release()
    again = StateDir.claim(str(tmp_path), "c1")  # a restart
    assert not again.reclaimed
    again.release()
    assert os.listdir(tmp_path) == []


def test_default_roots():
    assert default_state_root(0, {}) == "/run/shim"
    assert default_state_root(1000, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == "/run/user/1000/shim"
    with pytest.raises(ShimError):
        default_state_root(1000, {})


def test_reclaim_is_reported(tmp_path):
    fresh = StateDir.claim(str(tmp_path), "c1")
    assert not fresh.reclaimed
    os.close(fresh._lock_fd)  # the owner dies without releasing
    stale = StateDir.claim(str(tmp_path), "c1")
    assert stale.reclaimed
    stale.release()
