"""Small typed records, as h11's events are: the actions a state machine emits, the lines a
parser reads, a value a pure function returns.

A subclass names its fields in ``__slots__`` and sets them in ``__init__``; equality and
``repr`` follow from the slots. Not ``dataclasses``: importing it costs ``inspect`` and
``re`` on the way to a running container.
"""

from __future__ import annotations


class Record:
    __slots__ = ()

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._fields() == self._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(value) for value in self._fields())})"
