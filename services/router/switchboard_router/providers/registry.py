"""Which adapter serves which ``provider:`` name of the config."""

from __future__ import annotations

from functools import cache

from switchboard_router.providers.base import ProviderAdapter
from switchboard_router.providers.openai_compat import FLAVOURS, OpenAICompatAdapter


def known_providers() -> tuple[str, ...]:
    return tuple(sorted(FLAVOURS))


@cache
def adapter_for(provider: str) -> ProviderAdapter:
    if provider in FLAVOURS:
        return OpenAICompatAdapter(provider)
    raise KeyError(f"no adapter for provider {provider!r}")
