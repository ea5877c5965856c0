"""Whole answers: Anthropic message → chat.completion, and chat.completion → Anthropic message."""

from __future__ import annotations

from typing import Any

import anthropic.types
import openai.types.chat
import orjson
import pytest
from anthropic.types.shared.error_response import ErrorResponse
from pydantic import TypeAdapter

from switchboard_translate.anthropic import (
    anthropic_error,
    anthropic_error_from_openai,
    anthropic_message_to_chat_completion,
    anthropic_usage_from_openai,
    chat_completion_to_anthropic,
    finish_reason_from_anthropic,
    openai_usage_from_anthropic,
    stop_reason_from_openai,
)

MESSAGE = TypeAdapter(anthropic.types.Message)
COMPLETION = TypeAdapter(openai.types.chat.ChatCompletion)


def anthropic_message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def to_openai(message: dict[str, Any]) -> dict[str, Any]:
    MESSAGE.validate_python(message)
    completion = anthropic_message_to_chat_completion(message, model="public-model", created=1700000000)
    COMPLETION.validate_python(completion)
    return completion


def test_text_answer() -> None:
    completion = to_openai(anthropic_message([{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}]))
    assert completion["id"] == "msg_01"
    assert completion["model"] == "public-model"
    assert completion["created"] == 1700000000
    assert completion["choices"][0]["message"]["content"] == "Hello there"
    assert completion["choices"][0]["finish_reason"] == "stop"


def test_parallel_tool_use_becomes_tool_calls_with_ids_kept() -> None:
    content = [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_A1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_B2", "name": "get_time", "input": {}},
    ]
    completion = to_openai(anthropic_message(content, "tool_use"))
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking both."
    assert choice["message"]["tool_calls"] == [
        {"id": "toolu_A1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "toolu_B2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]


def test_thinking_becomes_reasoning_content_and_thinking_blocks() -> None:
    thinking = {"type": "thinking", "thinking": "2+2 is 4", "signature": "sig"}
    completion = to_openai(anthropic_message([thinking, {"type": "text", "text": "4"}]))
    message = completion["choices"][0]["message"]
    assert message["reasoning_content"] == "2+2 is 4"
    assert message["thinking_blocks"] == [thinking]
    assert message["content"] == "4"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    assert finish_reason_from_anthropic(stop_reason) == finish_reason
    assert (
        to_openai(anthropic_message([{"type": "text", "text": "x"}], stop_reason))["choices"][0]["finish_reason"]
        == finish_reason
    )


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [("stop", "end_turn"), ("tool_calls", "tool_use"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
def test_reverse_stop_reasons(finish_reason: str, stop_reason: str) -> None:
    assert stop_reason_from_openai(finish_reason) == stop_reason
    assert stop_reason_from_openai("stop", stop_sequence="END") == "stop_sequence"


def test_usage_counts_cache_reads_and_writes_in_prompt_tokens() -> None:
    message = anthropic_message(
        [{"type": "text", "text": "x"}], cache_read_input_tokens=1000, cache_creation_input_tokens=200
    )
    usage = to_openai(message)["usage"]
    assert usage["prompt_tokens"] == 10 + 1000 + 200
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == 1215
    assert usage["prompt_tokens_details"]["cached_tokens"] == 1000
    assert usage["prompt_tokens_details"]["cache_creation_tokens"] == 200
    assert anthropic_usage_from_openai(usage) == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200,
    }


def test_usage_without_cache_fields() -> None:
    usage = openai_usage_from_anthropic({"input_tokens": 7, "output_tokens": 3})
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["prompt_tokens_details"]["cached_tokens"]) == (
        7,
        3,
        0,
    )


def openai_completion(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 9,
            "total_tokens": 59,
            "prompt_tokens_details": {"cached_tokens": 32},
        },
    }


def test_reverse_response_with_text_and_tool_calls() -> None:
    completion = openai_completion(
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"x"}'}},
                {"id": "fn:odd id", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"y"}'}},
            ],
        },
        "tool_calls",
    )
    COMPLETION.validate_python(completion)
    message = chat_completion_to_anthropic(completion, model="claude-public")
    parsed = MESSAGE.validate_python(message)
    assert parsed.stop_reason == "tool_use"
    assert parsed.model == "claude-public"
    assert message["content"][0] == {"type": "text", "text": "Let me look."}
    assert message["content"][1] == {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "x"}}
    odd = message["content"][2]["id"]
    assert odd.startswith("sbx_") and all(c.isalnum() or c in "_-" for c in odd)
    assert message["usage"] == {
        "input_tokens": 18,
        "output_tokens": 9,
        "cache_read_input_tokens": 32,
        "cache_creation_input_tokens": 0,
    }


def test_reverse_response_with_reasoning_and_broken_arguments() -> None:
    completion = openai_completion(
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "thinking...",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1'}}],
        },
        "length",
    )
    message = chat_completion_to_anthropic(completion)
    MESSAGE.validate_python(message)
    assert message["content"][0] == {"type": "thinking", "thinking": "thinking...", "signature": ""}
    assert message["content"][1]["input"] == {"_raw": '{"a": 1'}
    assert message["stop_reason"] == "max_tokens"
    assert orjson.loads(orjson.dumps(message)) == message


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (502, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_bodies_parse_as_anthropic_errors(status: int, error_type: str) -> None:
    openai_error = {"error": {"message": "Key budget exceeded", "type": "budget_exceeded", "param": None, "code": None}}
    body = anthropic_error_from_openai(status, openai_error, request_id="req_7")
    parsed = ErrorResponse.model_validate(body)
    assert (parsed.error.type, parsed.error.message, parsed.request_id) == (error_type, "Key budget exceeded", "req_7")
    assert anthropic_error(status, "x")["error"]["type"] == error_type
