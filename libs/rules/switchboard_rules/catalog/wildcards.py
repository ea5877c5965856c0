"""Wildcard model names: a catalog entry named ``openai/*`` (or ``*``) serves every model id it matches.

Each ``*`` of an entry's name matches one or more characters of the name a client sends; a
deployment's ``model`` may use the same ``*`` marks, filled in order with what they matched::

    - name: openai/*            # a client's "openai/gpt-4o" ...
      deployments:
        - provider: openai
          model: "*"            # ... reaches OpenAI as "gpt-4o"

A name the catalog declares exactly always wins; among patterns, the most specific one does
(the most literal characters, then the first declared), as LiteLLM picks among its wildcard routes.
The router serves the resolved name and billing prices it (the model's own price and limits), both
through :func:`resolve`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

#: The mark of a wildcard.
STAR = "*"


def is_pattern(name: str) -> bool:
    return STAR in name


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    parts = pattern.split(STAR)
    body = "(.+?)".join(re.escape(part) for part in parts[:-1]) + ("(.+?)" if len(parts) > 1 else "")
    return re.compile("^" + body + re.escape(parts[-1]) + "$", re.DOTALL)


def match(pattern: str, name: str) -> tuple[str, ...] | None:
    """What each ``*`` of ``pattern`` matched in ``name``; None when it does not match (or is no pattern)."""
    if not is_pattern(pattern):
        return None
    found = _regex(pattern).match(name)
    return found.groups() if found is not None else None


def fill(template: str, captures: tuple[str, ...]) -> str:
    """``template`` with its ``*`` marks replaced, in order, by ``captures`` (a template without marks stays)."""
    if not captures or STAR not in template:
        return template
    pieces = template.split(STAR)
    out = pieces[0]
    for index, piece in enumerate(pieces[1:]):
        out += (captures[index] if index < len(captures) else STAR) + piece
    return out


def specificity(pattern: str) -> int:
    return len(pattern) - pattern.count(STAR)


def resolve(names: Iterable[str], name: str) -> tuple[str, tuple[str, ...]] | None:
    """The catalog entry that serves ``name`` and what its marks matched: the entry of that exact name (no
    captures), else the most specific pattern that matches; None when none does."""
    best: tuple[str, tuple[str, ...]] | None = None
    for candidate in names:
        if candidate == name:
            return candidate, ()
        captures = match(candidate, name)
        if captures is not None and (best is None or specificity(candidate) > specificity(best[0])):
            best = (candidate, captures)
    return best
