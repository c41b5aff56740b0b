"""Container logs that lose nothing: the journald driver read back with journalctl, field
by field; k8s-file rotation by renaming; every driver byte-exact, through ``shim run`` and
through podman; backpressure instead of loss; a full disk reported once."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from tests.helpers.logs import decode_k8s, journal_streams, k8s_files, payload_data
from tests.helpers.podman import BUSYBOX_IMAGE as IMAGE

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def test_podman_journald_fields_and_podman_logs(podman, journal, tmp_path):
    pidfile = tmp_path / "monitor.pid"  # inspect's ConmonPid is 0 once the container is cleaned up
    cid = podman.out("run", "-d", "--name", "journaled", "--log-driver", "journald", "--log-opt", "tag=webtag",
                     "--conmon-pidfile", str(pidfile), IMAGE, "sh", "-c",
                     "echo out-line; echo err-line >&2; printf no-newline")
    assert podman.out("wait", cid) == "0"
    monitor = int(pidfile.read_text())
    entries = journal.entries(f"CONTAINER_ID_FULL={cid}", count=3)
    by_message = {e["MESSAGE"]: e for e in entries}
    assert set(by_message) == {"out-line\n", "err-line\n", "no-newline"}
    out, err, partial = by_message["out-line\n"], by_message["err-line\n"], by_message["no-newline"]
    assert (out["PRIORITY"], err["PRIORITY"]) == ("6", "3")
    for entry in entries:
        assert entry["CONTAINER_ID"] == cid[:12] and entry["CONTAINER_NAME"] == "journaled"
        assert entry["CONTAINER_TAG"] == "webtag" and entry["SYSLOG_IDENTIFIER"] == "webtag"
        assert entry["_PID"] == str(monitor)  # sent by the monitor itself (030-run's check)
    assert partial["CONTAINER_PARTIAL_MESSAGE"] == "true" and "CONTAINER_PARTIAL_MESSAGE" not in out
    logs = podman("logs", cid)
    assert (logs.stdout, logs.stderr) == (b"out-line\nno-newline", b"err-line\n")


def test_shim_run_journald_keeps_long_lines_whole(shim, journal):
    line = b"j" * MB
    bundle = shim.bundle(["/bin/sh", "-c", f"head -c {MB} /dev/zero | tr '\\0' j; echo; echo small"])
    container_id = shim.new_id()
    proc = subprocess.run(journal.argv(*shim.argv(bundle, container_id, "--log-driver", "journald",
                                                  "--log-tag", "runtag")), capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b"", proc.stderr
    entries = journal.entries(f"CONTAINER_ID_FULL={container_id}", count=2)
    assert [len(e["MESSAGE"]) for e in entries] == [len(line) + 1, len("small\n")]  # conmon splits at 8 KiB
    assert all("CONTAINER_PARTIAL_MESSAGE" not in e and e["SYSLOG_IDENTIFIER"] == "runtag" for e in entries)


def test_without_a_journal_one_warning_and_the_other_drivers_still_work(shim):
    result = shim.run(["/bin/sh", "-c", "for i in 1 2 3; do echo line$i; done"], "--log-driver",
                      "journald,passthrough")
    assert result.returncode == 0
    assert result.stdout == b"line1\nline2\nline3\n"
    assert len([l for l in result.shim_lines if "journal" in l]) == 1, result.stderr


def test_k8s_file_rotates_by_renaming(shim, tmp_path):
    log = str(tmp_path / "ctr.log")
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done"
    result = shim.run(["/bin/sh", "-c", script], "--log-driver", "k8s-file", "--log-path", log,
                      "--log-size-max", "4000", "--log-max-files", "100")
    assert result.returncode == 0, result
    files = k8s_files(log)
    assert len(files) > 3
    texts = [open(f, "rb").read() for f in files]
    assert all(len(t) <= 4000 for t in texts) and all(t.split(b" ")[1] in (b"stdout", b"stderr") for t in texts)
    assert decode_k8s(b"".join(texts))[b"stdout"] == b"".join(b"line-%d\n" % i for i in range(400))


def test_podman_logs_follows_across_a_rotation(podman):
    padding = "p" * 100
    cid = podman.out("run", "-d", "--log-opt", "max-size=10kb", IMAGE, "sh", "-c",
                     f"i=0; while [ $i -lt 300 ]; do echo line-$i-{padding}; i=$((i+1)); sleep 0.01; done")
    follow = podman("logs", "-f", cid, timeout=60)
    numbers = [int(line.split("-")[1]) for line in follow.stdout.decode().split()]
    # podman's follower polls (every 250 ms) and goes on in the new file when it sees the
    # rename: it keeps working, in order, to the last line. (What a poll missed is in the
    # backup, not lost; the follower only reads the current file.)
    assert numbers[-1] == 299 and numbers == sorted(set(numbers))
    log_path = podman.out("inspect", "--format", "{{.HostConfig.LogConfig.Path}}", cid)
    assert os.path.exists(log_path + ".1")  # it did rotate
    current = decode_k8s(open(log_path, "rb").read())[b"stdout"]
    backup = decode_k8s(open(log_path + ".1", "rb").read())[b"stdout"]
    assert (backup + current).endswith(b"line-299-" + padding.encode() + b"\n")
    on_disk = [int(line.split(b"-")[1]) for line in (backup + current).split()]
    assert on_disk == list(range(on_disk[0], 300))  # nothing missing between the two files


@pytest.fixture
def payload(tmp_path):
    """100 MB of random output: 1 MB lines, NULs, invalid UTF-8, \\r, no final newline;
    60 MB on stdout and 40 MB on stderr, written at the same time."""
    out = payload_data(60 * MB, MB, 1)
    err = payload_data(40 * MB, MB, 2)
    data = tmp_path / "data"
    data.mkdir()
    (data / "out").write_bytes(out)
    (data / "err").write_bytes(err)
    return str(data), hashlib.sha256(out).hexdigest(), hashlib.sha256(err).hexdigest()


SCRIPT = "cat /data/out & cat /data/err >&2; wait"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_driver_is_byte_exact_through_shim_run(shim, journal, payload, tmp_path):
    data, out_sha, err_sha = payload
    log = str(tmp_path / "logs" / "ctr.log")
    os.mkdir(os.path.dirname(log))
    bundle = shim.bundle(["/bin/sh", "-c", SCRIPT], binds=[(data, "/data", True)])
    container_id = shim.new_id()
    proc = subprocess.run(journal.argv(*shim.argv(bundle, container_id, "--log-driver", "passthrough,k8s-file,journald",
                                                  "--log-path", log, "--log-size-max", str(MB),
                                                  "--log-max-files", "1000")),
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert (sha(proc.stdout), sha(proc.stderr)) == (out_sha, err_sha)  # passthrough
    files = k8s_files(log)
    assert len(files) > 90  # rotated at 1 MB, every file kept
    streams = decode_k8s(b"".join(open(f, "rb").read() for f in files))
    # k8s-file is CRI: the last line, which has no newline, is closed by an F record.
    assert (sha(streams[b"stdout"]), sha(streams[b"stderr"])) == (sha_plus_newline(data, "out"),
                                                                   sha_plus_newline(data, "err"))
    journaled = journal_streams(journal, f"CONTAINER_ID_FULL={container_id}", size=100 * MB)
    assert (sha(journaled[b"stdout"]), sha(journaled[b"stderr"])) == (out_sha, err_sha)


def sha_plus_newline(data_dir: str, name: str) -> str:
    digest = hashlib.sha256()
    with open(os.path.join(data_dir, name), "rb") as f:
        while chunk := f.read(MB):
            digest.update(chunk)
    digest.update(b"\n")
    return digest.hexdigest()


@pytest.mark.parametrize("driver", ["k8s-file", "journald"])
def test_every_driver_is_byte_exact_through_podman(podman, journal, payload, driver):
    data, out_sha, err_sha = payload
    cid = podman.out("run", "-d", "--log-driver", driver, "-v", f"{data}:/data:ro", IMAGE, "sh", "-c", SCRIPT)
    assert podman.out("wait", cid, timeout=300) == "0"
    if driver == "journald":
        streams = journal_streams(journal, f"CONTAINER_ID_FULL={cid}", size=100 * MB)
        assert (sha(streams[b"stdout"]), sha(streams[b"stderr"])) == (out_sha, err_sha)
    else:
        logs = podman("logs", cid, timeout=300)  # podman's own reader of the k8s-file log
        assert (sha(logs.stdout), sha(logs.stderr)) == (sha_plus_newline(data, "out"), sha_plus_newline(data, "err"))


def test_a_full_disk_is_reported_once_and_the_container_goes_on(shim, tmp_path):
    # The log on a 64 KiB tmpfs in a mount namespace of the shim's own.
    log_dir = tmp_path / "small"
    log_dir.mkdir()
    bundle = shim.bundle(["/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x; echo; exit 9"])
    container_id = shim.new_id()
    inner = " ".join(f"'{w}'" for w in shim.argv(bundle, container_id, "--log-driver", "k8s-file,passthrough",
                                                  "--log-path", f"{log_dir}/ctr.log"))
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           f"mount -t tmpfs -o size=64k tmpfs {log_dir} && exec {inner}"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 9  # the container's own status, as if nothing happened
    assert proc.stdout == b"x" * 1000000 + b"\n"  # the other driver got everything
    lines = [l for l in proc.stderr.decode().splitlines() if l.startswith("shim: ")]
    assert len([l for l in lines if "failed" in l and "keeps running" in l]) == 1, lines
    assert any("bytes of the container's output could not be written" in l for l in lines), lines
