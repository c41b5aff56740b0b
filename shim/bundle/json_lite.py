"""JSON on the start-up path, without importing the ``json`` package.

``import json`` costs about 5 ms here, nearly all of it ``re`` and ``enum``, which
``json.decoder`` needs for its pure-Python fallback and its regular expressions. The C
scanner and encoder that ``json`` itself uses (``_json``) need neither, so this module
drives them directly: same parser, same output. On a parse error the C scanner wants to
raise ``json.JSONDecodeError`` but only finds it if ``json`` is already imported (else a
SystemError comes out), so errors are parsed again by ``json`` itself, for its exact
message: a failing start-up may be slow. Where ``_json`` is missing, ``json`` does it all.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class JSONError(ValueError):
    """A parse error with a position, like ``json.JSONDecodeError``."""

    def __init__(self, msg: str, doc: str, pos: int) -> None:
        self.msg = msg
        self.pos = pos
        self.lineno = doc.count("\n", 0, pos) + 1
        self.colno = pos - doc.rfind("\n", 0, pos)
        super().__init__(f"{msg}: line {self.lineno} column {self.colno} (char {pos})")


class _ScanContext:
    """What the C scanner reads off ``json.JSONDecoder`` (the defaults of json.loads)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _default(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


if _json is not None:
    _scan = _json.make_scanner(_ScanContext())
    # markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan
    _encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def loads(text: str):
    """``json.loads(text)``; raises ValueError with ``msg``, ``lineno`` and ``colno``."""
    if _json is None:
        import json

        return json.loads(text)
    start = _skip(text, 0)
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise JSONError("Expecting value", text, e.value) from None
    except (SystemError, ValueError):
        import json

        return json.loads(text)  # raises json.JSONDecodeError, a ValueError
    end = _skip(text, end)
    if end != len(text):
        raise JSONError("Extra data", text, end)
    return value


def dumps(value) -> str:
    """``json.dumps(value, separators=(",", ":"))``."""
    if _json is None:
        import json

        return json.dumps(value, separators=(",", ":"))
    return "".join(_encode(value, 0))


def copy(value):
    """A deep copy of JSON data (dicts, lists, scalars), cheaper to import than ``copy``."""
    if isinstance(value, dict):
        return {k: copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy(v) for v in value]
    return value
