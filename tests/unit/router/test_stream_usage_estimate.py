"""What a stream that ended without the provider's final usage is billed."""

from __future__ import annotations

import orjson

from switchboard_router.providers.base import TokenUsage
from switchboard_router.streaming import ProducedSoFar, estimate_prompt_tokens, estimate_tokens


def chunk(delta: dict[str, object]) -> bytes:
    return orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def test_only_generated_text_counts() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello fr"})])
    produced.add([chunk({"reasoning_content": "abcd"}),
                  chunk({"tool_calls": [{"index": 0, "function": {"name": "get", "arguments": "{\"a\":1}"}}]})])
    assert produced.chars() == 8 + 4 + 3 + 7


def test_no_reported_usage_gives_an_estimate_marked_as_such() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"content": "Hello fr"})])
    usage = produced.usage(None, prompt_tokens=30, failed=True)
    assert usage == TokenUsage(prompt_tokens=30, completion_tokens=2, reported_by_provider=False)


def test_a_complete_stream_keeps_the_providers_usage() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"content": "x" * 400})])
    reported = TokenUsage(prompt_tokens=5, completion_tokens=3)
    assert produced.usage(reported, prompt_tokens=99, failed=False) == reported


def test_a_failed_stream_tops_partial_usage_up_to_what_was_relayed() -> None:
    produced = ProducedSoFar()
    produced.add([chunk({"content": "x" * 40})])
    usage = produced.usage(TokenUsage(prompt_tokens=12, completion_tokens=1), prompt_tokens=99, failed=True)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reported_by_provider) == (12, 10, True)


def test_estimates_round_up() -> None:
    assert [estimate_tokens(n) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]
    assert estimate_prompt_tokens({"messages": [{"role": "user", "content": "x" * 100}]}) >= 25
