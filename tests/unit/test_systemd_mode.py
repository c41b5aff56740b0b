"""systemd detection and the configuration edits of systemd mode (pure)."""

import pytest

from shim.lifecycle.plan import choose_stop_signal
from shim.systemd.config import HYBRID, LEGACY, UNIFIED, apply_systemd_mode, container_uuid
from shim.systemd.detect import is_systemd_payload, payload_command, systemd_mode

import signal


@pytest.mark.parametrize("args, systemd", [
    (["/sbin/init"], True), (["/usr/sbin/init"], True), (["/usr/local/sbin/init"], True),
    (["/lib/systemd/systemd"], True), (["systemd", "--log-level=debug"], True),
    (["/bin/sh", "-c", "/sbin/init"], True), (["/bin/sh", "-c", "/usr/lib/systemd/systemd --unit=x"], True),
    (["sh", "-c", "/sbin/init"], True),
    (["/bin/sh", "-c", "echo /sbin/init"], False), (["/bin/init"], False), (["/sbin/init.sh"], False),
    (["/bin/bash", "-c", "/sbin/init"], False), (["systemd-notify"], False), (["/bin/sh", "-c", ""], False),
    (["/bin/sh", "/sbin/init"], False),
])
def test_detection(args, systemd):
    assert is_systemd_payload(args) is systemd


def test_modes():
    assert systemd_mode("always", ["/bin/true"]) and not systemd_mode("false", ["/sbin/init"])
    assert systemd_mode("true", ["/sbin/init"]) and not systemd_mode("true", ["/bin/true"])
    assert payload_command(["/bin/sh", "-c", "  /sbin/init  --x"]) == "/sbin/init"


def base():
    return {"process": {"args": ["/sbin/init"], "env": ["PATH=/bin"]}, "root": {"path": "/r"},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                       {"destination": "/run/secrets", "type": "bind", "source": "/s"},
                       {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}


def destinations(config):
    return [m["destination"] for m in config["mounts"]]


def test_hybrid_host():
    config = base()
    assert apply_systemd_mode(config, "c1", HYBRID) == "/c1"
    assert destinations(config) == ["/proc", "/tmp", "/run", "/run/secrets", "/run/lock", "/var/log/journal",
                                    "/sys/fs/cgroup", "/sys/fs/cgroup/systemd"]
    by_dest = {m["destination"]: m for m in config["mounts"]}
    assert by_dest["/tmp"]["source"] == "tmpfs" and "options" not in by_dest["/tmp"]  # the bundle's, untouched
    assert by_dest["/run"]["options"][:3] == ["rw", "nosuid", "nodev"]
    assert by_dest["/sys/fs/cgroup"]["type"] == "tmpfs"  # no second mount of type cgroup on v1
    assert by_dest["/sys/fs/cgroup/systemd"] == {
        "destination": "/sys/fs/cgroup/systemd", "type": "bind", "source": "/sys/fs/cgroup/systemd/c1",
        "options": ["rbind", "rw", "nosuid", "nodev", "noexec"]}
    assert config["linux"]["cgroupsPath"] == "/c1"
    assert {"type": "cgroup"} in config["linux"]["namespaces"]
    assert config["process"]["env"] == ["PATH=/bin", "container=shim", f"container_uuid={container_uuid('c1')}"]


def test_unified_host():
    config = base()
    assert apply_systemd_mode(config, "c1", UNIFIED) is None
    cgroup = [m for m in config["mounts"] if m["destination"].startswith("/sys/fs/cgroup")]
    assert cgroup == [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["rw", "nosuid", "noexec", "nodev"]}]
    assert "cgroupsPath" not in config["linux"]


def test_bundle_values_win():
    config = base()
    config["process"]["env"] += ["container=podman", "container_uuid=0123"]
    config["linux"]["cgroupsPath"] = "machine/c1"
    config["linux"]["namespaces"].append({"type": "cgroup"})
    config["mounts"].append({"destination": "/run/", "type": "tmpfs", "source": "mine"})
    assert apply_systemd_mode(config, "c1", LEGACY) == "/machine/c1"
    assert config["process"]["env"] == ["PATH=/bin", "container=podman", "container_uuid=0123"]
    assert [m["source"] for m in config["mounts"] if m["destination"].rstrip("/") == "/run"] == ["mine"]
    assert config["linux"]["namespaces"].count({"type": "cgroup"}) == 1


def test_uuid_is_stable_hex():
    assert container_uuid("c1") == container_uuid("c1") != container_uuid("c2")
    assert len(container_uuid("c1")) == 32 and int(container_uuid("c1"), 16) >= 0


def test_stop_signal_order():
    rt3 = signal.SIGRTMIN + 3
    assert choose_stop_signal(None, {}, systemd=True) == rt3
    assert choose_stop_signal(None, {}, systemd=False) == signal.SIGTERM
    assert choose_stop_signal(signal.SIGINT, {"org.opencontainers.image.stopSignal": "USR1"}, True) == signal.SIGINT
    assert choose_stop_signal(None, {"org.opencontainers.image.stopSignal": "SIGUSR1"}, True) == signal.SIGUSR1
