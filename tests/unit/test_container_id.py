import pytest
from hypothesis import given, strategies as st

from shim import container_id
from shim.errors import UsageError


@pytest.mark.parametrize("good", ["a", "A", "0", "abc-DEF_1.2", "x" * 128, "9.9"])
def test_valid(good):
    assert container_id.validate(good) == good


@pytest.mark.parametrize("bad", ["", "../x", ".x", "-x", "_x", "a b", "a/b", "x" * 129, "é", "a\n", "a\0b", " a"])
def test_invalid(bad):
    with pytest.raises(UsageError):
        container_id.validate(bad)


@given(st.text(max_size=140))
def test_valid_ids_are_safe_path_components(text):
    if container_id.is_valid(text):
        assert "/" not in text and text not in (".", "..") and not text.startswith(("-", "."))
        assert 1 <= len(text) <= 128
