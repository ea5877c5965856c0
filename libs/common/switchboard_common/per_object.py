"""Values derived from an object that does not change, computed once per object.

A client's key cache hands out the same verified ``KeyContext`` for as long as the key is unchanged, and a changed
key is a new object; what every request of the key derives from it (whether it has rate limits, the budgets it is
held against, the parts of its router requests) need not be derived again for each request. Reading a message's
fields costs far more than a Python attribute (each read looks the field up by name and builds a new Python value).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class PerObject(Generic[K, V]):
    """``derive(obj)``, remembered per object for as long as the object is here.

    Entries are keyed by the object's id and hold the object, so an id is not reused while its entry is here; the
    table is emptied when full (the objects of a key cache come and go with it, a few thousand at most). Only for
    objects nobody changes once handed out."""

    __slots__ = ("_derive", "_most", "_table")

    def __init__(self, derive: Callable[[K], V], most: int = 4096) -> None:
        self._derive = derive
        self._most = most
        self._table: dict[int, tuple[K, V]] = {}

    def of(self, obj: K) -> V:
        found = self._table.get(id(obj))
        if found is not None and found[0] is obj:
            return found[1]
        value = self._derive(obj)
        if len(self._table) >= self._most:
            self._table.clear()
        self._table[id(obj)] = (obj, value)
        return value


__all__ = ["PerObject"]
