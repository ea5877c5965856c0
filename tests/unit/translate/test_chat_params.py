"""What each provider's translation honours, refuses and leaves out: one table for /model/info and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_translate.chat_params import (
    CHAT_PARAMS,
    CLAUDE,
    CONVERSE,
    CONVERSE_CLAUDE,
    GEMINI,
    OPENAI,
    ParamSupport,
    param_support,
)

TABLES = {"openai": OPENAI, "claude": CLAUDE, "converse-claude": CONVERSE_CLAUDE, "converse": CONVERSE,
          "gemini": GEMINI}
#: A body asking for each refusable parameter, and the field a refusal names.
ASKING: dict[str, tuple[dict[str, Any], str]] = {
    "n": ({"n": 3}, "n"),
    "logprobs": ({"logprobs": True}, "logprobs"),
    "top_logprobs": ({"top_logprobs": 2}, "logprobs"),
    "reasoning_effort": ({"reasoning_effort": "low"}, "reasoning_effort"),
}
#: The same parameters at values that ask for nothing: served everywhere.
NOT_ASKING = {"n": 1, "logprobs": False, "top_logprobs": 0, "reasoning_effort": "none",
              "thinking": {"type": "disabled"}}


@pytest.mark.parametrize(("provider", "model", "table"), [
    ("anthropic", "claude-sonnet-4-5", CLAUDE),
    ("vertex", "claude-sonnet-4-5@20250929", CLAUDE),
    ("vertex", "gemini-2.5-pro", GEMINI),
    ("gemini", "gemini-2.5-flash", GEMINI),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", CONVERSE_CLAUDE),
    ("bedrock", "arn:aws:bedrock:eu-west-1:1:inference-profile/eu.anthropic.claude-sonnet-4-v1:0", CONVERSE_CLAUDE),
    ("bedrock", "meta.llama3-3-70b-instruct-v1:0", CONVERSE),
    ("bedrock", "amazon.nova-pro-v1:0", CONVERSE),
    ("openai", "gpt-4o", OPENAI),
    ("groq", "llama-3.3-70b-versatile", OPENAI),
])  # fmt: skip
def test_each_provider_and_model_has_the_table_of_the_translation_that_serves_it(provider: str, model: str,
                                                                                table: ParamSupport) -> None:
    assert param_support(provider, model) is table


def test_what_each_translation_honours() -> None:
    assert OPENAI.supported == CHAT_PARAMS
    assert set(CHAT_PARAMS) - set(CLAUDE.supported) == {"n", "logprobs", "top_logprobs", "frequency_penalty",
                                                         "presence_penalty", "logit_bias", "seed"}
    assert set(CHAT_PARAMS) - set(GEMINI.supported) == {"n", "logit_bias", "user", "parallel_tool_calls"}
    assert "reasoning_effort" in CONVERSE_CLAUDE.supported and "reasoning_effort" not in CONVERSE.supported
    assert set(CONVERSE_CLAUDE.supported) - set(CONVERSE.supported) == {"reasoning_effort"}


@pytest.mark.parametrize("name", list(TABLES))
def test_a_parameter_is_refused_exactly_when_it_is_not_listed_as_honoured(name: str) -> None:
    """What /model/info leaves out of supported_openai_params a client cannot have (refused or without effect);
    what it lists is never refused."""
    table = TABLES[name]
    for param, (body, field) in ASKING.items():
        refusal = table.refusal({"messages": [], **body})
        if param in table.supported:
            assert refusal is None, (name, param)
        else:
            assert refusal is not None and refusal.param == field, (name, param)
            assert refusal.message
    assert table.refusal({"messages": [], **NOT_ASKING}) is None


def test_an_enabled_thinking_parameter_is_refused_under_its_own_name() -> None:
    refusal = CONVERSE.refusal({"thinking": {"type": "enabled", "budget_tokens": 2048}})
    assert refusal is not None and refusal.param == "thinking" and "Claude" in refusal.message
    assert CONVERSE_CLAUDE.refusal({"thinking": {"type": "enabled", "budget_tokens": 2048}}) is None


@pytest.mark.parametrize(("provider", "model", "thinks_on"), [
    ("anthropic", "claude-3-5-sonnet-20241022", CLAUDE),
    ("anthropic", "claude-3-haiku-20240307", CLAUDE),
    ("vertex", "claude-3-5-sonnet-v2@20241022", CLAUDE),
    ("bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", CONVERSE_CLAUDE),
    ("bedrock", "us.anthropic.claude-3-haiku-20240307-v1:0", CONVERSE_CLAUDE),
    ("gemini", "gemini-2.0-flash", GEMINI),
    ("vertex", "gemini-2.0-flash-001", GEMINI),
    ("vertex", "publishers/google/models/gemini-2.0-flash-lite-001", GEMINI),
    ("gemini", "gemini-1.5-pro", GEMINI),  # retired, no longer in the data
    ("anthropic", "claude-2.1", CLAUDE),
])  # fmt: skip
def test_a_claude_or_gemini_model_that_cannot_think_refuses_reasoning(provider: str, model: str,
                                                                       thinks_on: ParamSupport) -> None:
    """models.dev's reasoning flag says Claude before 3.7 and Gemini 2.0 do not think: Anthropic and Google refuse
    a thinking request there, so the gateway refuses it first, naming the field (and /model/info does not list
    reasoning_effort); reasoning_effort "none" is served."""
    table = param_support(provider, model)
    assert "reasoning_effort" not in table.supported
    assert set(thinks_on.supported) - set(table.supported) == {"reasoning_effort"}
    for body, field in (({"reasoning_effort": "low"}, "reasoning_effort"),
                        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking")):
        refusal = table.refusal({"messages": [], **body})
        assert refusal is not None and refusal.param == field
        assert refusal.message.startswith(f"{model} cannot think") and "use a model that thinks" in refusal.message
    assert table.refusal({"messages": [], "reasoning_effort": "none"}) is None


@pytest.mark.parametrize(("provider", "model"), [
    ("anthropic", "claude-3-7-sonnet-20250219"), ("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-flash"),
    ("vertex", "gemini-3-pro-preview"), ("gemini", "gemini-2.0-flash-thinking-exp"),  # unknown to the data
    ("anthropic", "claude-next-preview"),  # unknown: the provider answers for it
])  # fmt: skip
def test_a_model_that_thinks_or_that_the_data_does_not_know_takes_reasoning(provider: str, model: str) -> None:
    assert param_support(provider, model).refusal({"messages": [], "reasoning_effort": "high"}) is None
