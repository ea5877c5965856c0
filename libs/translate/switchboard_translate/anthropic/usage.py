"""Token usage between the two dialects.

Anthropic's ``input_tokens`` counts only the uncached part of the prompt: cache
reads (``cache_read_input_tokens``) and cache writes
(``cache_creation_input_tokens``) are reported beside it. OpenAI's
``prompt_tokens`` counts the whole prompt, with the cached part repeated in
``prompt_tokens_details.cached_tokens``. The cache-write count has no OpenAI
field; it travels as ``prompt_tokens_details.cache_creation_tokens`` so that
billing (cache writes cost more) and the reverse translation stay exact.
"""

from __future__ import annotations

from typing import Any


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def openai_usage_from_anthropic(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI ``usage`` object for an Anthropic ``usage`` object."""
    uncached = _int(usage.get("input_tokens"))
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    completion = _int(usage.get("output_tokens"))
    prompt = uncached + cache_read + cache_write
    details = usage.get("output_tokens_details") or {}
    reasoning = _int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_creation_tokens": cache_write},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def anthropic_usage_from_openai(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Anthropic ``usage`` object for an OpenAI ``usage`` object (zeros when there is none)."""
    usage = usage or {}
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details") or {}
    cache_read = _int(details.get("cached_tokens"))
    cache_write = _int(details.get("cache_creation_tokens"))
    return {
        "input_tokens": max(prompt - cache_read - cache_write, 0),
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    }


def merge_anthropic_usage(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Folds a stream's ``message_delta`` usage (cumulative counts) into what ``message_start`` said.

    Fields the delta leaves out or sets to null keep their earlier value.
    """
    merged = dict(current)
    for key, value in update.items():
        if value is not None:
            merged[key] = value
    return merged
