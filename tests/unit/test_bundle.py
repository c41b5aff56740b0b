"""config.json checks and the effective configuration (pure)."""

import json

import pytest
from hypothesis import given, strategies as st

from shim.bundle.config import Bundle, parse_config
from shim.bundle.effective import get_env, rebase_on, set_env
from shim.errors import ShimError

GOOD = {"ociVersion": "1.0.2", "process": {"args": ["sh"], "env": ["A=1"]}, "root": {"path": "rootfs"},
        "mounts": [{"destination": "/x", "type": "bind", "source": "data", "options": ["rbind"]},
                   {"destination": "/y", "source": "rel", "options": ["bind", "ro"]},
                   {"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/abs", "type": "bind", "source": "/abs"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}]}}


def parse(obj) -> dict:
    return parse_config(json.dumps(obj).encode(), "/b/config.json")


def test_good_config():
    assert parse(GOOD)["process"]["args"] == ["sh"]


@pytest.mark.parametrize("raw, fragment", [
    (b"{", "invalid JSON at line 1 column 2"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[]", "the top level must be an object"),
    (b"{}", 'no "process" object'),
    (b'{"process": {"args": []}, "root": {"path": "r"}}', "process.args must be a non-empty list of strings"),
    (b'{"process": {"args": [1]}, "root": {"path": "r"}}', "process.args must be a non-empty list"),
    (b'{"process": {"args": [""]}, "root": {"path": "r"}}', "process.args must be a non-empty list"),
    (b'{"process": {"args": ["sh"], "env": "A=1"}, "root": {"path": "r"}}', "process.env must be a list"),
    (b'{"process": {"args": ["sh"], "terminal": "yes"}, "root": {"path": "r"}}', "process.terminal must be true or false"),
    (b'{"process": {"args": ["sh"]}}', "root.path must be a non-empty string"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "mounts": {}}', "mounts must be a list of objects"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "mounts": [1]}', "mounts must be a list of objects"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "mounts": [{}]}', "every entry of mounts needs a string destination"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "linux": {"namespaces": "pid"}}', "linux.namespaces must be a list"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "linux": {"namespaces": [{"type": 1}]}}', "needs a string type"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "linux": {"uidMappings": [{"containerID": "0"}]}}', "integer containerID"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "annotations": []}', "annotations must be an object"),
    (b'{"process": {"args": ["sh"]}, "root": {"path": "r"}, "linux": []}', "linux must be an object"),
])
def test_bad_configs_name_file_and_field(raw, fragment):
    with pytest.raises(ShimError) as e:
        parse_config(raw, "/b/config.json")
    assert str(e.value).startswith("/b/config.json: ")
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(
                        st.sampled_from(["process", "args", "root", "path", "env", "linux", "mounts", "x"]),
                        children, max_size=4), max_leaves=12))
def test_any_json_is_accepted_or_refused_with_one_line(document):
    try:
        parse_config(json.dumps(document).encode(), "c.json")
    except ShimError as e:
        assert "\n" not in str(e)


def test_rebase_makes_bundle_paths_absolute_and_leaves_the_original_alone():
    config = parse(GOOD)
    effective = rebase_on(config, "/b")
    assert effective["root"]["path"] == "/b/rootfs"
    sources = [m["source"] for m in effective["mounts"]]
    assert sources == ["/b/data", "/b/rel", "proc", "/abs"]
    assert config["root"]["path"] == "rootfs"  # a copy: the user's config is untouched


def test_env_edits():
    config = parse(GOOD)
    set_env(config, "A", "2")
    set_env(config, "B", "x=y")
    assert config["process"]["env"] == ["A=2", "B=x=y"]
    assert get_env(config, "B") == "x=y" and get_env(config, "C") is None


def test_namespaces():
    bundle = Bundle("/b", parse(GOOD))
    assert bundle.has_namespace("pid")
    assert not bundle.has_namespace("network")  # joins an existing one
    assert not bundle.has_namespace("mount")
