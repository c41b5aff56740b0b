"""Fixtures for the whole suite: real runtimes, a cached busybox root filesystem, the shim
harness, and the rule that a test which leaves anything behind fails."""

from __future__ import annotations

import os

import pytest

from shim.process.subreaper import set_subreaper
from tests.helpers.harness import ShimHarness
from tests.helpers.rootfs import cached_busybox_rootfs
from tests.helpers.runtimes import runtime_path

RUNTIMES = ["runc", "crun"]


def pytest_configure(config):
    # Whatever a shim leaves behind is re-parented to the test process, where the harness
    # finds it (see tests/helpers/harness.py).
    set_subreaper(True)


@pytest.fixture(scope="session")
def runtime_scratch(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("runtimes"))


@pytest.fixture(scope="session")
def busybox_rootfs() -> str:
    if os.geteuid() != 0:
        pytest.skip("integration tests run containers and need root")
    from shim.errors import ShimError

    try:
        return cached_busybox_rootfs()
    except ShimError as e:  # busybox-static missing: say so, rather than error every test
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def debian_rootfs() -> str:
    """Debian bookworm with systemd (debootstrap, cached outside the repository)."""
    from tests.helpers.debian_rootfs import cached_debian_systemd_rootfs, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    return cached_debian_systemd_rootfs()


@pytest.fixture(scope="session")
def host_systemd(tmp_path_factory):
    """A real systemd service manager: PID 1 where it is systemd, else a confined user
    manager (tests/helpers/host_systemd.py)."""
    from tests.helpers.host_systemd import manager_for_tests, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    manager = manager_for_tests(str(tmp_path_factory.mktemp("host-systemd")))
    manager.start()
    yield manager
    manager.stop()


@pytest.fixture(params=RUNTIMES)
def runtime(request, runtime_scratch) -> str:
    path, reason = runtime_path(request.param, runtime_scratch)
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture
def runc(runtime_scratch) -> str:
    path, reason = runtime_path("runc", runtime_scratch)
    if path is None:
        pytest.skip(reason)
    return path


def _checked_harness(runtime: str, rootfs: str, tmp_path):
    harness = ShimHarness(runtime, rootfs, str(tmp_path))
    yield harness
    problems = harness.leftovers()
    assert not problems, "left behind: " + "; ".join(problems)


@pytest.fixture
def shim(runtime, busybox_rootfs, tmp_path):
    """The shim on each runtime (runc, crun); fails the test if anything was left behind."""
    yield from _checked_harness(runtime, busybox_rootfs, tmp_path)


@pytest.fixture
def shim_runc(runc, busybox_rootfs, tmp_path):
    """The shim on runc only, for tests about the shim rather than the runtime."""
    yield from _checked_harness(runc, busybox_rootfs, tmp_path)


@pytest.fixture
def listener(tmp_path):
    """A host-side NOTIFY_SOCKET that records raw datagrams and their senders."""
    from tests.helpers.notify_listener import NotifyListener

    listener = NotifyListener(str(tmp_path / "host-notify.sock"))
    yield listener
    listener.close()


# On CI every test must run: HOST-NOTES lists what works there, so a skip means a broken
# machine or a broken test, and must not look green.
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("SHIM_TESTS_NO_SKIP") == "1" and _skipped:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("SHIM_TESTS_NO_SKIP") == "1" and _skipped:
        terminalreporter.write_line(
            f"FAILING: {len(_skipped)} tests skipped while SHIM_TESTS_NO_SKIP=1 (CI runs everything)", red=True)


@pytest.fixture(scope="session")
def journal():
    """A real systemd-journald in a private mount namespace (tests/helpers/journal.py)."""
    from tests.helpers.journal import PrivateJournal, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    journal = PrivateJournal()
    yield journal
    journal.close()


@pytest.fixture(scope="session", params=["fork-server", "no-fork-server"])
def podman_session(request, tmp_path_factory, busybox_rootfs, journal):
    """podman with the shim as its monitor, on storage of its own, the busybox image
    imported, running beside a real journald (see tests/helpers/podman.py); every podman
    test runs with monitors forked by the fork server and with monitors on their own."""
    from tests.helpers.podman import BUSYBOX_IMAGE, Podman, installed_monitor, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    podman = Podman(str(tmp_path_factory.mktemp("podman")), installed_monitor(), namespace=journal,
                    fork_server=request.param == "fork-server")
    podman.import_rootfs(busybox_rootfs, BUSYBOX_IMAGE)
    yield podman
    podman.remove_everything()
    podman("system", "reset", "--force", check=False, timeout=300)
    podman.stop_fork_servers()


@pytest.fixture
def podman(podman_session):
    """The session's podman; after the test, every container is removed and every monitor
    must have ended (they are this process's children: it is a subreaper). The fork
    server, if the session has one, lives on for the next test."""
    from tests.helpers.harness import child_pids
    from tests.helpers.podman import monitors_gone

    baseline = child_pids()
    yield podman_session
    podman_session.remove_everything()
    problems = monitors_gone(baseline | set(podman_session.fork_servers()))
    assert not problems, "left behind: " + "; ".join(problems)


@pytest.fixture
def engine(runc, busybox_rootfs, tmp_path):
    """Sessions against a busybox bundle; every container removed and every monitor
    reaped at the end (the test process is their subreaper)."""
    import subprocess

    from tests.helpers.engine import MONITORS, Session, monitor_args
    from tests.helpers.harness import child_pids, new_container_id
    from tests.helpers.runtimes import container_known, force_delete
    from tests.helpers.oci import make_config, write_bundle
    from tests.helpers.podman import monitors_gone

    baseline = child_pids()
    used_ids: list[str] = []
    sessions: list[Session] = []

    class Engine:
        runtime = runc
        used = used_ids

        def bundle(self, args: list[str], name: str = "bundle") -> str:
            return write_bundle(str(tmp_path / name), make_config(args, rootfs=busybox_rootfs))

        def session(self, monitor: str, args: list[str], bundle: str, *extra: str, legacy: bool = False, **kwargs):
            cid = new_container_id("engine")
            used_ids.append(cid)
            work = tmp_path / cid
            (work / "exits").mkdir(parents=True)
            argv = monitor_args(cid, self.runtime, bundle, str(work), *extra)
            if legacy:  # CRI-O passes no --api-version
                argv = argv[2:]
            session = Session(MONITORS[monitor], argv, **kwargs)
            session.cid, session.work = cid, str(work)
            sessions.append(session)
            return session

        def runtime_start(self, cid: str) -> None:
            subprocess.run([runc, "start", cid], check=True, capture_output=True)

    yield Engine()
    for session in sessions:
        session.close()
    for cid in used_ids:
        if container_known(runc, cid):
            force_delete(runc, cid)
    problems = monitors_gone(baseline)
    assert not problems, problems
