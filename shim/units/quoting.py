"""Writing values into unit files (pure): systemd's quoting, ``%`` specifiers and ``$``.

systemd expands ``%x`` specifiers in most settings and ``$VAR`` in command lines, and
splits a command line into words on whitespace, with C-style quoting (systemd.service(5),
"Command lines"). Every value the generator writes is meant literally, so each is escaped
for what its setting does with it. A line break cannot be written at all: it would end the
setting, and the rest of the value would be read as settings of its own.
"""

from __future__ import annotations

from shim.errors import UsageError

# Words made only of these go out unquoted: what paths, flags and IDs are usually made of.
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")


def check_one_line(value: str, what: str) -> str:
    """``value`` unchanged, or UsageError if it holds a control character."""
    bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise UsageError(f"{what} {value!r}: control characters (here {bad!r}) cannot be written into a unit file")
    return value


def literal(value: str) -> str:
    """A setting's value with its specifiers disarmed: ``%`` becomes ``%%``."""
    return value.replace("%", "%%")


def exec_word(word: str) -> str:
    """One word of an ``Exec*=`` command line, read back by systemd exactly as given."""
    escaped = literal(word).replace("$", "$$")
    if word == ";":
        return "\\;"  # a lone ';' separates commands; escaped, it is an argument
    if word and all(c in _PLAIN for c in word):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(argv: list[str]) -> str:
    return " ".join(exec_word(word) for word in argv)


def path_list_entry(path: str) -> str:
    """One path in a space-separated path list (``RequiresMountsFor=``)."""
    escaped = literal(path)
    if all(c in _PLAIN for c in path):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
