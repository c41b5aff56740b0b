"""The shim as the main process of real systemd units (PID 1 where it is systemd, else a
confined user manager): Type=notify readiness, status, watchdog, timeouts, and stopping
through the shim."""

from __future__ import annotations

import os
import time
import uuid

import psutil
import pytest

from tests.helpers.harness import assert_fds_flat, held_fds, wait_for_trio
from tests.helpers.host_systemd import Manager

pytestmark = pytest.mark.integration


class Unit:
    """A transient unit running ``shim run`` in the confined manager."""

    def __init__(self, manager: Manager, harness, bundle: str, *shim_flags: str, properties=()) -> None:
        self.manager = manager
        self.harness = harness
        self.name = f"shim-{uuid.uuid4().hex[:8]}.service"
        self.container_id = harness.new_id()
        argv = harness.argv(bundle, self.container_id, *shim_flags)
        props = ["Type=notify", "LimitCORE=0", *properties]
        result = manager.systemd_run("--no-block", f"--unit={self.name}", *[f"--property={p}" for p in props],
                                     "--", *argv)
        assert result.returncode == 0, result.stderr

    def show(self, *props: str) -> dict[str, str]:
        return self.manager.show(self.name, *props)

    def wait(self, prop: str, *values: str, timeout: float = 20) -> dict[str, str]:
        state = self.manager.wait_for(self.name, prop, set(values), timeout)
        assert state.get(prop) in values, f"{self.name}: {state} (log: {self.log()})"
        return state

    def log(self) -> str:
        return self.manager.status(self.name)

    def stop(self) -> dict[str, str]:
        self.manager.systemctl("stop", self.name)
        return self.show("ActiveState", "Result")

    def cleanup(self) -> None:
        self.manager.systemctl("stop", self.name)
        self.manager.systemctl("reset-failed", self.name)
        known = self.manager.run("runc", "state", self.container_id).returncode == 0
        if known:
            self.manager.run("runc", "delete", "--force", self.container_id)
        assert not known, f"runc still knows {self.container_id} after {self.name} stopped"


@pytest.fixture
def units(host_systemd, shim_runc):
    made: list[Unit] = []

    def make(bundle: str, *flags: str, properties=()) -> Unit:
        unit = Unit(host_systemd, shim_runc, bundle, *flags, properties=properties)
        made.append(unit)
        return unit

    yield make
    for unit in made:
        unit.cleanup()


def notifier(harness, tmp_path, *args: str) -> str:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return harness.python_bundle("notifier.py", *args, out_dir=str(out))


def host_pid_of(container_id: str) -> int:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(word.rsplit("/", 1)[-1] == "shim" for word in cmdline) and "run" in cmdline and container_id in cmdline:
            return proc.pid
    raise LookupError(container_id)


def test_active_only_once_the_container_is_ready(units, shim_runc, tmp_path):
    unit = units(notifier(shim_runc, tmp_path, "gated"), "--sdnotify=container")
    unit.wait("StatusText", "warming")  # the container runs and talks, and holds READY=1 back
    assert unit.show("ActiveState")["ActiveState"] == "activating"
    (tmp_path / "out" / "go").touch()
    state = unit.wait("ActiveState", "active")
    assert state["StatusText"] == "warming"
    assert "/shim run" in unit.manager.pid_cmdline(state["MainPID"])
    after = unit.stop()
    assert after == {"ActiveState": "inactive", "Result": "success"}


def test_extend_timeout_lets_a_slow_start_succeed(units, shim_runc, tmp_path):
    unit = units(notifier(shim_runc, tmp_path, "extend"), "--sdnotify=container", properties=["TimeoutStartSec=1.5"])
    state = unit.wait("ActiveState", "active", "failed", timeout=15)
    assert state["ActiveState"] == "active" and state["StatusText"] == "extended"


def test_watchdog_pings_keep_the_unit_alive(units, shim_runc, tmp_path):
    unit = units(notifier(shim_runc, tmp_path, "watchdog", "30"), "--sdnotify=container",
                 properties=["WatchdogSec=1"])
    unit.wait("ActiveState", "active")
    time.sleep(3)
    state = unit.show("ActiveState", "Result", "NRestarts")
    assert state == {"ActiveState": "active", "Result": "success", "NRestarts": "0"}


def test_missing_watchdog_pings_get_the_unit_restarted(units, shim_runc, tmp_path):
    unit = units(notifier(shim_runc, tmp_path, "watchdog", "1"), "--sdnotify=container",
                 properties=["WatchdogSec=1", "Restart=on-watchdog", "RestartSec=0.2"])
    unit.wait("ActiveState", "active")
    state = unit.wait("NRestarts", "1", "2", "3", timeout=15)
    assert int(state["NRestarts"]) >= 1
    # the restarted shim found the dead one's container and state, cleaned up, and runs again
    unit.wait("ActiveState", "active")


def test_shim_mode_is_active_at_start_and_stops_cleanly(units, shim_runc, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # exits 0 on SIGTERM, the stop signal
    bundle = shim_runc.python_bundle("signal_recorder.py", "/out/signals", "15", "0", out_dir=str(out))
    unit = units(bundle, "--sdnotify=shim")
    state = unit.wait("ActiveState", "active", timeout=10)
    assert state["StatusText"] == "running"
    assert float(unit.show("ActiveEnterTimestampMonotonic")["ActiveEnterTimestampMonotonic"]) > 0
    assert unit.stop() == {"ActiveState": "inactive", "Result": "success"}


def test_hostile_payload_and_flood_do_not_reach_systemd(units, shim_runc, tmp_path):
    unit = units(notifier(shim_runc, tmp_path, "hostile"), "--sdnotify=container",
                 properties=["FileDescriptorStoreMax=16"])
    state = unit.wait("ActiveState", "active")
    assert state["StatusText"] == "survived"
    assert "/shim run" in unit.manager.pid_cmdline(state["MainPID"])  # MAINPID=1 did not pass
    assert unit.show("NFileDescriptorStore")["NFileDescriptorStore"] == "0"  # nor the FDSTORE fd
    unit.stop()

    flood = units(notifier(shim_runc, tmp_path, "flood", "10000"), "--sdnotify=container")
    deadline = time.monotonic() + 15
    while not flood.show("StatusText")["StatusText"] and time.monotonic() < deadline:
        time.sleep(0.01)  # until the flood reaches systemd...
    shim = psutil.Process(host_pid_of(flood.container_id))
    wait_for_trio(shim.pid)  # ...and the shim runs trio (the main thread relays until then)...
    seen = flood.show("StatusText")["StatusText"]
    while seen != "flood-done" and flood.show("StatusText")["StatusText"] == seen:  # ...whose relay task took over
        assert time.monotonic() < deadline, "the flood stalled"
        time.sleep(0.001)
    fds, rss = held_fds(shim.pid), shim.memory_info().rss
    state = flood.wait("StatusText", "flood-done", timeout=30)
    assert state["ActiveState"] in ("activating", "active")
    assert_fds_flat(shim.pid, fds)
    assert shim.memory_info().rss - rss < 4 * 1024 * 1024
    began = time.monotonic()
    assert flood.stop()["ActiveState"] == "inactive"
    assert time.monotonic() - began < 3  # still responsive


def test_socket_unit_starts_the_container_on_the_first_connection(host_systemd, shim_runc, tmp_path):
    from tests.integration.test_socket_activation import ask, free_port, parse

    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    bundle = shim_runc.python_bundle("listener.py", out_dir=str(out))
    name = f"shim-sock-{uuid.uuid4().hex[:8]}"
    container_id = shim_runc.new_id()
    argv = " ".join(shim_runc.argv(bundle, container_id, "--sdnotify=shim"))
    host_systemd.write_unit(f"{name}.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=no\n")
    host_systemd.write_unit(f"{name}.service", f"[Service]\nType=notify\nExecStart={argv}\n")
    try:
        assert host_systemd.systemctl("start", f"{name}.socket").returncode == 0
        assert host_systemd.show(f"{name}.service", "ActiveState")["ActiveState"] == "inactive"
        first = parse(ask(("127.0.0.1", port)))  # starts the service: shim, then the container
        assert host_systemd.show(f"{name}.service", "ActiveState")["ActiveState"] == "active"
        second = parse(ask(("127.0.0.1", port)))
        assert first["started"] == second["started"] and first["fd"] == "3"  # the same container
        host_systemd.systemctl("stop", f"{name}.socket", f"{name}.service")
        state = host_systemd.show(f"{name}.service", "ActiveState", "Result")
        assert state == {"ActiveState": "inactive", "Result": "success"}
        assert host_systemd.run("runc", "state", container_id).returncode != 0
        assert not os.path.exists(os.path.join(shim_runc.state_dir, container_id))
    finally:
        host_systemd.remove_units(f"{name}.socket", f"{name}.service")


def test_the_seed_scenario(units, shim_runc, debian_rootfs, tmp_path):
    """A Type=notify unit running an unmodified systemd image: active once the container's
    systemd finished booting, and a clean halt on `systemctl stop`."""
    out = tmp_path / "out"
    out.mkdir()
    bundle = shim_runc.bundle(["/sbin/init"], rootfs=debian_rootfs, engine_caps=True,
                              binds=[(str(out), "/out", False)])
    unit = units(bundle)  # --sdnotify=auto: container mode for a systemd payload
    state = unit.wait("ActiveState", "active", "failed", timeout=30)
    assert state["ActiveState"] == "active" and state["StatusText"] == "Ready."
    assert (out / "marker").exists() and (out / "inner-ready").exists()  # boot had finished
    assert "/shim run" in unit.manager.pid_cmdline(state["MainPID"])
    began = time.monotonic()
    assert unit.stop() == {"ActiveState": "inactive", "Result": "success"}
    assert time.monotonic() - began < 5
