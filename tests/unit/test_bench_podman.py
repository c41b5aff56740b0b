"""The podman scenario's bookkeeping: where cgroups are mounted, and which containers'
CPU samples count."""

import os
import shutil
import subprocess
import time

from bench import podman as pm
from bench.attribution import Container
from bench.rounds import Samples
from bench.scenarios import podman as scenario
from bench.taskstats import Exit

MOUNTINFO = """\
25 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
36 33 0:31 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu
37 33 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
"""


def test_cgroup_mounts_of_both_versions():
    assert pm.cgroup_mounts(MOUNTINFO) == ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory"]


def container(monitor, start, server=None):
    return Container(monitor, frozenset({monitor - 1}), frozenset({"shim-conmon"}), start, server)


def test_cpu_samples_of_complete_containers_only_and_not_across_lost_records():
    exits = [
        Exit(11, 11, 9, "shim-conmon", 20000, True, 1.1), Exit(10, 10, 1, "python3", 3000, True, 1.5),  # complete
        Exit(20, 20, 1, "python3", 3000, False, 3.5),  # its monitor's last thread never came
        Exit(30, 30, 1, "python3", 3000, True, 5.5),  # records were lost meanwhile
        Exit(40, 40, 1, "python3", 4000, True, 7.5),  # a warm-up: dropped as a sample
    ]
    recorder = scenario.Recorder()
    for monitor, start, index in ((10, 1.0, 0), (20, 3.0, 1), (30, 5.0, 2), (40, 7.0, None)):
        recorder.add(scenario.CPU_RM, pm.SERVER, index, container(monitor, (start, start + 0.2), server=5),
                     start + 0.9)
    samples, parts = Samples(), {}
    counts = scenario.attribute(recorder, exits, [5.6], samples, parts)
    assert samples.series()[scenario.CPU_RM][pm.SERVER] == [23.0]
    assert scenario.mean_parts(parts, samples.series()) == {
        scenario.CPU_RM: {pm.SERVER: {"monitor": 3.0, "started by the engine": 20.0, "fork server": 0.0}}}
    assert counts[pm.SERVER] == {"incomplete": 1, "records lost": 1, "without the server": 1}


def test_records_long_after_a_container_are_not_its_own():
    reused = Exit(10, 10, 1, "python3", 9000, True, 1.0 + 0.9 + scenario.RECORDS_LAG + 1)
    recorder = scenario.Recorder()
    recorder.add(scenario.CPU_RM, pm.CONMON, 0, container(10, (1.0, 1.2)), 1.9)
    samples = Samples()
    scenario.attribute(recorder, [Exit(10, 10, 1, "conmon", 1000, True, 1.5), reused], [], samples)
    assert samples.series()[scenario.CPU_RM][pm.CONMON] == [1.0]


def test_a_process_name_and_state_from_its_stat_line():
    assert pm.name_and_state("4242 (shim-conmon-mon) Z 1 4242 4242 0 -1 4194560 0") == ("shim-conmon-mon", "Z")
    assert pm.name_and_state("7 (a) b (c)) S 1 7") == ("a) b (c)", "S")  # a name may hold ") "


def test_the_reaper_reaps_what_ended_but_leaves_podman_commands_to_their_caller(tmp_path):
    podman = tmp_path / "podman"  # named as the bench's own commands are
    shutil.copy("/bin/true", podman)
    reaper = pm.Reaper()
    try:
        other = subprocess.Popen(["/bin/sh", "-c", "exit 7"])
        own = subprocess.Popen([str(podman)])
        assert _until(lambda: not os.path.exists(f"/proc/{other.pid}")), "an ended child was never reaped"
        assert _until(lambda: _state(own.pid) == "Z")
        time.sleep(pm.POLL * 20)  # the reaper had its chances
        assert _state(own.pid) == "Z"
        assert own.wait(timeout=10) == 0  # its status went to its caller
    finally:
        reaper.close()


def _until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return pm.name_and_state(f.read())[1]
