"""The extended-thinking budget a chat body asks for, and the room it may take in the output bound.

OpenAI's chat API has only ``reasoning_effort`` levels; LiteLLM's adds a
``thinking`` parameter, ``{"type": "enabled", "budget_tokens": N}``, and an
Anthropic Messages body's ``thinking`` becomes it. Providers that take a token
budget (Claude, Gemini 2.5) use the exact number rather than a level's.

Both count thinking tokens as output: Anthropic refuses a ``budget_tokens`` not
below ``max_tokens``, and Gemini spends ``thinkingBudget`` out of
``maxOutputTokens``. The output bound is what billing held for the answer (see
:mod:`switchboard_translate.output_bound`), so a budget is always lowered to fit
inside it, leaving room for the answer, by :func:`thinking_budget_within`. Where
that leaves less than the least budget a model takes, the request is refused
before it is sent (:func:`no_room_for_thinking`), naming the output field and the
smallest value that works: thinking the client asked for is never dropped
because of it, nor left for the provider to refuse in its own words.
"""

from __future__ import annotations

from typing import Any

from switchboard_translate.errors import InvalidRequest
from switchboard_translate.output_bound import FIELDS as OUTPUT_FIELDS

#: The advice of a refused reasoning request, in chat terms; each dialect's error terms (Responses, Anthropic
#: Messages) carry its own wording of it, since there reasoning is asked for by one field, not two.
LEAVE_OUT_REASONING = "leave out reasoning_effort and thinking"


def requested_thinking_budget(body: dict[str, Any]) -> int | None:
    """``thinking.budget_tokens`` of an enabled ``thinking`` parameter, or None when the body sets none."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    return budget if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0 else None


def thinking_budget_within(wanted: int, max_tokens: int | None) -> int:
    """``wanted`` lowered below the output bound ``max_tokens`` (None or 0: no bound), so that thinking can never
    take the whole bound and the answer keeps at least a token of it; never below 0."""
    if not max_tokens or max_tokens <= 0:
        return max(wanted, 0)
    return max(min(wanted, max_tokens - 1), 0)


def no_room_for_thinking(body: dict[str, Any], thinker: str, least: int, bound: int, instead: str) -> InvalidRequest:
    """The 400 for ``body`` whose output bound ``bound`` leaves no room for the ``least`` budget ``thinker`` (such as
    "Claude thinks") thinks with; ``instead`` says how to ask for an answer without thinking. It names the output
    field the body sets (``max_tokens`` when it sets none: the bound was the gateway's)."""
    field = next((name for name in OUTPUT_FIELDS if body.get(name)), OUTPUT_FIELDS[1])
    return InvalidRequest(
        f"{thinker} with a budget of at least {least} tokens, spent out of {field}: {field} {bound} leaves no room "
        f"for it and the answer. Set {field} to at least {least + 1}, or {instead}", field)
