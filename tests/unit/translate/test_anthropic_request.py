"""OpenAI chat body → Anthropic Messages body."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_translate.anthropic import TranslationError, chat_request_to_anthropic, tool_id_from_anthropic
from tests.fakes.anthropic_provider import validate

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def translate(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Translates and checks the result against the rules the Messages API enforces."""
    out = chat_request_to_anthropic(body, model="claude-test", **kwargs)
    validate(HEADERS, out)
    return out


def test_system_and_developer_messages_become_system_blocks() -> None:
    out = translate(
        {
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hi"},
            ]
        }
    )
    assert out["system"] == [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}]
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert out["model"] == "claude-test"


def test_multi_part_content_with_data_and_web_images() -> None:
    out = translate(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare these", "cache_control": {"type": "ephemeral"}},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
                    ],
                }
            ]
        }
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_pdf_file_part_becomes_document_block() -> None:
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
    out = translate({"messages": [{"role": "user", "content": [part, {"type": "text", "text": "Summarise"}]}]})
    assert out["messages"][0]["content"][0] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        "title": "a.pdf",
    }


def test_audio_is_refused_with_a_clear_error() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(TranslationError, match="input_audio"):
        chat_request_to_anthropic({"messages": [{"role": "user", "content": [part]}]}, model="m")


def test_tools_and_tool_choice_mapping() -> None:
    base = {"messages": [{"role": "user", "content": "Weather?"}], "tools": [WEATHER_TOOL, TIME_TOOL]}
    out = translate(base)
    assert out["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
            "description": "Weather for a city",
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in out
    expectations = {
        "auto": {"type": "auto"},
        "none": {"type": "none"},
        "required": {"type": "any"},
    }
    for choice, expected in expectations.items():
        assert translate({**base, "tool_choice": choice})["tool_choice"] == expected
    named = {"type": "function", "function": {"name": "get_time"}}
    assert translate({**base, "tool_choice": named})["tool_choice"] == {"type": "tool", "name": "get_time"}


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    base = {
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [WEATHER_TOOL],
        "parallel_tool_calls": False,
    }
    assert translate(base)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert translate({**base, "tool_choice": "required"})["tool_choice"] == {
        "type": "any",
        "disable_parallel_tool_use": True,
    }
    # tool_choice "none" takes no such flag.
    assert translate({**base, "tool_choice": "none"})["tool_choice"] == {"type": "none"}


def test_tool_messages_merge_into_one_user_message_before_any_text() -> None:
    out = translate(
        {
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "messages": [
                {"role": "user", "content": "Weather in Paris and the time?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "12:00"}]},
                {"role": "user", "content": "Thanks, and tomorrow?"},
            ],
        }
    )
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "call_b", "content": [{"type": "text", "text": "12:00"}]},
        {"type": "text", "text": "Thanks, and tomorrow?"},
    ]


def test_tool_result_is_placed_before_text_even_when_it_arrives_after_it() -> None:
    out = translate(
        {
            "tools": [TIME_TOOL],
            "messages": [
                {"role": "user", "content": "Time?"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "function": {"name": "get_time", "arguments": "{}"}}],
                },
                {"role": "user", "content": "(the tool is slow)"},
                {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
            ],
        }
    )
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "12:00"},
        {"type": "text", "text": "(the tool is slow)"},
    ]


def test_tool_ids_anthropic_cannot_take_are_mapped_one_to_one() -> None:
    odd_id = "functions.get_time:0"
    out = translate(
        {
            "tools": [TIME_TOOL],
            "messages": [
                {"role": "user", "content": "Time?"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": odd_id, "function": {"name": "get_time", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": odd_id, "content": "12:00"},
            ],
        }
    )
    use_id = out["messages"][1]["content"][0]["id"]
    assert use_id != odd_id and use_id == out["messages"][2]["content"][0]["tool_use_id"]
    assert tool_id_from_anthropic(use_id) == odd_id


def test_max_tokens_default_and_explicit_values() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    assert translate({"messages": messages})["max_tokens"] == 4096
    assert chat_request_to_anthropic({"messages": messages}, model="claude-3-5-haiku-20241022")["max_tokens"] == 8192
    assert chat_request_to_anthropic({"messages": messages}, model="claude-sonnet-4-5")["max_tokens"] == 16384
    assert chat_request_to_anthropic({"messages": messages}, model="claude-3-opus-20240229")["max_tokens"] == 4096
    assert translate({"messages": messages}, default_max_tokens=8192)["max_tokens"] == 8192
    assert translate({"messages": messages, "max_tokens": 100})["max_tokens"] == 100
    assert translate({"messages": messages, "max_tokens": 100, "max_completion_tokens": 300})["max_tokens"] == 300


def test_stop_temperature_top_p_and_user() -> None:
    messages = [{"role": "user", "content": "Count"}]
    out = translate({"messages": messages, "stop": "END", "temperature": 0.3, "top_p": 0.9, "user": "u-42"})
    assert out["stop_sequences"] == ["END"]
    assert out["temperature"] == 0.3
    assert out["top_p"] == 0.9
    assert out["metadata"] == {"user_id": "u-42"}
    out = translate({"messages": messages, "stop": ["\n", "###"], "temperature": 1.7})
    # Whitespace-only stop sequences are refused by Anthropic; OpenAI's 0..2 range is clamped to 0..1.
    assert out["stop_sequences"] == ["###"]
    assert out["temperature"] == 1.0


def test_reasoning_effort_enables_thinking_within_max_tokens() -> None:
    messages = [{"role": "user", "content": "Prove it"}]
    out = translate({"messages": messages, "reasoning_effort": "high", "temperature": 0.2, "max_tokens": 3000})
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2999}
    assert "temperature" not in out
    # A budget below Claude's least (1,024) is raised to it, as Gemini's are moved into the model's range.
    out = translate({"messages": messages, "thinking": {"type": "enabled", "budget_tokens": 300}, "max_tokens": 2000})
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize(("asks", "field"), [
    ({"reasoning_effort": "low", "max_tokens": 500}, "max_tokens"),
    ({"reasoning_effort": "high", "max_completion_tokens": 1024}, "max_completion_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 800}, "max_tokens"),
])  # fmt: skip
def test_an_output_bound_too_small_for_thinking_is_refused_naming_it_not_thinking_dropped(
        asks: dict[str, Any], field: str) -> None:
    """Claude thinks at least 1,024 tokens, below max_tokens: a client that asked for thinking with a smaller bound
    is told which bound works (it used to be answered without thinking, and without a word)."""
    from switchboard_translate.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        translate({"messages": [{"role": "user", "content": "Prove it"}], **asks})
    assert refused.value.param == field
    assert f"Set {field} to at least 1025" in refused.value.message and "leave out thinking" in refused.value.message
    fits = translate({"messages": [{"role": "user", "content": "Prove it"}], **asks, field: 1025})
    assert fits["thinking"] == {"type": "enabled", "budget_tokens": 1024} and fits["max_tokens"] == 1025
    # Thinking Claude would refuse anyway (a forced tool choice) stays off, whatever the bound.
    forced = translate({"messages": [{"role": "user", "content": "Time?"}], **asks, "tools": [TIME_TOOL],
                        "tool_choice": "required"})
    assert "thinking" not in forced


def test_thinking_is_left_off_where_anthropic_would_refuse_it() -> None:
    ask = {"role": "user", "content": "Time?"}
    forced = {"messages": [ask], "tools": [TIME_TOOL], "tool_choice": "required", "reasoning_effort": "medium"}
    assert "thinking" not in translate(forced)
    call = {"id": "c1", "function": {"name": "get_time", "arguments": "{}"}}
    unsigned_tool_turn = {
        "tools": [TIME_TOOL],
        "reasoning_effort": "medium",
        "messages": [
            ask,
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
        ],
    }
    assert "thinking" not in translate(unsigned_tool_turn)
    signed = {"type": "thinking", "thinking": "call it", "signature": "sig"}
    unsigned_tool_turn["messages"][1] = {"role": "assistant", "thinking_blocks": [signed], "tool_calls": [call]}
    assert translate(unsigned_tool_turn)["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_json_schema_response_format_becomes_output_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = {
        "messages": [{"role": "user", "content": "n?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    }
    assert translate(body)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_json_object_response_format_is_refused_not_dropped() -> None:
    # Claude follows a JSON schema exactly but cannot be held to "any JSON object": the client must hear so.
    body = {"messages": [{"role": "user", "content": "n?"}], "response_format": {"type": "json_object"}}
    with pytest.raises(TranslationError) as refused:
        chat_request_to_anthropic(body, model="claude-sonnet-4-5")
    assert refused.value.param == "response_format"
    assert "json_schema" in str(refused.value) and "ask for JSON in the prompt" in str(refused.value)
    assert "output_config" not in translate({**body, "response_format": {"type": "text"}})


@pytest.mark.parametrize("asks", [{"logprobs": True}, {"logprobs": True, "top_logprobs": 3}, {"top_logprobs": 2}])
def test_logprobs_are_refused_not_dropped(asks: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], **asks}
    with pytest.raises(TranslationError, match="no log probabilities") as refused:
        chat_request_to_anthropic(body, model="claude-sonnet-4-5")
    assert refused.value.param == "logprobs"
    # Asking for none is served.
    out = translate({"messages": body["messages"], "logprobs": False, "top_logprobs": 0})
    assert "logprobs" not in out and "top_logprobs" not in out


def test_thinking_blocks_of_an_earlier_turn_are_sent_back_first() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    out = translate(
        {
            "tools": [TIME_TOOL],
            "messages": [
                {"role": "user", "content": "Time?"},
                {
                    "role": "assistant",
                    "content": None,
                    "thinking_blocks": [thinking],
                    "tool_calls": [{"id": "c1", "function": {"name": "get_time", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
            ],
        }
    )
    assert out["messages"][1]["content"][0] == thinking


def test_unusable_requests_are_refused() -> None:
    with pytest.raises(TranslationError, match="n to 1"):
        chat_request_to_anthropic({"messages": [{"role": "user", "content": "x"}], "n": 2}, model="m")
    bad_call = {"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}
    with pytest.raises(TranslationError, match="JSON object"):
        chat_request_to_anthropic({"messages": [{"role": "assistant", "tool_calls": [bad_call]}]}, model="m")
    with pytest.raises(TranslationError, match="role"):
        chat_request_to_anthropic({"messages": [{"role": "robot", "content": "x"}]}, model="m")


def test_cache_control_on_a_whole_message_marks_its_last_block() -> None:
    mark = {"type": "ephemeral"}
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    out = translate(
        {
            "tools": [WEATHER_TOOL],
            "messages": [
                {"role": "system", "content": "Long rules", "cache_control": mark},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                 "cache_control": mark},
                {"role": "assistant", "content": "Looking", "tool_calls": [call], "cache_control": mark},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny", "cache_control": mark},
            ],
        }
    )
    assert out["system"] == [{"type": "text", "text": "Long rules", "cache_control": mark}]
    user, assistant, results = out["messages"]
    assert user["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": mark}]
    assert [block.get("cache_control") for block in assistant["content"]] == [None, mark]
    assert results["content"][0]["type"] == "tool_result" and results["content"][0]["cache_control"] == mark


def test_a_message_mark_never_lands_on_a_thinking_block_or_an_empty_one() -> None:
    mark = {"type": "ephemeral"}
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    out = translate(
        {
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Rules"}, {"type": "text", "text": ""}],
                 "cache_control": mark},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "", "thinking_blocks": [thinking], "cache_control": mark},
                {"role": "user", "content": "Again"},
            ]
        }
    )
    assert out["system"] == [{"type": "text", "text": "Rules", "cache_control": mark}]
    assert out["messages"][1]["content"] == [thinking], "a turn of thinking alone carries no mark"
