"""Which public models a key may use: exact names, wildcards and access groups.

The router is the one place that knows the catalog, so it is where a key's
model list is interpreted. A pattern is a public name (``gpt-4o``), a glob
(``anthropic/*``), an access group name defined in the config, or ``*``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase


def expand_patterns(patterns: Sequence[str], groups: Mapping[str, Sequence[str]]) -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        if pattern in groups:
            out.extend(groups[pattern])
        else:
            out.append(pattern)
    return out


def is_allowed(model: str, patterns: Sequence[str], groups: Mapping[str, Sequence[str]]) -> bool:
    """An empty list allows every model."""
    if not patterns:
        return True
    for pattern in expand_patterns(patterns, groups):
        if pattern == model or pattern in ("*", "all-models") or ("*" in pattern and fnmatchcase(model, pattern)):
            return True
    return False


def allowed_models(models: Iterable[str], patterns: Sequence[str], groups: Mapping[str, Sequence[str]]) -> list[str]:
    return [m for m in models if is_allowed(m, patterns, groups)]
