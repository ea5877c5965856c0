"""Gemini's ``thinkingConfig`` for a chat body: a level on Gemini 3, a token budget on Gemini 2.5.

The budget is the exact one the body asks for (``thinking.budget_tokens``), else
``reasoning_effort``'s, kept below ``maxOutputTokens``, which Gemini spends it from
(:func:`switchboard_translate.thinking.thinking_budget_within`). Each Gemini 2.5
model takes budgets in a range of its own, and Google refuses any other
(ai.google.dev/gemini-api/docs/thinking):

==================  ===============  ==================
model               budget           0 (thinking off)
==================  ===============  ==================
2.5 Pro             128 to 32,768    refused: it always thinks
2.5 Flash           1 to 24,576      accepted
2.5 Flash-Lite      512 to 24,576    accepted
==================  ===============  ==================

So the budget is moved into the model's range: raised to its least (also for
``reasoning_effort: "none"`` on 2.5 Pro, which cannot stop thinking, as ``"none"``
becomes the lowest level on Gemini 3), lowered to its most. When the output
bound leaves no room for the least budget, the request is refused before it is
sent, with a message naming the output field and the smallest value that works,
rather than sent to be refused by Google in its own words.

A model that cannot think (Gemini 2.0, by the model data:
:func:`switchboard_translate.chat_params.can_think`) is sent no ``thinkingConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard_translate.chat_params import can_think
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.thinking import (
    LEAVE_OUT_REASONING,
    no_room_for_thinking,
    requested_thinking_budget,
    thinking_budget_within,
)

#: Budgets for OpenAI's ``reasoning_effort`` levels (before the model's range applies).
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


@dataclass(frozen=True, slots=True)
class BudgetRange:
    """The thinking budgets one Gemini model accepts."""

    least: int
    most: int
    #: Whether a budget of 0 (thinking off) is accepted.
    can_stop: bool


#: By model-id prefix, first match wins (Flash-Lite before Flash). Models not listed get the budget as computed.
BUDGET_RANGES: tuple[tuple[str, BudgetRange], ...] = (
    ("gemini-2.5-flash-lite", BudgetRange(512, 24576, can_stop=True)),
    ("gemini-2.5-flash", BudgetRange(1, 24576, can_stop=True)),
    ("gemini-2.5-pro", BudgetRange(128, 32768, can_stop=False)),
)


def _bare(model: str) -> str:
    """``models/gemini-2.5-pro`` and Vertex AI's ``gemini-2.5-pro@001`` as ``gemini-2.5-pro``."""
    return model.rsplit("/", 1)[-1].split("@", 1)[0]


def budget_range(model: str) -> BudgetRange | None:
    bare = _bare(model)
    return next((limits for prefix, limits in BUDGET_RANGES if bare.startswith(prefix)), None)


def thinking_config(body: dict[str, Any], model: str, max_output_tokens: int | None) -> dict[str, Any] | None:
    """The ``thinkingConfig`` the body asks for on ``model``, or None when it asks for nothing or the model cannot
    think (Google refuses any ``thinkingConfig`` there, even a budget of 0: what reaches here then is
    ``reasoning_effort: "none"``, the other requests having been refused)."""
    if not can_think("gemini", model):
        return None
    effort = body.get("reasoning_effort")
    if _bare(model).startswith("gemini-3"):
        return {"thinkingLevel": "low" if effort in ("none", "minimal", "low") else "high"} if effort else None
    wanted = requested_thinking_budget(body)
    if wanted is None and effort in THINKING_BUDGETS:
        wanted = THINKING_BUDGETS[effort]
    if wanted is None:
        return None
    limits = budget_range(model)
    if limits is None:
        return {"thinkingBudget": thinking_budget_within(wanted, max_output_tokens)}
    if wanted == 0 and limits.can_stop:
        return {"thinkingBudget": 0}
    budget = thinking_budget_within(min(max(wanted, limits.least), limits.most), max_output_tokens)
    if budget < limits.least:
        raise _no_room(body, _bare(model), limits, max_output_tokens or 0)
    return {"thinkingBudget": budget}


def _no_room(body: dict[str, Any], model: str, limits: BudgetRange, bound: int) -> InvalidRequest:
    if limits.can_stop:
        return no_room_for_thinking(body, f"{model} thinks", limits.least, bound,
                                    'set reasoning_effort to "none" to answer without thinking')
    return no_room_for_thinking(body, f"{model} always thinks", limits.least, bound,
                                f"{LEAVE_OUT_REASONING} (the model then sets its own budget)")
