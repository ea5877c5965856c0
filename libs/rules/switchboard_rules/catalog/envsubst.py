"""``${VAR}`` expansion in catalog values, remembering which variables were missing.

A deployment whose credential refers to an unset variable is not an error: the
shipped default config lists every provider, and only those whose keys are in
the environment go live.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: Any, missing: set[str], env: Mapping[str, str] | None = None) -> Any:
    """Expands ``${VAR}`` and ``${VAR:-default}`` in every string of a YAML tree."""
    env = os.environ if env is None else env
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            missing.add(name)
            return ""

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [expand(v, missing, env) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, missing, env) for k, v in value.items()}
    return value
