import os

import pytest

from shim.demo import bundle
from shim.errors import ShimError


def test_static_busybox_detection():
    static = b"\x7fELF\x02\x01" + bytes(26) + (64).to_bytes(8, "little") + bytes(14) + (56).to_bytes(2, "little") \
        + (1).to_bytes(2, "little")
    header = static.ljust(64, b"\0") + (1).to_bytes(4, "little") + bytes(52)  # one PT_LOAD
    assert bundle.is_static_elf(header)
    dynamic = static.ljust(64, b"\0") + (3).to_bytes(4, "little") + bytes(52)  # PT_INTERP
    assert not bundle.is_static_elf(dynamic)
    assert not bundle.is_static_elf(b"#!/bin/sh\n" + bytes(100))
    with open("/bin/sh", "rb") as f:  # a dynamically linked system binary
        assert not bundle.is_static_elf(f.read(65536))


def test_missing_busybox_names_the_package(monkeypatch):
    monkeypatch.setattr(bundle, "BUSYBOX_CANDIDATES", ("/nonexistent/busybox",))
    with pytest.raises(ShimError) as e:
        bundle.find_static_busybox()
    assert "apt-get install busybox-static" in str(e.value)


def test_default_config_is_a_fresh_copy():
    a = bundle.default_config(["a"], "/r")
    a["process"]["env"].append("X=1")
    b = bundle.default_config(["b"], "/r")
    assert "X=1" not in b["process"]["env"] and b["process"]["args"] == ["b"] and b["root"]["path"] == "/r"
