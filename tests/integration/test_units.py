"""``shim generate systemd``: the units it writes, run by a real systemd (PID 1 where it is
systemd, else a confined user manager), and the container inside its unit's cgroup on
every cgroup layout this machine can show (v1, hybrid, v2).

Processes and runtime state are looked at from the manager's namespaces (``manager.run``):
a confined manager has its own pid namespace and its own /run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from tests.helpers.harness import SHIM
from tests.helpers.host_systemd import (HostSystemd, Manager, SystemManager, layouts_to_test, pid1_is_systemd,
                                       unavailable_reason)

pytestmark = pytest.mark.integration

GENERATE = [*SHIM, "generate", "systemd"]
# A busybox payload that stops cleanly on SIGTERM (as its pid namespace's init, a shell
# needs a trap for that) and otherwise runs until stopped.
SERVER = ["/bin/sh", "-c", "trap 'echo stopping; exit 0' TERM; echo up; while :; do sleep 0.1; done"]


def generate(harness, bundle: str, container_id: str, directory: str, *flags: str,
             runtime: str | None = None) -> dict[str, str]:
    """Run ``shim generate systemd --files``: {file name: text}."""
    os.makedirs(directory, exist_ok=True)
    result = subprocess.run([*GENERATE, "-b", bundle, "-r", runtime or harness.runtime, "--state-dir",
                             harness.state_dir, *flags, "--files", directory, container_id],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    paths = result.stdout.split()
    return {os.path.basename(p): open(p).read() for p in paths}


class GeneratedUnit:
    """A generated service (and socket) installed in a manager; removed by ``cleanup``."""

    def __init__(self, manager: Manager, harness, bundle: str, tmp_path, *flags: str, runtime: str | None = None,
                 edit=None):
        self.manager = manager
        self.harness = harness
        self.runtime = runtime or harness.runtime
        self.container_id = harness.new_id()
        self.name = f"shim-test-{uuid.uuid4().hex[:8]}"
        self.files = generate(harness, bundle, self.container_id, str(tmp_path / self.name), "--name", self.name,
                              *flags, runtime=self.runtime)
        for name, text in self.files.items():
            manager.write_unit(name, edit(text) if edit and name == self.service else text)

    @property
    def service(self) -> str:
        return f"{self.name}.service"

    def start(self, unit: str | None = None) -> None:
        result = self.manager.systemctl("start", unit or self.service)
        assert result.returncode == 0, f"{result.stderr}\n{self.manager.status(self.service)}"

    def show(self, *props: str) -> dict[str, str]:
        return self.manager.show(self.service, *props)

    def wait(self, prop: str, *values: str, timeout: float = 30) -> dict[str, str]:
        state = self.manager.wait_for(self.service, prop, set(values), timeout)
        assert state.get(prop) in values, f"{self.service}: {state}\n{self.manager.status(self.service)}"
        return state

    def stop(self) -> dict[str, str]:
        self.manager.systemctl("stop", self.service)
        return self.show("ActiveState", "Result")

    def container_pid(self) -> int:
        """The container's init, in the manager's pid namespace."""
        result = self.manager.run(self.runtime, "state", self.container_id)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["pid"]

    def cgroups_of(self, pid: int | str) -> dict[str, str]:
        """{hierarchy: path} of a process, as the manager sees it."""
        text = self.manager.run("cat", f"/proc/{pid}/cgroup").stdout
        return {line.split(":", 2)[1] or "cgroup2": line.split(":", 2)[2] for line in text.splitlines()}

    def alive(self, pid: int) -> bool:
        return self.manager.run("kill", "-0", str(pid)).returncode == 0

    def wait_gone(self, pid: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.alive(pid):
            assert time.monotonic() < deadline, f"pid {pid} of {self.service} still runs"
            time.sleep(0.05)

    def leftovers(self, timeout: float = 10) -> list[str]:
        """What is left once the unit stopped: the runtime's container, the shim's state
        directory, cgroups named after the unit or the container (systemd removes the
        unit's own cgroups a moment after it stopped: wait for that)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.manager.cgroups_named(self.service, f"container-{self.container_id}")
            if self.manager.run(self.runtime, "state", self.container_id).returncode == 0:
                left.append(f"{self.runtime} still knows {self.container_id}")
            if os.path.exists(os.path.join(self.harness.state_dir, self.container_id)):
                left.append(f"state directory {self.container_id}")
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def cleanup(self) -> None:
        self.manager.remove_units(*self.files)
        if self.manager.run(self.runtime, "state", self.container_id).returncode == 0:
            self.manager.run(self.runtime, "delete", "--force", self.container_id)


@pytest.fixture
def units(host_systemd, tmp_path):
    made: list[GeneratedUnit] = []

    def make(harness, bundle: str, *flags: str, runtime: str | None = None, manager: Manager | None = None, edit=None):
        unit = GeneratedUnit(manager or host_systemd, harness, bundle, tmp_path, *flags, runtime=runtime, edit=edit)
        made.append(unit)
        return unit

    yield make
    for unit in made:
        unit.cleanup()


def assert_inside_its_unit(unit: GeneratedUnit, layout: str) -> None:
    """The container's cgroup is <unit>/container-<ID> (its init, a systemd, may move to
    a cgroup of its own below it) in every hierarchy the manager mounts; on cgroup v2 the
    shim sits in <unit>/shim."""
    state = unit.show("ControlGroup", "MainPID")
    own = f"{state['ControlGroup']}/container-{unit.container_id}"
    container = unit.cgroups_of(unit.container_pid())
    mounted = unit.manager.mounted_hierarchies()
    assert mounted and mounted <= set(container), (mounted, container)
    for hierarchy in mounted:
        assert container[hierarchy] == own or container[hierarchy].startswith(own + "/"), (hierarchy, container)
    shim = unit.cgroups_of(state["MainPID"])
    tracking = "name=systemd" if layout == "legacy" else "cgroup2"
    expected = f"{state['ControlGroup']}/shim" if layout == "unified" else state["ControlGroup"]
    assert shim[tracking] == expected, shim
    assert "shim run" in unit.manager.pid_cmdline(state["MainPID"])


# -- the generator on its own ---------------------------------------------------------------

def test_generated_units_pass_systemd_analyze_verify(shim_runc, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (apt-get install systemd)")
    odd = tmp_path / "my bundle %n $HOME"
    bundle = shim_runc.bundle(SERVER)
    odd.mkdir()
    shutil.copy(os.path.join(bundle, "config.json"), odd / "config.json")
    files = generate(shim_runc, str(odd), "c1", str(tmp_path / "units"), "--socket", "127.0.0.1:8080",
                     "--socket", "/run/web.sock", "--stop-signal", "RTMIN+3", "--sdnotify=shim")
    assert sorted(files) == ["shim-c1.service", "shim-c1.socket"]
    result = subprocess.run([analyze, "verify", *(str(tmp_path / "units" / f) for f in files)],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_mistakes_cost_one_line_and_write_nothing(shim_runc, tmp_path):
    out = tmp_path / "units"
    out.mkdir()

    def run(*argv):
        result = subprocess.run([*SHIM, *argv], capture_output=True, text=True, timeout=60)
        return result.returncode, result.stderr.strip().splitlines()

    code, lines = run("generate", "systemd", "-b", str(tmp_path / "nope"), "--files", str(out), "c1")
    assert (code, lines) == (125, [f"shim: bundle {tmp_path}/nope: no such directory"])
    code, lines = run("generate", "systemd", "-b", shim_runc.bundle(SERVER), "--files", str(tmp_path / "no"), "c1")
    assert (code, lines) == (125, [f"shim: --files {tmp_path}/no: no such directory"])
    code, lines = run("generate", "systemd", "-r", "no-such-runtime", "-b", shim_runc.bundle(SERVER), "c1")
    assert code == 125 and len(lines) == 1 and "no-such-runtime" in lines[0]
    assert run("generate", "docker", "c1") == (125, ["shim: shim generate: unknown target 'docker' (targets: systemd)"])
    assert run("generate")[0] == 125
    assert run("generate", "systemd", "--socket", "nowhere", "c1") == (
        125, ["shim: --socket nowhere: not one of PORT, IPv4:PORT, [IPv6]:PORT, /path or @name"])
    assert os.listdir(out) == []
    (out / "shim-c1.socket").mkdir()  # the socket unit cannot be written: the service must not stay
    code, lines = run("generate", "systemd", "-b", shim_runc.bundle(SERVER), "--socket", "80", "--files", str(out), "c1")
    assert code == 125 and len(lines) == 1 and lines[0].startswith(f"shim: --files {out}: cannot write shim-c1.socket")
    assert os.listdir(out) == ["shim-c1.socket"]


# -- under a real systemd ------------------------------------------------------------------

def test_the_manager_is_pid_1_where_it_is_systemd(units, shim_runc):
    unit = units(shim_runc, shim_runc.bundle(SERVER))
    if pid1_is_systemd():
        assert isinstance(unit.manager, SystemManager)
        assert os.path.isfile(f"/etc/systemd/system/{unit.service}")
    else:
        assert isinstance(unit.manager, HostSystemd) and unit.manager.user == ["--user"]
    assert unit.manager.show(unit.service, "LoadState") == {"LoadState": "loaded"}


def test_a_generated_unit_runs_the_demo_bundle(units, shim_runc, tmp_path):
    """The bundle `shim demo` runs: active as soon as it started (READY=1 and its status
    from the shim), inactive and successful once its script is done."""
    from shim.demo.command import prepare_bundle

    bundle = prepare_bundle({"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)})
    unit = units(shim_runc, bundle)
    unit.start()
    state = unit.show("ActiveState", "StatusText", "MainPID")
    assert state["StatusText"] == "running" and "shim run" in unit.manager.pid_cmdline(state["MainPID"])
    assert unit.wait("ActiveState", "inactive", "failed")["Result"] == "success"
    assert unit.leftovers() == []


def test_start_stop_and_the_containers_place(units, shim, tmp_path):
    unit = units(shim, shim.bundle(SERVER))
    unit.start()  # returns once the unit is active: READY=1 reached systemd
    assert unit.show("ActiveState", "StatusText") == {"ActiveState": "active", "StatusText": "running"}
    assert_inside_its_unit(unit, unit.manager.layout)
    began = time.monotonic()
    assert unit.stop() == {"ActiveState": "inactive", "Result": "success"}
    assert time.monotonic() - began < 10
    assert unit.leftovers() == []


def test_the_debian_systemd_image(units, shim_runc, debian_rootfs, tmp_path):
    """The seed scenario through a generated unit: active once the container's systemd
    finished booting (its READY=1 and StatusText), halted by SIGRTMIN+3 on stop, exit 0."""
    out = tmp_path / "out"
    out.mkdir()
    bundle = shim_runc.bundle(["/sbin/init"], rootfs=debian_rootfs, engine_caps=True, binds=[(str(out), "/out", False)])
    unit = units(shim_runc, bundle)
    assert f"SuccessExitStatus={128 + signal.SIGRTMIN + 3}" in unit.files[unit.service]
    unit.start()
    state = unit.show("ActiveState", "StatusText")
    assert state == {"ActiveState": "active", "StatusText": "Ready."}
    assert (out / "marker").exists() and (out / "inner-ready").exists()  # boot had finished
    assert_inside_its_unit(unit, unit.manager.layout)
    began = time.monotonic()
    assert unit.stop() == {"ActiveState": "inactive", "Result": "success"}
    assert unit.show("ExecMainStatus")["ExecMainStatus"] == "0"
    assert time.monotonic() - began < 10
    assert unit.leftovers() == []


@pytest.mark.parametrize("how", ["systemctl kill -s KILL", "SIGKILL to the shim"])
def test_killed_units_leave_nothing_behind(units, shim_runc, tmp_path, how):
    """The container is in the unit's cgroup, so systemd kills it with the shim; the unit
    restarts (Restart=on-failure), the new shim removes what the dead one left, and once
    the unit stops nothing remains."""
    unit = units(shim_runc, shim_runc.bundle(SERVER))
    unit.start()
    first = unit.container_pid()
    if how == "SIGKILL to the shim":
        unit.manager.run("kill", "-KILL", unit.show("MainPID")["MainPID"], check=True)
    else:
        assert unit.manager.systemctl("kill", "-s", "KILL", unit.service).returncode == 0
    unit.wait_gone(first)
    unit.wait("NRestarts", "1", "2")
    state = unit.wait("ActiveState", "active")
    assert unit.container_pid() != first
    assert_inside_its_unit(unit, unit.manager.layout)
    assert unit.stop() == {"ActiveState": "inactive", "Result": "success"}
    assert unit.leftovers() == []


def test_a_killed_shims_leftovers_wait_for_the_next_start(units, shim_runc, tmp_path):
    """Without Restart=, the container dies with the shim (systemd kills the unit's
    cgroup), but the runtime's record of it and the shim's state directory stay until the
    unit starts again; that shim removes them first, and leaves nothing once stopped."""
    log = tmp_path / "shim.log"
    unit = units(shim_runc, shim_runc.bundle(SERVER), edit=lambda text: text.replace(
        "Restart=on-failure\n", f"StandardError=file:{log}\n"))
    unit.start()
    first = unit.container_pid()
    unit.manager.run("kill", "-KILL", unit.show("MainPID")["MainPID"], check=True)
    unit.wait_gone(first)
    assert unit.wait("ActiveState", "failed")["Result"] == "signal"
    state = json.loads(unit.manager.run(unit.runtime, "state", unit.container_id).stdout)
    assert state["status"] == "stopped"
    assert os.path.isdir(os.path.join(shim_runc.state_dir, unit.container_id))
    unit.manager.systemctl("reset-failed", unit.service)
    unit.start()
    assert f"removed container {unit.container_id}, left behind by a shim that died" in log.read_text()
    assert_inside_its_unit(unit, unit.manager.layout)
    assert unit.stop() == {"ActiveState": "inactive", "Result": "success"}
    assert unit.leftovers() == []


def test_a_stop_that_times_out_kills_the_whole_container(units, shim_runc, tmp_path):
    """A payload that ignores its stop signal: SIGKILL after the stop timeout reaches the
    container and what it started; the unit fails (137), and nothing is left."""
    bundle = shim_runc.bundle(["/bin/sh", "-c", "trap '' TERM; (trap '' TERM; sleep 1000) & while :; do sleep 0.1; done"])
    unit = units(shim_runc, bundle, "--stop-timeout", "1")
    assert "TimeoutStopSec=11" in unit.files[unit.service]
    unit.start()
    began = time.monotonic()
    assert unit.stop() == {"ActiveState": "failed", "Result": "exit-code"}
    assert unit.show("ExecMainStatus")["ExecMainStatus"] == "137"
    assert 0.9 < time.monotonic() - began < 11
    assert unit.leftovers() == []


def test_restart_on_failure_restarts_a_crashing_container(units, shim_runc, tmp_path):
    unit = units(shim_runc, shim_runc.bundle(["/bin/sh", "-c", "sleep 0.3; exit 3"]))
    unit.manager.systemctl("start", "--no-block", unit.service)
    state = unit.wait("NRestarts", "2", "3", "4", "5")
    assert int(state["NRestarts"]) >= 2
    unit.stop()
    unit.manager.systemctl("reset-failed", unit.service)
    assert unit.leftovers() == []


def test_a_generated_socket_starts_the_container_on_the_first_connection(units, shim_runc, tmp_path):
    from tests.integration.test_socket_activation import ask, free_port, parse

    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    unit = units(shim_runc, shim_runc.python_bundle("listener.py", out_dir=str(out)), "--socket", f"127.0.0.1:{port}")
    assert sorted(unit.files) == [f"{unit.name}.service", f"{unit.name}.socket"]
    unit.start(f"{unit.name}.socket")
    assert unit.show("ActiveState")["ActiveState"] == "inactive"
    first = parse(ask(("127.0.0.1", port)))  # systemd starts the service: the shim, then the container
    assert unit.wait("ActiveState", "active")["StatusText"] == "running"
    second = parse(ask(("127.0.0.1", port)))
    assert first["fd"] == "3" and first["started"] == second["started"]  # one container served both
    assert (out / "env").read_text().splitlines()[:2] == ["LISTEN_FDNAMES=" + unit.name + ".socket", "LISTEN_FDS=1"]
    assert_inside_its_unit(unit, unit.manager.layout)
    unit.manager.systemctl("stop", f"{unit.name}.socket", unit.service)
    assert unit.show("ActiveState", "Result") == {"ActiveState": "inactive", "Result": "success"}
    assert unit.leftovers() == []


# -- every cgroup layout, in confined managers --------------------------------------------

@pytest.fixture(scope="module", params=layouts_to_test() or ["none"])
def layout_manager(request, tmp_path_factory):
    reason = unavailable_reason(request.param) if request.param != "none" else "no cgroup layout to test here"
    if reason:
        pytest.skip(reason)
    manager = HostSystemd(str(tmp_path_factory.mktemp(f"systemd-{request.param}")), layout=request.param)
    manager.start()
    yield manager
    manager.stop()


def crun_can_load_its_device_filter() -> bool:
    """crun 1.8 raises RLIMIT_MEMLOCK to infinity before it loads its eBPF device filter
    (cgroup v2), and fails where it cannot: root without CAP_SYS_RESOURCE, as on these
    machines, under a finite hard limit."""
    import resource

    if resource.getrlimit(resource.RLIMIT_MEMLOCK)[1] == resource.RLIM_INFINITY:
        return True
    with open("/proc/self/status") as f:
        effective = int(next(line for line in f if line.startswith("CapEff:")).split()[1], 16)
    cap_sys_resource = 24
    return bool(effective >> cap_sys_resource & 1)


def without_device_rules(bundle: str) -> str:
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["linux"].get("resources", {}).pop("devices", None)
    with open(path, "w") as f:
        json.dump(config, f)
    return bundle


@pytest.mark.parametrize("runtime_name", ["runc", "crun"])
def test_every_layout(units, layout_manager, shim_runc, runtime_name):
    """In the manager's own cgroup namespace the runtimes run as on a host of that layout
    (crun needs no wrapper: the namespace's cgroup v2 root lists no controllers)."""
    runtime = shutil.which(runtime_name)
    if runtime is None:
        pytest.skip(f"{runtime_name} is not installed")
    bundle = shim_runc.bundle(SERVER)
    if runtime_name == "crun" and layout_manager.layout == "unified" and not crun_can_load_its_device_filter():
        bundle = without_device_rules(bundle)  # the container's place is what this test is about
    # On v1 alone, nothing tells the confined manager that a cgroup emptied (systemd
    # learns it from a release agent, which only a system manager installs): once the shim
    # is killed it waits out TimeoutStopSec before it restarts the unit, so keep that short.
    unit = units(shim_runc, bundle, "--stop-timeout", "1", runtime=runtime, manager=layout_manager)
    unit.start()
    assert_inside_its_unit(unit, layout_manager.layout)
    first = unit.container_pid()
    layout_manager.run("kill", "-KILL", unit.show("MainPID")["MainPID"], check=True)
    unit.wait_gone(first)
    unit.wait("ActiveState", "active", timeout=60)
    assert_inside_its_unit(unit, layout_manager.layout)
    assert unit.stop() == {"ActiveState": "inactive", "Result": "success"}
    assert unit.leftovers() == []
