"""Placeholder format and the per-request vault that maps placeholders back to originals.

Format: ``[[KIND_N]]`` (e.g. ``[[EMAIL_1]]``). Double square brackets with upper-case letters, an
underscore and digits do not occur as syntax in the languages Cursor sends (angle brackets and
single brackets do), contain no character that needs escaping in JSON, and survive tokenizers
intact. If a prompt already contains a token of this shape, its number is reserved for the
request, so a token the model copies from the prompt is never mistaken for one of ours: the
restorer only replaces tokens the vault issued and leaves every other token as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PLACEHOLDER_RE = re.compile(r"\[\[([A-Z]+)_([1-9][0-9]{0,5})\]\]")


def mask_token(kind: str) -> str:
    """The irreversible replacement used by the ``mask`` policy, e.g. ``[[EMAIL]]``."""
    return f"[[{kind}]]"


def placeholder_tokens_in(texts: Iterable[str]) -> set[str]:
    """Placeholder-shaped tokens already present in ``texts`` (so none of ours reuses them)."""
    found: set[str] = set()
    for text in texts:
        if "[[" in text:
            found.update(match.group() for match in PLACEHOLDER_RE.finditer(text))
    return found


class Vault:
    """Stable placeholders for one request: the same value always gets the same placeholder.

    ``reserved`` holds tokens that already appear in the request; numbering skips them.
    ``mapping`` (placeholder -> original) is what restoration needs and all it needs.
    """

    __slots__ = ("_by_value", "_next", "_reserved", "mapping")

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.mapping: dict[str, str] = {}
        self._by_value: dict[str, str] = {}
        self._next: dict[str, int] = {}
        self._reserved = frozenset(reserved)

    def placeholder_for(self, kind: str, value: str) -> str:
        existing = self._by_value.get(value)
        if existing is not None:
            return existing
        number = self._next.get(kind, 1)
        token = f"[[{kind}_{number}]]"
        while token in self._reserved:
            number += 1
            token = f"[[{kind}_{number}]]"
        self._next[kind] = number + 1
        self._by_value[value] = token
        self.mapping[token] = value
        return token
