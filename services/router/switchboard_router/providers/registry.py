"""Which adapter serves which ``provider:`` name of the config."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from switchboard_router.providers.anthropic import AnthropicAdapter
from switchboard_router.providers.base import ProviderAdapter
from switchboard_router.providers.bedrock import BedrockAdapter
from switchboard_router.providers.gemini import GeminiAdapter
from switchboard_router.providers.openai_compat import FLAVOURS, OpenAICompatAdapter
from switchboard_router.providers.vertex import VertexAdapter

#: Adapters with a wire format of their own (every other name is an OpenAI-compatible flavour).
NATIVE: dict[str, Callable[[], ProviderAdapter]] = {
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "bedrock": BedrockAdapter,
    "vertex": VertexAdapter,
}


def known_providers() -> tuple[str, ...]:
    return tuple(sorted({*FLAVOURS, *NATIVE}))


@cache
def adapter_for(provider: str) -> ProviderAdapter:
    if provider in NATIVE:
        return NATIVE[provider]()
    if provider in FLAVOURS:
        return OpenAICompatAdapter(provider)
    raise KeyError(f"no adapter for provider {provider!r}")
