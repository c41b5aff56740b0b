"""systemd as the container's PID 1: boot-to-READY (exec of the monitor until READY=1
reaches a host NOTIFY_SOCKET) and stop-to-exit, for one Debian bookworm image under the
shim, conmon standalone (prepared as podman prepares it) and podman ``--systemd=always``.

Stop for each the way its users stop it: SIGTERM to the shim (it sends SIGRTMIN+3 and
returns once the container is deleted); ``runtime kill RTMIN+3`` for conmon (what
``podman stop`` does), until conmon's exit file, and until the container is deleted too;
``podman stop`` for podman (which also cleans up).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from bench.monitors import ConmonRun, ShimRun, now_ns
from bench.rounds import Samples, design, schedule
from bench.scenarios.notify import Listener
from shim.demo.bundle import default_config, write_config

UNIT = "ms"
ROUNDS, QUICK_ROUNDS = 10, 1
# The first boot of each contender reads the image from disk and (podman) sets up its
# storage: measured, then discarded. Not in --quick, which would take twice as long.
WARMUP_ROUNDS, QUICK_WARMUP_ROUNDS = 1, 0
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
"""


def systemd_config(rootfs: str, out: str) -> dict:
    """The tests' image (its own units write to /out: without it they fail and, now and
    then, boot never completes), with an engine's capabilities."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from tests.helpers.oci import with_engine_caps

    config = with_engine_caps(default_config(["/sbin/init"], rootfs))
    config["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
    return config


def _out_dir(env) -> str:
    out = os.path.join(env.workdir, "systemd-out")
    os.makedirs(out, exist_ok=True)
    return out


def wait_ready(listener: Listener, since: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for when, data in list(listener.ready):
            if when >= since:
                return when
        time.sleep(0.0005)
    raise TimeoutError("no READY=1")


class ReadyListener(Listener):
    """Records when each READY=1 arrives."""

    def __init__(self, path: str) -> None:
        self.ready: list[tuple[int, bytes]] = []
        super().__init__(path)

    def _run(self) -> None:
        while True:
            data = self.sock.recv(4096)
            if b"READY=1" in data.split(b"\n"):
                self.ready.append((now_ns(), data))


def shim_round(env, runtime, bundle, listener, flags=(), after_ready=None, record=None):
    """One boot and stop; returns (boot to READY, stop to exit) in ms. For a profile
    (bench/profiles.py): ``flags`` for ``shim run``, ``after_ready(container_id)`` runs
    once READY=1 arrived (before the pause that precedes the stop), and ``record`` (a dict)
    receives the stamps (ns), the pids and the shim's stderr."""
    run = ShimRun(env, runtime, bundle, *flags, extra_env={"NOTIFY_SOCKET": listener.path}, stdout=subprocess.DEVNULL)
    try:
        ready = wait_ready(listener, run.started)
        if after_ready is not None:
            after_ready(run.container_id)
        time.sleep(0.2)
        began = now_ns()
        ended = run.stop(signal.SIGTERM)
        if record is not None:
            record.update(started=run.started, ready=ready, stop=began, exit_seen=ended, monitor_pid=run.pid,
                          monitor_pids={run.pid}, stderr=run.proc.stderr.read().decode("utf-8", "replace"))
        return (ready - run.started) / 1e6, (ended - began) / 1e6
    finally:
        run.finish()


def conmon_round(env, runtime, rootfs, listener, after_ready=None, record=None):
    """One boot and stop; returns (boot to READY, stop to exit file, stop to deleted) in
    ms. ``after_ready`` and ``record`` as for ``shim_round``."""
    from shim.notify.session import add_container_socket
    from shim.systemd.cgroups import host_cgroup_layout, prepare_systemd_cgroup, remove_cgroups
    from shim.systemd.config import apply_systemd_mode

    directory = os.path.join(env.workdir, "bundles", f"conmon-systemd-{now_ns()}")
    config = systemd_config(rootfs, _out_dir(env))
    run = ConmonRun(env, runtime, directory, "--sdnotify-socket", listener.path)
    cgroup = apply_systemd_mode(config, run.container_id, host_cgroup_layout())
    add_container_socket(config, f"{directory}/notify")  # conmon binds <bundle>/notify/notify.sock
    write_config(directory, config)
    os.makedirs(f"{directory}/notify")  # podman makes it; conmon only binds in it
    made: list[str] = []
    if cgroup:
        prepare_systemd_cgroup(cgroup, made)
    try:
        began = run.start()
        ready = wait_ready(listener, began)
        if after_ready is not None:
            after_ready(run.container_id)
        time.sleep(0.2)
        stop_began = now_ns()
        subprocess.run([runtime, "kill", run.container_id, str(signal.SIGRTMIN + 3)], check=True)
        exited = run.wait_exit_file()
        subprocess.run([runtime, "delete", "--force", run.container_id], capture_output=True)
        deleted = now_ns()
        if record is not None:
            record.update(started=began, ready=ready, stop=stop_began, exit_seen=exited, deleted=deleted,
                          monitor_pid=run.first_pid, monitor_pids={run.first_pid, run.conmon_pid},
                          daemon_pid=run.conmon_pid)
        return (ready - began) / 1e6, (exited - stop_began) / 1e6, (deleted - stop_began) / 1e6
    finally:
        run.finish()
        remove_cgroups(made)
        shutil.rmtree(directory, ignore_errors=True)


class Podman:
    def __init__(self, env, rootfs: str) -> None:
        self.podman = shutil.which("podman")
        self.dir = os.path.join(env.workdir, "podman")
        os.makedirs(self.dir, exist_ok=True)
        self.out = _out_dir(env)
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": conf}
        self.base = [self.podman, "--root", os.path.join(self.dir, "root"), "--runroot", os.path.join(self.dir, "run")]
        tar = os.path.join(self.dir, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
        subprocess.run([*self.base, "import", tar, "localhost/shim-bench-systemd:latest"], check=True,
                       env=self.env, capture_output=True)
        os.unlink(tar)

    def round(self, listener, index: int):
        name = f"shim-bench-{os.getpid()}-{index}"
        began = now_ns()
        subprocess.run([*self.base, "run", "-d", "--name", name, "--network=none", "--systemd=always",
                        "--sdnotify=container", "-v", f"{self.out}:/out",
                        "localhost/shim-bench-systemd:latest", "/sbin/init"],
                       check=True, env={**self.env, "NOTIFY_SOCKET": listener.path}, capture_output=True)
        try:
            ready = wait_ready(listener, began)
            time.sleep(0.2)
            stop_began = now_ns()
            subprocess.run([*self.base, "stop", "-t", "10", name], check=True, env=self.env, capture_output=True)
            ended = now_ns()
            return (ready - began) / 1e6, (ended - stop_began) / 1e6
        finally:
            subprocess.run([*self.base, "rm", "-f", name], env=self.env, capture_output=True)

    def close(self) -> None:
        subprocess.run([*self.base, "system", "reset", "--force"], env=self.env, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def run(env, quick: bool) -> dict:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from tests.helpers.debian_rootfs import cached_debian_systemd_rootfs, unavailable_reason

    reason = unavailable_reason()
    if reason:
        return {"unit": UNIT, "series": {}, "notes": [f"skipped: {reason}"]}
    rootfs = cached_debian_systemd_rootfs()
    runtime = env.runtimes.get("runc") or next(iter(env.runtimes.values()))
    rounds = QUICK_ROUNDS if quick else ROUNDS
    listener = ReadyListener(os.path.join(env.workdir, "systemd-listener.sock"))
    bundle = write_config(os.path.join(env.workdir, "bundles", "systemd"), systemd_config(rootfs, _out_dir(env)))
    contenders = {"shim": lambda i: shim_round(env, runtime, bundle, listener)}
    if env.conmon:
        contenders["conmon"] = lambda i: conmon_round(env, runtime, rootfs, listener)
    podman = None
    notes = [f"container runtime: {runtime.rsplit('/', 1)[-1]}"]
    if shutil.which("podman") and not quick:
        podman = Podman(env, rootfs)
        contenders["podman"] = lambda i: podman.round(listener, i)
    elif quick:
        notes.append("podman left out of --quick (importing the image takes a while)")
    warmup = QUICK_WARMUP_ROUNDS if quick else WARMUP_ROUNDS
    samples = Samples(order=[*contenders, "conmon + delete"])
    try:
        for k, (index, order) in enumerate(schedule(list(contenders), rounds, warmup)):
            for name in order:
                ready_ms, stop_ms, *deleted_ms = contenders[name](k)
                samples.add("boot to READY", name, index, ready_ms)
                samples.add("stop to exit", name, index, stop_ms)
                if deleted_ms:
                    samples.add("stop to exit", f"{name} + delete", index, deleted_ms[0])
    finally:
        if podman:
            podman.close()
        listener.sock.close()
    return {"unit": UNIT, "series": samples.series(), "rounds": samples.rounds(),
            "design": design(rounds, warmup), "notes": notes}
