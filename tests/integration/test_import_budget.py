"""The import budget of ``shim run``: what the installed ``shim`` script loads before it
starts ``runtime create`` (the container waits for every module of it) is exactly this
list. A module that joins the start-up path fails here, not weeks later in a benchmark:
if it must be there, add it below and say why in the commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers.import_budget import HEAVY, loaded_before, sources_read_before

pytestmark = pytest.mark.integration

BUDGET = [
    # the interpreter's own (also in `python -I -S -c pass`)
    "encodings", "encodings.aliases", "encodings.utf_8",
    # the shim command: os for its paths, then the flags and the signal mask
    "shim", "shim.cli", "shim.cli.app", "__future__", "shim.errors", "shim.process", "shim.process.exit_status",
    "shim.signals", "shim.signals.mask", "shim.signals.catalog", "shim.cli.run_options", "shim.container_id",
    "shim.cli.parser", "shim.process.spawn",
    # the run: bundle, plan, runtime, state directory (JSON through _json, prctl through libc and _ctypes)
    "shim.lifecycle", "shim.lifecycle.run", "shim.bundle", "shim.bundle.config", "shim.bundle.json_lite", "_json",
    "shim.diagnostics", "shim.lifecycle.startup", "shim.lifecycle.container", "shim.runtime",
    "shim.runtime.command", "shim.runtime.invoke", "shim.process.reaper", "shim.process.subreaper", "shim.process.libc",
    "shim.state", "shim.state.files", "shim.lifecycle.plan", "shim.bundle.effective", "shim.notify",
    "shim.notify.session", "shim.systemd", "shim.systemd.detect", "shim.runtime.locate",
    "shim.state.statedir", "_ctypes",
]


def test_the_installed_script_loads_only_its_budget_before_create(shim_runc, tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    script = os.path.join(os.path.dirname(sys.executable), "shim")
    runtime = tmp_path / "fake-runtime"
    runtime.write_text("#!/bin/sh\nexit 1\n")  # create fails at once: what counts happened before
    runtime.chmod(0o755)
    bundle = shim_runc.bundle(["true"])
    trace = tmp_path / "trace"
    proc = subprocess.run(["strace", "-f", "-e", "trace=openat,execve", "-o", str(trace), script, "run",
                           "-b", bundle, "-r", str(runtime), "--state-dir", shim_runc.state_dir, shim_runc.new_id()],
                          capture_output=True, timeout=60)
    assert proc.returncode == 125 and b"could not create container" in proc.stderr, proc.stderr
    loaded = loaded_before(trace.read_text(), "fake-runtime")
    assert not HEAVY & set(loaded), f"heavy modules before create: {sorted(HEAVY & set(loaded))}"
    assert [name for name in loaded if name not in BUDGET] == [], "modules beyond the budget"
    # all of it from bytecode (.ci/install compiles the -OO bytecode the script's interpreter loads)
    assert sources_read_before(trace.read_text(), "fake-runtime") == []


# What the notify relay loads once the container runs, before trio: a systemd payload boots
# then, on the same CPUs, and READY=1 waits for it.
_NOTIFY_AFTER_START = r"""
import os, sys
import _socket as socket  # not socket.py: it loads enum, which must show if the shim loads it
host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
host.bind(sys.argv[1] + "/host.sock")
before = set(sys.modules)
from shim.diagnostics import Diagnostics
from shim.notify.session import CONTAINER, NotifySession
session = NotifySession(CONTAINER, sys.argv[1] + "/host.sock", Diagnostics())
session.open_container_socket(sys.argv[1] + "/notify", None)
session.container_started(os.getpid())
sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sender.sendto(b"READY=1", sys.argv[1] + "/notify/notify.sock")
assert session.relay_waiting(lambda: None) == (True, True)
assert host.recv(100) == b"MAINPID=%d" % os.getpid() and host.recv(100) == b"READY=1"
print(" ".join(sorted(set(sys.modules) - before)))
"""


def test_relaying_readiness_before_trio_loads_nothing_heavy(tmp_path):
    proc = subprocess.run([sys.executable, "-I", "-c", _NOTIFY_AFTER_START, str(tmp_path)],
                          capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "shim.notify.membership" in loaded  # the path under test ran
    heavy = HEAVY | {"signal"}  # signal.py loads enum; the C module _signal has what the shim needs
    assert not heavy & loaded, f"heavy modules: {sorted(heavy & loaded)}"
