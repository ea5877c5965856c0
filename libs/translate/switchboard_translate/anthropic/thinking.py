"""Claude's extended thinking: whether a chat body turns it on, with what budget, and what it rules out.

One rule for every API that serves Claude: Anthropic's Messages API (and Vertex
AI's, which is the same body) sends the budget as ``thinking.budget_tokens``,
Bedrock's Converse API as ``additionalModelRequestFields.thinking``; Claude
validates it the same way behind both. The budget is the exact one the body asks
for (``thinking.budget_tokens``), else ``reasoning_effort``'s, kept below the
output bound (:func:`switchboard_translate.thinking.thinking_budget_within`).

Thinking is left off where Claude would refuse the request with it: a budget
below :data:`MIN_THINKING_BUDGET` (the bound leaves no room for it), a forced tool
choice, or a conversation whose last assistant turn calls tools without the
signed thinking block it began with (OpenAI clients do not send those back).
"""

from __future__ import annotations

from typing import Any

from switchboard_translate.thinking import requested_thinking_budget, thinking_budget_within

#: Extended-thinking budgets for OpenAI's ``reasoning_effort`` levels.
REASONING_BUDGETS: dict[str, int] = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
#: Claude's smallest accepted thinking budget.
MIN_THINKING_BUDGET = 1024
#: With thinking on, Claude takes no temperature and no top_k, and a top_p only from this value up.
MIN_TOP_P_WITH_THINKING = 0.95


def claude_thinking_budget(body: dict[str, Any], max_tokens: int | None, *, tool_forced: bool,
                           unsigned_tool_turn: bool) -> int | None:
    """The ``budget_tokens`` to send for ``body`` with output bound ``max_tokens``, or None to leave thinking off.

    ``tool_forced``: the request forces a tool call; ``unsigned_tool_turn``: its last
    assistant turn calls tools and does not begin with a thinking block (the
    caller reads both from its own wire format).
    """
    requested = requested_thinking_budget(body)
    effort = body.get("reasoning_effort")
    if requested is None and (not effort or effort == "none"):
        return None
    wanted = requested if requested is not None else REASONING_BUDGETS.get(str(effort), REASONING_BUDGETS["medium"])
    budget = thinking_budget_within(wanted, max_tokens)
    if budget < MIN_THINKING_BUDGET or tool_forced or unsigned_tool_turn:
        return None
    return budget


def drop_sampling_refused_with_thinking(params: dict[str, Any], *, temperature: str, top_p: str,
                                        top_k: str | None = None) -> None:
    """Removes from ``params`` (under the wire format's own names) the sampling settings thinking rules out."""
    params.pop(temperature, None)
    if top_k is not None:
        params.pop(top_k, None)
    value = params.get(top_p)
    if isinstance(value, (int, float)) and value < MIN_TOP_P_WITH_THINKING:
        params.pop(top_p)
