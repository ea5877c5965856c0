"""A deployment's explicit prompt-cache settings, read alike by the router (which makes the caches) and by
billing (which prices their making).

``prompt_cache: explicit`` (Gemini models only, checked when the router's catalog loads) has the gateway keep
a conversation's repeated prefix in a provider cache entry that lives ``prompt_cache_ttl`` seconds. The
lifetime is part of the price: storage is billed by the hour for all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXPLICIT = "explicit"
#: How long an entry lives when the deployment sets no ``prompt_cache_ttl``, seconds.
DEFAULT_TTL_SECONDS = 300
#: The shortest and longest lifetimes a deployment may set, seconds.
MIN_TTL_SECONDS, MAX_TTL_SECONDS = 60, 86_400


def explicit_cache_ttl(options: Mapping[str, Any]) -> int | None:
    """The lifetime, seconds, of the explicit caches a deployment's settings ask for; None when they ask for none."""
    if options.get("prompt_cache") != EXPLICIT:
        return None
    ttl = options.get("prompt_cache_ttl")
    return DEFAULT_TTL_SECONDS if ttl is None else int(ttl)
