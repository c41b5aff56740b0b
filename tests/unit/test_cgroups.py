"""The container's cgroup below the shim's unit: parsing what the kernel says, deciding,
and the configuration edit (pure)."""

import pytest

from shim.cgroups.delegation import decide, is_marked_delegated, started_by_systemd
from shim.cgroups.membership import (CGROUP2, HYBRID, LEGACY, SYSTEMD_NAME, UNIFIED, Hierarchy, hierarchies,
                                     layout, parse_cgroup_mounts, parse_proc_cgroup, tracking)
from shim.cgroups.placement import (CgroupSetup, container_path, directories_to_take, place_container,
                                    placement_applies)
from shim.lifecycle.plan import Plan

UNIT = "/system.slice/web.service"

HYBRID_PROC = f"""\
12:hugetlb:/
9:name=systemd:{UNIT}
8:pids:{UNIT}
5:devices:/
4:memory:/process_api/abc
2:cpu,cpuacct:{UNIT}
1:freezer:/
0::{UNIT}
"""
HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpuacct,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 / /var/lib/my\\040mount rw - ext4 /dev/sda1 rw
"""


def test_proc_cgroup():
    paths = parse_proc_cgroup(HYBRID_PROC + "garbage\n3::\nx:y:/z\n")
    assert paths == {"hugetlb": "/", SYSTEMD_NAME: UNIT, "pids": UNIT, "devices": "/",
                     "memory": "/process_api/abc", "cpu,cpuacct": UNIT, "freezer": "/", CGROUP2: UNIT}
    assert parse_proc_cgroup("0::/init.scope\n") == {CGROUP2: "/init.scope"}


def test_cgroup_mounts():
    assert parse_cgroup_mounts(HYBRID_MOUNTS) == [
        ("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "/"), ("memory", "/sys/fs/cgroup/memory", "/"),
        ("devices", "/sys/fs/cgroup/devices", "/"), ("freezer", "/sys/fs/cgroup/freezer", "/"),
        ("pids", "/sys/fs/cgroup/pids", "/"), (SYSTEMD_NAME, "/sys/fs/cgroup/systemd", "/"),
        (CGROUP2, "/sys/fs/cgroup/unified", "/")]
    escaped = "60 23 0:50 / /srv/cg\\040two rw - cgroup2 cgroup2 rw\n"
    assert parse_cgroup_mounts(escaped) == [(CGROUP2, "/srv/cg two", "/")]


def test_hidden_mounts_are_left_out():
    """A new cgroup namespace mounts its own /sys/fs/cgroup over the old tree (the host's
    mounts, seen from inside as /..): only the new ones count."""
    old = "65 64 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs ro\n66 65 0:29 /.. /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    new = "110 65 0:53 / /sys/fs/cgroup rw - tmpfs cgroup_root rw\n111 110 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    assert parse_cgroup_mounts(old + new) == [("pids", "/sys/fs/cgroup/pids", "/")]
    assert parse_cgroup_mounts(old) == [("pids", "/sys/fs/cgroup/pids", "/..")]
    remounted = "70 23 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n71 23 0:39 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert parse_cgroup_mounts(remounted) == [(CGROUP2, "/sys/fs/cgroup", "/")]


def test_hierarchies_and_layouts():
    found = hierarchies(HYBRID_PROC, HYBRID_MOUNTS)
    assert Hierarchy("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", UNIT) in found
    assert len(found) == 7 and layout(found) == HYBRID  # hugetlb is not mounted here
    assert tracking(found, HYBRID) == Hierarchy(CGROUP2, "/sys/fs/cgroup/unified", UNIT)
    assert tracking(found, HYBRID).directory(UNIT) == f"/sys/fs/cgroup/unified{UNIT}"
    assert Hierarchy(CGROUP2, "/sys/fs/cgroup", "/").directory("/") == "/sys/fs/cgroup"

    legacy = hierarchies(HYBRID_PROC, "\n".join(l for l in HYBRID_MOUNTS.splitlines() if "unified" not in l))
    assert layout(legacy) == LEGACY and tracking(legacy, LEGACY).key == SYSTEMD_NAME
    unified = hierarchies(f"0::{UNIT}\n", "70 23 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert layout(unified) == UNIFIED and tracking(unified, UNIFIED).own_path == UNIT
    assert layout(hierarchies("4:memory:/\n", "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")) is None


def test_hierarchies_the_shim_cannot_place_in():
    # a bind of a subtree (as engines give containers without a cgroup namespace)
    bound = HYBRID_MOUNTS.replace("0:38 / /sys/fs/cgroup/unified", "0:38 /libpod /sys/fs/cgroup/unified")
    assert hierarchies(HYBRID_PROC, bound) is None
    # a cgroup outside the namespace's root
    assert hierarchies(HYBRID_PROC.replace(f"0::{UNIT}", "0::/../x"), HYBRID_MOUNTS) is None


@pytest.mark.parametrize("env, pid, systemd", [
    ({"SYSTEMD_EXEC_PID": "42"}, 42, True), ({"SYSTEMD_EXEC_PID": "41"}, 42, False),  # a child of the unit's process
    ({"INVOCATION_ID": "x"}, 42, False), ({}, 42, False),
])
def test_started_by_systemd(env, pid, systemd):
    assert started_by_systemd(env, pid) is systemd


def test_decide():
    found = hierarchies(HYBRID_PROC, HYBRID_MOUNTS)
    parent = decide(found, True, [None, None])
    assert (parent.path, parent.layout, parent.hierarchies) == (UNIT, HYBRID, found)
    assert decide(found, False, [b"1", None]).path == UNIT
    assert decide(found, False, [None, b"1\n"]).path == UNIT
    assert decide(found, False, [None, None]) is None and decide(found, False, [b"0", b""]) is None
    root = hierarchies(HYBRID_PROC.replace(UNIT, "/"), HYBRID_MOUNTS)
    assert decide(root, True, [b"1", b"1"]) is None  # never below the root cgroup
    assert decide(None, True, [b"1"]) is None and decide([], True, [b"1"]) is None
    assert not is_marked_delegated([]) and is_marked_delegated([None, b"1"])


@pytest.mark.parametrize("cgroups_path, runtime_args, applies", [
    (None, [], True), ("", [], True), ("ctr", [], True), ("a/b", [], True),
    ("/machine/ctr", [], False), ("machine.slice:libpod:ctr", [], False), ("../escape", [], False),
    ("a/../b", [], False), (7, [], False),
    (None, ["--systemd-cgroup"], False), (None, ["--cgroup-manager=systemd"], False),
    (None, ["--cgroup-manager", "systemd"], False), (None, ["--cgroup-manager", "cgroupfs"], True),
    (None, ["--debug", "--root", "/run/x"], True),
])
def test_placement_applies(cgroups_path, runtime_args, applies):
    config = {"linux": {}} if cgroups_path is None else {"linux": {"cgroupsPath": cgroups_path}}
    assert placement_applies(config, runtime_args) is applies
    if cgroups_path is None:
        assert placement_applies({}, runtime_args) is applies  # a config without "linux"


def test_only_a_shim_below_a_systemd_unit_looks(monkeypatch):
    from shim.cgroups import delegation
    from shim.lifecycle.plan import cgroup_parent_for

    class Bundle:
        config = {"linux": {}}

    asked = []
    parent = decide(hierarchies(HYBRID_PROC, HYBRID_MOUNTS), True, [])
    monkeypatch.setattr(delegation, "delegated_parent", lambda env, pid: asked.append(pid) or parent)
    assert cgroup_parent_for(Bundle(), [], {"PATH": "/bin"}, 7) is None and asked == []
    assert cgroup_parent_for(Bundle(), [], {"INVOCATION_ID": "x"}, 7) is parent
    assert cgroup_parent_for(Bundle(), [], {"SYSTEMD_EXEC_PID": "7"}, 7) is parent and asked == [7, 7]
    assert cgroup_parent_for(Bundle(), ["--systemd-cgroup"], {"SYSTEMD_EXEC_PID": "7"}, 7) is None


def test_container_path_and_the_edit():
    assert container_path(UNIT, {}, "web") == f"{UNIT}/container-web"
    assert container_path(UNIT + "/", {"linux": {"cgroupsPath": "a//b/"}}, "web") == f"{UNIT}/a/b"
    found = hierarchies(HYBRID_PROC, HYBRID_MOUNTS)
    config = {"linux": {"namespaces": []}}
    setup = place_container(config, "web", decide(found, True, []))
    assert config["linux"]["cgroupsPath"] == f"{UNIT}/container-web"
    assert isinstance(setup, CgroupSetup) and setup.container_path == f"{UNIT}/container-web"
    assert setup.systemd_leaf is None
    bare = {}
    place_container(bare, "x", decide(found, True, []))
    assert bare == {"linux": {"cgroupsPath": f"{UNIT}/container-x"}}


def test_directories_to_take():
    def exists(*paths):
        return lambda p: p == "/" or p in paths

    # systemd has the unit's cgroup in this hierarchy and the shim is in it: nothing to take
    assert directories_to_take(exists("/system.slice", UNIT), UNIT, UNIT) == ([], False)
    # not there at all (freezer): the shim makes the slice and the unit's directory
    assert directories_to_take(exists(), "/", UNIT) == (["/system.slice", UNIT], False)
    assert directories_to_take(exists("/system.slice"), "/", UNIT) == ([UNIT], False)
    # left by a shim that was killed: the unit's directory is taken over, to be removed
    assert directories_to_take(exists("/system.slice", UNIT), "/", UNIT) == ([], True)
    assert directories_to_take(exists("/system.slice", UNIT), "/process_api/x", UNIT) == ([], True)


def test_plan_renders_the_placement_and_carries_systemd_modes_cgroup():
    found = hierarchies(HYBRID_PROC, HYBRID_MOUNTS)
    config = {"process": {"args": ["/sbin/init"], "env": []}, "root": {"path": "/r"}, "mounts": [],
              "linux": {"namespaces": [{"type": "pid"}]}}
    plan = Plan(config, 15, True, systemd=True, cgroup_parent=decide(found, True, []))
    plan.cgroup_layout = HYBRID
    rendered, setup = plan.render("/run/shim/web", "web")
    path = f"{UNIT}/container-web"
    assert rendered["linux"]["cgroupsPath"] == path and "cgroupsPath" not in config["linux"]
    assert setup.container_path == path and setup.systemd_leaf == path
    bind = next(m for m in rendered["mounts"] if m["destination"] == "/sys/fs/cgroup/systemd")
    assert bind["source"] == f"/sys/fs/cgroup/systemd{path}"
    plan = Plan(config, 15, True, systemd=False, cgroup_parent=decide(found, True, []))
    assert plan.render("/run/shim/web", "web")[1].systemd_leaf is None
    assert Plan(config, 15, True).render("/run/shim/web", "web")[1] is None


def fake_tree(tmp_path, layout_name):
    """Plain directories standing in for cgroup mounts (prepare only mkdirs, copies the
    cpuset knobs and writes cgroup.procs)."""
    if layout_name == UNIFIED:
        (tmp_path / "v2" / "system.slice" / "web.service" / "shim").mkdir(parents=True)
        (tmp_path / "v2" / "system.slice" / "web.service" / "shim" / "cgroup.procs").write_text("")  # the kernel's
        return [Hierarchy(CGROUP2, str(tmp_path / "v2"), UNIT)]
    for h in ("systemd", "unified", "pids", "cpuset", "freezer"):
        (tmp_path / h).mkdir()
    for h in ("systemd", "unified", "pids"):  # systemd has the unit there
        (tmp_path / h / "system.slice" / "web.service").mkdir(parents=True)
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    (tmp_path / "freezer" / "system.slice" / "web.service").mkdir(parents=True)  # a killed shim's
    return [Hierarchy(SYSTEMD_NAME, str(tmp_path / "systemd"), UNIT), Hierarchy(CGROUP2, str(tmp_path / "unified"), UNIT),
            Hierarchy("pids", str(tmp_path / "pids"), UNIT), Hierarchy("cpuset", str(tmp_path / "cpuset"), "/"),
            Hierarchy("freezer", str(tmp_path / "freezer"), "/")]


def test_prepare_on_v1_takes_what_is_not_systemds(tmp_path):
    from shim.cgroups.delegation import CgroupParent
    from shim.cgroups.placement import prepare
    from shim.systemd.cgroups import remove_cgroups

    setup = CgroupSetup(CgroupParent(UNIT, HYBRID, fake_tree(tmp_path, HYBRID)), f"{UNIT}/container-web")
    made = []
    prepare(setup, made)
    cpuset = tmp_path / "cpuset" / "system.slice"
    assert sorted(made) == sorted([str(cpuset), str(cpuset / "web.service"),
                                   str(tmp_path / "freezer" / "system.slice" / "web.service")])
    assert (cpuset / "cpuset.cpus").read_text() == "0-1\n" and (cpuset / "web.service" / "cpuset.mems").read_text() == "0\n"
    for knob in cpuset.rglob("cpuset.*"):
        knob.unlink()  # in a cgroup file system they go with their directory
    remove_cgroups(made + [str(tmp_path / "pids" / "gone")])
    assert not cpuset.exists() and not (tmp_path / "freezer" / "system.slice" / "web.service").exists()
    assert (tmp_path / "pids" / "system.slice" / "web.service").is_dir()  # systemd's: untouched


def test_prepare_on_v2_moves_the_shim_into_a_leaf(tmp_path):
    from shim.cgroups.delegation import CgroupParent
    from shim.cgroups.placement import prepare

    setup = CgroupSetup(CgroupParent(UNIT, UNIFIED, fake_tree(tmp_path, UNIFIED)), f"{UNIT}/container-web")
    made = []
    prepare(setup, made)
    assert made == []  # the shim's leaf is systemd's to remove, with the unit
    assert (tmp_path / "v2" / "system.slice" / "web.service" / "shim" / "cgroup.procs").read_text() == "0"


def test_prepare_failures_name_the_cgroup(tmp_path):
    from shim.cgroups.delegation import CgroupParent
    from shim.cgroups.placement import prepare
    from shim.errors import ShimError

    hierarchy = Hierarchy("freezer", str(tmp_path / "missing"), "/")
    made = []
    with pytest.raises(ShimError, match=f"cgroup {tmp_path}/missing/system.slice: cannot create: No such file"):
        prepare(CgroupSetup(CgroupParent(UNIT, LEGACY, [hierarchy]), f"{UNIT}/container-web"), made)
    assert made == []
    with pytest.raises(ShimError, match="cannot move the shim there"):
        prepare(CgroupSetup(CgroupParent(UNIT, UNIFIED, [Hierarchy(CGROUP2, str(tmp_path / "v2"), UNIT)]), ""), made)
