"""A container that tries to reach the host through the shim: through fds or variables
the shim should not pass, through files it plants where the shim writes, through the
notify socket."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.hostile]


def test_a_symlink_planted_at_the_log_path_is_never_followed(shim_runc, tmp_path):
    """The log's directory is mounted into the container (to read its own logs, say):
    the container replaces its log with a symlink to a host file. The next run of the
    same container (a restart) must not append its output to that file."""
    logs, precious = tmp_path / "logs", tmp_path / "precious"
    logs.mkdir()
    precious.write_bytes(b"keep\n")
    log = str(logs / "ctr.log")
    # Once the shim writes its log (it opens it after start), the container swaps it for
    # a symlink; the shim goes on writing to the file it has open.
    plant = (f"echo ready; until grep -q ready /logs/ctr.log; do sleep 0.01; done; "
             f"rm /logs/ctr.log && ln -s {precious} /logs/ctr.log && echo planted")
    bundle = shim_runc.bundle(["/bin/sh", "-c", plant], binds=[(str(logs), "/logs", False)])
    first = shim_runc.run(None, "--log-driver", "k8s-file", "--log-path", log, bundle=bundle)
    assert first.returncode == 0 and os.path.islink(log), first
    second = shim_runc.run(["/bin/sh", "-c", "echo restarted"], "--log-driver", "k8s-file", "--log-path", log)
    assert second.returncode == 125
    assert second.shim_lines == [f"shim: --log-path {log}: cannot open: Too many levels of symbolic links"]
    assert precious.read_bytes() == b"keep\n"
