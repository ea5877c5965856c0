"""The exact extended-thinking budget a chat body asks for.

OpenAI's chat API has only ``reasoning_effort`` levels; LiteLLM's adds a
``thinking`` parameter, ``{"type": "enabled", "budget_tokens": N}``, and an
Anthropic Messages body's ``thinking`` becomes it. Providers that take a token
budget (Claude, Gemini 2.5) use the exact number rather than a level's.
"""

from __future__ import annotations

from typing import Any


def requested_thinking_budget(body: dict[str, Any]) -> int | None:
    """``thinking.budget_tokens`` of an enabled ``thinking`` parameter, or None when the body sets none."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    return budget if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0 else None
