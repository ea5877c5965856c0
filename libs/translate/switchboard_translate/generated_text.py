"""How much text a stream of OpenAI chat chunks generated: what a cut stream is billed by.

When a stream ends without the provider's usage (the client went away, the
provider broke off), the gateway bills an estimate from what was delivered:
the generated text only (content, reasoning, refusals, tool names and
arguments), never the JSON envelope around it. The router estimates streams it
relays; the facade, a stream whose router was lost mid-way.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

#: Characters per token for estimates (the usual rule of thumb for English text and code).
CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def generated_chars(chunks: Iterable[bytes]) -> int:
    """Characters of generated text in ``chat.completion.chunk`` JSON documents (undecodable ones count 0)."""
    total = 0
    for raw in chunks:
        try:
            chunk = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(chunk, dict):
            continue
        for choice in chunk.get("choices") or ():
            delta = (choice.get("delta") or {}) if isinstance(choice, dict) else {}
            for key in ("content", "reasoning_content", "refusal"):
                value = delta.get(key)
                if isinstance(value, str):
                    total += len(value)
            for call in delta.get("tool_calls") or ():
                function = (call.get("function") or {}) if isinstance(call, dict) else {}
                total += len(function.get("name") or "") + len(function.get("arguments") or "")
    return total
