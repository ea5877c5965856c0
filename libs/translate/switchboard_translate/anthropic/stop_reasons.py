"""Stop reasons: Anthropic's ``stop_reason`` and OpenAI's ``finish_reason``, both ways.

Anthropic has more reasons than OpenAI, so the forward map folds several into
``stop``; the reverse map picks the most natural Anthropic reason for each
OpenAI one (a client cannot tell ``end_turn`` from ``stop_sequence`` through
OpenAI, so ``stop`` becomes ``end_turn`` unless the matched stop sequence is known).

The matched sequence travels on the OpenAI choice as ``stop_reason``, the field
vLLM's OpenAI server uses for it, so an Anthropic client of an Anthropic model
still learns which sequence stopped the answer.
"""

from __future__ import annotations

from typing import Any

_TO_FINISH_REASON: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}

_TO_STOP_REASON: dict[str, str] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def matched_stop_sequence(choice: dict[str, Any]) -> str | None:
    """The stop sequence an OpenAI choice says matched (its ``stop_reason`` when that is text), else None."""
    matched = choice.get("stop_reason")
    return matched if isinstance(matched, str) and matched else None


def finish_reason_from_anthropic(stop_reason: str | None) -> str | None:
    """OpenAI ``finish_reason`` for an Anthropic ``stop_reason`` (None while the message is unfinished)."""
    if stop_reason is None:
        return None
    return _TO_FINISH_REASON.get(stop_reason, "stop")


def stop_reason_from_openai(finish_reason: str | None, *, stop_sequence: str | None = None) -> str:
    """Anthropic ``stop_reason`` for an OpenAI ``finish_reason``.

    Anthropic's answers always carry a stop reason, so an unknown or missing
    one becomes ``end_turn``.
    """
    if finish_reason == "stop" and stop_sequence:
        return "stop_sequence"
    return _TO_STOP_REASON.get(finish_reason or "stop", "end_turn")
