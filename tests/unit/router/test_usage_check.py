"""Which usage reports are believed: the bounds a provider's counts must stay within to be billed."""

from __future__ import annotations

import logging

import pytest

from switchboard_router import request_id
from switchboard_router.deployment import Deployment
from switchboard_router.providers.base import TokenUsage
from switchboard_router.usage_check import MAX_COUNT, credible, implausible

MODEL = Deployment(id="gpt/0", public_model="gpt", provider="openai", model="gpt", api_base="",
                   context_window=128_000, max_output_tokens=16_384)
UNKNOWN = Deployment(id="local/0", public_model="local", provider="ollama", model="llama", api_base="")
TEXT = {"messages": [{"role": "user", "content": "Say hi in five words."}], "max_tokens": 100}


def test_honest_reports_are_believed() -> None:
    assert implausible(TokenUsage(prompt_tokens=14, completion_tokens=7), TEXT, MODEL) is None
    assert implausible(TokenUsage(prompt_tokens=14, completion_tokens=100, reasoning_tokens=90,
                                  cached_prompt_tokens=0), TEXT, MODEL) is None
    assert implausible(TokenUsage(), {}, UNKNOWN) is None


@pytest.mark.parametrize(("usage", "why"), [
    (TokenUsage(prompt_tokens=-3, completion_tokens=5), "prompt_tokens is negative"),
    (TokenUsage(prompt_tokens=3, completion_tokens=5, cached_prompt_tokens=-1), "cached_prompt_tokens is negative"),
    (TokenUsage(prompt_tokens=3, completion_tokens=MAX_COUNT + 1), "above 2^40"),
    (TokenUsage(prompt_tokens=3, completion_tokens=5.5), "not a whole number"),  # type: ignore[arg-type]
    (TokenUsage(prompt_tokens="9", completion_tokens=5), "not a whole number"),  # type: ignore[arg-type]
    (TokenUsage(prompt_tokens=3, completion_tokens=True), "not a whole number"),  # type: ignore[arg-type]
])
def test_counts_that_no_request_can_have_are_refused(usage: TokenUsage, why: str) -> None:
    reason = implausible(usage, TEXT, UNKNOWN)
    assert reason is not None and why in reason


def test_the_answer_may_not_be_far_longer_than_the_request_allowed() -> None:
    assert implausible(TokenUsage(prompt_tokens=14, completion_tokens=2 * 100 + 1024), TEXT, MODEL) is None
    reason = implausible(TokenUsage(prompt_tokens=14, completion_tokens=2 * 100 + 1025), TEXT, MODEL)
    assert reason is not None and "output limit of 100" in reason
    several = {**TEXT, "n": 3}
    assert implausible(TokenUsage(prompt_tokens=14, completion_tokens=1500), several, MODEL) is None


def test_without_a_limit_in_the_request_the_models_output_limit_applies() -> None:
    body = {"messages": TEXT["messages"]}
    assert implausible(TokenUsage(prompt_tokens=14, completion_tokens=16_384), body, MODEL) is None
    reason = implausible(TokenUsage(prompt_tokens=14, completion_tokens=10**6), body, MODEL)
    assert reason is not None and "16384" in reason
    assert implausible(TokenUsage(prompt_tokens=14, completion_tokens=10**6), body, UNKNOWN) is None


def test_the_prompt_may_not_be_far_larger_than_the_request_or_the_context_window() -> None:
    big = TokenUsage(prompt_tokens=200_000, completion_tokens=5)
    reason = implausible(big, TEXT, UNKNOWN)
    assert reason is not None and "bytes" in reason
    reason = implausible(TokenUsage(prompt_tokens=300_000, completion_tokens=5), TEXT, MODEL)
    assert reason is not None and "context window" in reason
    long_text = {"messages": [{"role": "user", "content": "word " * 40_000}]}
    assert implausible(TokenUsage(prompt_tokens=45_000, completion_tokens=5), long_text, UNKNOWN) is None


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]},
    {"messages": [{"role": "user", "content": "news?"}], "web_search_options": {}},
    {"messages": [{"role": "user", "content": "news?"}], "tools": [{"type": "web_search_20250305"}]},
])
def test_media_and_provider_side_tools_may_cost_more_than_their_bytes(body: dict[str, object]) -> None:
    assert implausible(TokenUsage(prompt_tokens=50_000, completion_tokens=5), body, UNKNOWN) is None


def test_embedding_inputs_bound_their_prompt() -> None:
    body = {"input": ["short text"]}
    assert implausible(TokenUsage(prompt_tokens=3), body, UNKNOWN) is None
    assert implausible(TokenUsage(prompt_tokens=10**9), body, UNKNOWN) is not None


def test_a_refused_report_is_logged_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    request_id.bind("req_usage_check_1")
    with caplog.at_level(logging.WARNING, logger="switchboard_router.usage_check"):
        assert credible(TokenUsage(prompt_tokens=5, completion_tokens=3), TEXT, MODEL)
        assert not caplog.records
        assert not credible(TokenUsage(prompt_tokens=-5, completion_tokens=3), TEXT, MODEL)
    [record] = caplog.records
    assert record.request_id == "req_usage_check_1" and record.deployment == "gpt/0"  # type: ignore[attr-defined]
    assert "negative" in record.reason  # type: ignore[attr-defined]


def test_a_long_conversation_is_judged_by_its_serialized_size_even_when_its_text_alone_would_refuse() -> None:
    """A long prompt is first measured by its bare text (no serialization); a count above that bound is judged by
    the exact serialized size, which escapes make larger: the same verdicts as measuring it every time."""
    quoted = {"messages": [{"role": "system", "content": "rules"},
                           {"role": "user", "content": [{"type": "text", "text": '"' * 20_000}]}]}
    # Bare text: 20,005 characters (bound 56,394); serialized, every quote escaped: about 40,100 bytes.
    assert implausible(TokenUsage(prompt_tokens=50_000, completion_tokens=5), quoted, UNKNOWN) is None
    assert implausible(TokenUsage(prompt_tokens=90_000, completion_tokens=5), quoted, UNKNOWN) is None
    reason = implausible(TokenUsage(prompt_tokens=100_000, completion_tokens=5), quoted, UNKNOWN)
    assert reason is not None and "bytes" in reason
