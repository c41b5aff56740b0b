"""A small, table-driven command-line parser (a pure function).

Why not argparse: conmon's callers pass values that start with a dash as separate words
(``--runtime-arg --log-format=json``), which argparse refuses; argparse also exits with 2
and prints usage, where the shim owes one ``shim: ...`` line and exit code 125. This parser
follows GNU getopt's rules instead: a flag that takes a value takes the next word verbatim,
``--name=value`` and ``-nVALUE`` work, short flags bundle (``-it``), ``--`` ends the flags,
and positionals may come anywhere. Unlike getopt it accepts no abbreviations, so adding a
flag can never change what an existing command line means.
"""

from __future__ import annotations

from shim.errors import UsageError


class Option:
    """One flag: ``--long`` (and ``-s``), taking a value when it has a metavar."""

    __slots__ = ("long", "short", "metavar", "help", "repeat", "dest")

    def __init__(self, long: str, short: str | None = None, *, metavar: str | None = None,
                 help: str = "", repeat: bool = False, dest: str | None = None) -> None:
        self.long = long
        self.short = short
        self.metavar = metavar
        self.help = help
        self.repeat = repeat
        self.dest = dest or long.replace("-", "_")

    @property
    def takes_value(self) -> bool:
        return self.metavar is not None

    def spelling(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"


def parse(argv: list[str], options: list[Option]) -> tuple[dict[str, object], list[str]]:
    """Split ``argv`` into flag values (by ``dest``) and positional words.

    A repeatable flag collects a list; a flag without a value is ``True``; the last of a
    repeated single-valued flag wins. Raises UsageError naming the offending word.
    """
    by_long = {o.long: o for o in options}
    by_short = {o.short: o for o in options if o.short}
    values: dict[str, object] = {}
    positionals: list[str] = []

    def store(option: Option, value: object) -> None:
        if option.repeat:
            values.setdefault(option.dest, []).append(value)  # type: ignore[union-attr]
        else:
            values[option.dest] = value

    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            positionals.extend(argv[i:])
            break
        if word.startswith("--"):
            name, has_inline, inline = word[2:].partition("=")
            option = by_long.get(name)
            if option is None:
                raise UsageError(f"unknown flag --{name}")
            if not option.takes_value:
                if has_inline:
                    raise UsageError(f"flag --{name} takes no value")
                store(option, True)
            elif has_inline:
                store(option, inline)
            elif i < len(argv):
                store(option, argv[i])
                i += 1
            else:
                raise UsageError(f"flag --{name} needs a value ({option.metavar})")
        elif word.startswith("-") and word != "-":
            j = 1
            while j < len(word):
                option = by_short.get(word[j])
                if option is None:
                    raise UsageError(f"unknown flag -{word[j]}")
                j += 1
                if not option.takes_value:
                    store(option, True)
                    continue
                if j < len(word):
                    store(option, word[j:])
                elif i < len(argv):
                    store(option, argv[i])
                    i += 1
                else:
                    raise UsageError(f"flag -{option.short} needs a value ({option.metavar})")
                break
        else:
            positionals.append(word)
    return values, positionals


def format_help(usage: str, summary: str, options: list[Option], epilog: str = "") -> str:
    """Render ``--help`` text: usage line, summary, one aligned entry per flag, epilog."""
    rows = []
    for o in options:
        left = o.spelling() + (f" {o.metavar}" if o.takes_value else "")
        rows.append((left, o.help + (" (repeatable)" if o.repeat else "")))
    width = max((len(left) for left, _ in rows), default=0)
    lines = [f"usage: {usage}", "", summary, ""]
    if rows:
        lines.append("options:")
        for left, text in rows:
            lines.append(f"  {left.ljust(width)}  {text}".rstrip())
    if epilog:
        lines += ["", epilog.rstrip()]
    return "\n".join(lines) + "\n"
