"""What a completion is billed when the provider's usage is missing, partial or not credible."""

from __future__ import annotations

import orjson
import pytest

from switchboard_router import usage_estimate
from switchboard_router.providers.base import TokenUsage
from switchboard_router.usage_estimate import ProducedSoFar, answer_estimate, estimate_prompt_tokens

BODY = {"messages": [{"role": "user", "content": "x" * 100}]}


def chunk(delta: dict[str, object]) -> bytes:
    return orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def test_no_reported_usage_gives_an_estimate_marked_as_such() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"content": "Hello fr"})])
    usage = produced.usage(None, failed=True, body=BODY)
    assert usage == TokenUsage(prompt_tokens=estimate_prompt_tokens(BODY), completion_tokens=2,
                               reported_by_provider=False)


def test_an_adapters_placeholder_for_missing_usage_is_estimated_too() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"content": "x" * 40})])
    usage = produced.usage(TokenUsage(reported_by_provider=False), failed=False, body=BODY)
    assert (usage.completion_tokens, usage.reported_by_provider) == (10, False)
    assert usage.prompt_tokens == estimate_prompt_tokens(BODY) > 0


def test_a_complete_stream_keeps_the_providers_usage() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"content": "x" * 400})])
    reported = TokenUsage(prompt_tokens=5, completion_tokens=3)
    assert produced.usage(reported, failed=False, body=BODY) == reported


def test_a_failed_stream_tops_partial_usage_up_to_what_was_relayed() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"content": "x" * 40})])
    usage = produced.usage(TokenUsage(prompt_tokens=12, completion_tokens=1), failed=True, body=BODY)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reported_by_provider) == (12, 10, True)


def test_the_prompt_estimate_counts_messages_tools_and_embedding_inputs() -> None:
    assert estimate_prompt_tokens(BODY) >= 25
    with_tools = {**BODY, "tools": [{"type": "function", "function": {"name": "f" * 40}}]}
    assert estimate_prompt_tokens(with_tools) >= estimate_prompt_tokens(BODY) + 10
    assert estimate_prompt_tokens({"input": ["y" * 80, "z" * 80]}) >= 40


def test_a_whole_answer_is_estimated_from_its_generated_text() -> None:
    answer = {"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "a" * 30, "reasoning_content": "b" * 10}},
        {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"q":1}'}}]}}],
        "usage": {"prompt_tokens": -5, "completion_tokens": 10**15}}
    usage = answer_estimate(BODY, answer)
    assert usage == TokenUsage(prompt_tokens=estimate_prompt_tokens(BODY), completion_tokens=13,
                               reported_by_provider=False)  # (30 + 10 + 3 + 7) / 4, rounded up


def test_a_streams_prompt_is_estimated_once_however_often_its_usage_so_far_is_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    estimates: list[int] = []

    def counted(body: dict[str, object]) -> int:
        estimates.append(estimate_prompt_tokens(body))
        return estimates[-1]

    monkeypatch.setattr(usage_estimate, "estimate_prompt_tokens", counted)
    produced = ProducedSoFar()
    for text in ("Hello", " there", ", friend"):  # a progress record each second, then the stream's end
        produced.add([chunk({"content": text})])
        assert produced.usage(None, failed=True, body=BODY).prompt_tokens == estimate_prompt_tokens(BODY)
    assert len(estimates) == 1
