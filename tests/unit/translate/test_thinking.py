"""The room a thinking budget may take in the output bound."""

from __future__ import annotations

from switchboard_translate.thinking import thinking_budget_within


def test_a_budget_stays_below_the_output_bound() -> None:
    # Thinking is spent out of the output bound (Gemini) or must be below it (Anthropic): the answer keeps room.
    assert thinking_budget_within(24576, 1000) == 999
    assert thinking_budget_within(500, 1000) == 500
    assert thinking_budget_within(0, 1000) == 0
    assert thinking_budget_within(8192, 1) == 0
    assert thinking_budget_within(8192, None) == 8192
    assert thinking_budget_within(8192, 0) == 8192
