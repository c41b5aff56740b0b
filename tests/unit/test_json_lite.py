"""The start-up JSON reader and writer behave exactly like the json module."""

import json

import pytest
from hypothesis import given, strategies as st

from shim.bundle import json_lite

documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=20)


@given(documents)
def test_round_trip_matches_json(value):
    text = json.dumps(value)
    assert json_lite.loads(text) == json.loads(text)
    assert json_lite.dumps(value) == json.dumps(value, separators=(",", ":"))
    assert json_lite.copy(value) == value


@given(st.text(max_size=30))
def test_any_text_parses_like_json_or_fails_the_same_way(text):
    try:
        expected = json.loads(text)
    except ValueError as e:
        with pytest.raises(ValueError) as got:
            json_lite.loads(text)
        assert (got.value.lineno, got.value.colno) == (e.lineno, e.colno)
    else:
        assert json_lite.loads(text) == expected or expected != expected  # NaN


@pytest.mark.parametrize("text, message", [("", "Expecting value"), ("  ", "Expecting value"),
                                           ("{} x", "Extra data"), ("{not json", "Expecting property name")])
def test_errors(text, message):
    with pytest.raises(ValueError) as e:
        json_lite.loads(text)
    assert e.value.msg.startswith(message)


def test_copy_is_deep():
    value = {"a": [{"b": 1}]}
    copied = json_lite.copy(value)
    copied["a"][0]["b"] = 2
    assert value == {"a": [{"b": 1}]}
