"""The shim's own messages: levels, prefixes, and the monotonic time on each line at debug
level (what ``python -m bench.profiles boot`` lays on its timeline)."""

import os
import re
import time

from shim.diagnostics import Diagnostics


def lines_written(**kwargs) -> list[str]:
    read_end, write_end = os.pipe()
    try:
        diagnostics = Diagnostics(fd=write_end, **kwargs)
        diagnostics.error("it broke")
        diagnostics.warning("careful")
        diagnostics.info("a step")
        diagnostics.debug("a detail\non two lines")
        os.close(write_end)
        write_end = -1
        return os.read(read_end, 65536).decode().splitlines()
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_levels_and_prefixes_without_timestamps():
    assert lines_written(level="info") == ["shim: it broke", "shim: warning: careful", "shim: a step"]
    assert lines_written(level="debug", name="shim-conmon")[-1] == "shim-conmon: debug: a detail on two lines"


def test_timestamps_only_at_debug_level():
    assert lines_written(level="info", timestamps=True) == ["shim: it broke", "shim: warning: careful", "shim: a step"]
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    lines = lines_written(level="debug", timestamps=True)
    after = time.clock_gettime(time.CLOCK_MONOTONIC)
    pattern = re.compile(r"^shim: \[(\d+\.\d{6})\] (.*)$")
    matches = [pattern.match(line) for line in lines]
    assert all(matches), lines
    assert [m[2] for m in matches] == ["it broke", "warning: careful", "a step", "debug: a detail on two lines"]
    stamps = [float(m[1]) for m in matches]
    assert stamps == sorted(stamps) and before - 1e-6 <= stamps[0] and stamps[-1] <= after + 1e-6
