"""Anthropic Messages body → OpenAI chat body (the facade's /v1/messages)."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_translate.anthropic import (
    TranslationError,
    anthropic_request_to_chat,
    chat_request_to_anthropic,
    tool_id_to_anthropic,
)

TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_system_sampling_and_stream_options() -> None:
    out = anthropic_request_to_chat(
        {
            "model": "claude-public",
            "max_tokens": 256,
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": " Be kind."}],
            "messages": [{"role": "user", "content": "Hi"}],
            "stop_sequences": ["END"],
            "temperature": 0.5,
            "top_p": 0.8,
            "stream": True,
            "metadata": {"user_id": "u-1"},
        }
    )
    assert out == {
        "model": "claude-public",
        "messages": [{"role": "system", "content": "Be brief. Be kind."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 256,
        "temperature": 0.5,
        "top_p": 0.8,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u-1",
    }


def test_cache_control_on_system_is_kept() -> None:
    system = [{"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}]
    out = anthropic_request_to_chat({"model": "m", "max_tokens": 1, "system": system, "messages": []})
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}
    ]


def test_images_and_documents_become_parts() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {"type": "text", "text": "What are these?"},
    ]
    out = anthropic_request_to_chat({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": content}]})
    assert out["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "text", "text": "What are these?"},
    ]


def test_tool_results_split_into_tool_messages_before_the_user_text() -> None:
    out = anthropic_request_to_chat(
        {
            "model": "m",
            "max_tokens": 100,
            "tools": [TOOL],
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "25C"}]},
                        {"type": "text", "text": "Which is warmer?"},
                    ],
                },
            ],
        }
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ],
        "thinking_blocks": [{"type": "thinking", "thinking": "two calls", "signature": "sig"}],
        "reasoning_content": "two calls",
    }
    assert out["messages"][2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "25C"},
        {"role": "user", "content": "Which is warmer?"},
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": TOOL["input_schema"],
                "description": "Weather for a city",
            },
        }
    ]


def test_wrapped_tool_ids_are_unwrapped() -> None:
    wrapped = tool_id_to_anthropic("fn:1")
    out = anthropic_request_to_chat(
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "id": wrapped, "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": wrapped}]},
            ],
        }
    )
    assert out["messages"][0]["tool_calls"][0]["id"] == "fn:1"
    assert out["messages"][1] == {"role": "tool", "tool_call_id": "fn:1", "content": ""}


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}, None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool | None) -> None:
    body = {"model": "m", "max_tokens": 1, "tools": [TOOL], "tool_choice": choice, "messages": []}
    out = anthropic_request_to_chat(body)
    assert out["tool_choice"] == expected
    assert out.get("parallel_tool_calls") == parallel
    # And back again to the same Anthropic tool_choice.
    again = chat_request_to_anthropic({**out, "messages": [{"role": "user", "content": "x"}]}, model="m")
    assert again["tool_choice"] == choice


def test_thinking_budget_becomes_reasoning_effort() -> None:
    def effort(budget: int) -> str:
        body = {
            "model": "m",
            "max_tokens": 20000,
            "messages": [],
            "thinking": {"type": "enabled", "budget_tokens": budget},
        }
        return anthropic_request_to_chat(body)["reasoning_effort"]

    assert (effort(1024), effort(2048), effort(16000)) == ("low", "medium", "high")


def test_server_tools_are_refused() -> None:
    body = {
        "model": "m",
        "max_tokens": 1,
        "messages": [],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(TranslationError, match="server tools"):
        anthropic_request_to_chat(body)


def test_the_exact_thinking_budget_reaches_claude_and_gemini() -> None:
    # Claude Code sends max_tokens 32000 with a 31999-token budget: the budget must not become a level's 4096.
    body = {"model": "m", "max_tokens": 32000, "messages": [{"role": "user", "content": "think"}],
            "thinking": {"type": "enabled", "budget_tokens": 31999}}
    chat = anthropic_request_to_chat(body)
    assert chat["thinking"] == {"type": "enabled", "budget_tokens": 31999} and chat["reasoning_effort"] == "high"
    assert chat_request_to_anthropic(chat, model="claude-sonnet-4-5")["thinking"] == body["thinking"]
    # Kept inside max_tokens when the gateway lowered it (a budget's cap), as Anthropic requires.
    assert chat_request_to_anthropic({**chat, "max_tokens": 8000}, model="m")["thinking"]["budget_tokens"] == 7999
    small = anthropic_request_to_chat({**body, "max_tokens": 2000,
                                       "thinking": {"type": "enabled", "budget_tokens": 1500}})
    assert chat_request_to_anthropic(small, model="m")["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    assert "thinking" not in anthropic_request_to_chat({**body, "thinking": {"type": "disabled"}})
