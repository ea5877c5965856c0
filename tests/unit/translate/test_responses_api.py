"""Responses API requests normalise to canonical chat; chat completions come back as SDK-valid responses."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import Response

from switchboard_translate.cursor import SourceShape
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.reasoning_replay import Replay, decode_replay, encode_replay
from switchboard_translate.responses_api import chat_completion_to_response, normalize_responses_request

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "responses"


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def mask_ids(response: dict[str, Any]) -> dict[str, Any]:
    """Output item ids reduced to their prefix and completed_at to a marker, for exact comparison."""
    masked = dict(response)
    masked["output"] = [{**item, "id": item["id"].split("_")[0]} for item in response["output"]]
    if masked.get("completed_at") is not None:
        masked["completed_at"] = "<timestamp>"
    return masked


@pytest.mark.parametrize("name", ["agents_sdk_request.json", "codex_request.json"])
def test_request_fixture_normalises_exactly(name: str) -> None:
    case = _load(name)
    result = normalize_responses_request(case["request"])
    assert result.body == case["expected"]["body"]
    assert sorted(result.custom_tools) == case["expected"]["custom_tools"]
    assert result.source_shape == SourceShape(case["expected"]["source_shape"])
    assert result.dropped_fields == case["expected"]["dropped_fields"]


def test_responses_endpoint_requires_input() -> None:
    with pytest.raises(InvalidRequest) as caught:
        normalize_responses_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert caught.value.param == "input"


def test_completion_fixture_becomes_the_exact_response() -> None:
    case = _load("completion_to_response.json")
    response = chat_completion_to_response(case["completion"], case["request"], response_id="resp_fixture")
    assert mask_ids(response) == case["expected"]
    Response.model_validate(response)


def test_every_output_item_gets_a_distinct_id() -> None:
    case = _load("completion_to_response.json")
    response = chat_completion_to_response(case["completion"], case["request"])
    ids = [item["id"] for item in response["output"]]
    assert len(set(ids)) == len(ids)
    assert response["id"].startswith("resp_")


@pytest.mark.parametrize(
    ("finish_reason", "status", "reason"),
    [
        ("stop", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_finish_reason_sets_status(finish_reason: str, status: str, reason: str | None) -> None:
    completion = {
        "id": "c",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "partial"}, "finish_reason": finish_reason}
        ],
    }
    response = chat_completion_to_response(completion, {"model": "m", "input": "x"})
    parsed = Response.model_validate(response)
    assert parsed.status == status
    assert (parsed.incomplete_details.reason if parsed.incomplete_details else None) == reason
    assert parsed.output_text == "partial"
    assert parsed.output[0].status == status  # the cut message item is incomplete too, as OpenAI marks it
    assert parsed.usage is None


def test_refusal_is_a_refusal_part() -> None:
    completion = {
        "id": "c",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                "finish_reason": "stop",
            }
        ],
    }
    parsed = Response.model_validate(chat_completion_to_response(completion, {"model": "m", "input": "x"}))
    assert parsed.output[0].type == "message"
    assert parsed.output[0].content[0].type == "refusal"


def test_round_trip_output_items_are_valid_next_turn_input() -> None:
    """A client resends the response's output items plus its tool output; the conversation survives intact."""
    request = {
        "model": "m",
        "input": [{"role": "user", "content": "Fix a.py"}],
        "tools": [
            {"type": "function", "name": "read_file", "parameters": {"type": "object", "properties": {}}},
            {"type": "custom", "name": "apply_patch"},
        ],
    }
    first = normalize_responses_request(request).body
    assert [m["role"] for m in first["messages"]] == ["user"]
    completion = _load("completion_to_response.json")["completion"]
    response = chat_completion_to_response(completion, request)
    Response.model_validate(response)
    next_input = [
        *request["input"],
        *response["output"],
        {"type": "function_call_output", "call_id": "call_1", "output": "x = 1"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Success."},
    ]
    second = normalize_responses_request({**request, "input": next_input})
    assert second.custom_tools == {"apply_patch"}
    assert second.body["messages"] == [
        {"role": "user", "content": "Fix a.py"},
        {
            "role": "assistant",
            "content": "Reading and patching.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path":"a.py"}'}},
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "apply_patch", "arguments": '{"input":"*** Begin Patch\\n*** End Patch"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "x = 1"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Success."},
    ]


def test_the_response_names_the_model_the_request_asked_for() -> None:
    completion = {"id": "c", "created": 1, "model": "gpt-4o-2024-08-06", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    assert chat_completion_to_response(completion, {"model": "team-gpt", "input": "x"})["model"] == "team-gpt"


SIGNED_BLOCK = {"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCkYIBxgCKkD=="}
CLAUDE_TOOL_TURN: dict[str, Any] = {
    "id": "msg_1", "object": "chat.completion", "created": 1760000000, "model": "claude-sonnet-4-5",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "reasoning_content": SIGNED_BLOCK["thinking"],
        "thinking_blocks": [SIGNED_BLOCK, {"type": "redacted_thinking", "data": "b3BhcXVl"}],
        "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}}],
}
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("level", ["auto", "concise", "detailed"])
def test_thinking_is_the_reasoning_summary_when_one_is_asked_for(level: str) -> None:
    request = {"model": "team-claude", "input": "weather?", "tools": [WEATHER],
               "reasoning": {"effort": "high", "summary": level}}
    response = chat_completion_to_response(CLAUDE_TOOL_TURN, request)
    parsed = Response.model_validate(response)
    reasoning = parsed.output[0]
    assert reasoning.type == "reasoning" and reasoning.status == "completed"
    assert [(part.type, part.text) for part in reasoning.summary] == [("summary_text", SIGNED_BLOCK["thinking"])]
    assert not reasoning.content
    assert parsed.reasoning is not None and parsed.reasoning.summary == level
    assert parsed.output[1].type == "function_call"


def test_without_a_summary_asked_for_thinking_stays_reasoning_text() -> None:
    for reasoning in ({"effort": "high"}, {"effort": "high", "summary": None}):
        request = {"model": "team-claude", "input": "weather?", "tools": [WEATHER], "reasoning": reasoning}
        item = chat_completion_to_response(CLAUDE_TOOL_TURN, request)["output"][0]
        assert item["summary"] == [] and item["content"] == [{"type": "reasoning_text",
                                                              "text": SIGNED_BLOCK["thinking"]}]
        assert item["encrypted_content"] == encode_replay(
            CLAUDE_TOOL_TURN["choices"][0]["message"]["thinking_blocks"])


@pytest.mark.parametrize("summary", ["auto", None])
def test_claudes_signed_thinking_comes_back_on_the_next_turn(summary: str | None) -> None:
    """Codex and the Agents SDK resend reasoning items as they came: the signed blocks reach the assistant turn."""
    request: dict[str, Any] = {"model": "team-claude", "tools": [WEATHER],
                               "input": [{"role": "user", "content": "weather in Paris?"}],
                               "reasoning": {"effort": "high", "summary": summary}}
    response = chat_completion_to_response(CLAUDE_TOOL_TURN, request)
    Response.model_validate(response)
    next_input = [*request["input"], *response["output"],
                  {"type": "function_call_output", "call_id": "toolu_1", "output": "Sunny"}]
    messages = normalize_responses_request({**request, "input": next_input}).body["messages"]
    assert messages[1] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}],
        "thinking_blocks": [SIGNED_BLOCK, {"type": "redacted_thinking", "data": "b3BhcXVl"}],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny"}


def test_reasoning_the_gateway_did_not_write_is_left_out() -> None:
    def assistant_turn(encrypted: object) -> dict[str, Any]:
        return dict(normalize_responses_request({"model": "m", "input": [
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": encrypted},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ]}).body["messages"][1])

    assert assistant_turn(encode_replay([SIGNED_BLOCK]))["thinking_blocks"] == [SIGNED_BLOCK]
    unsigned = "sbthink1." + base64.urlsafe_b64encode(b'[{"type":"thinking","thinking":"x"}]').decode()
    for foreign in ("gAAAAABoOpenAIsOwn", "sbthink1.not-base64!", "sbthink1.bm90IGpzb24=", unsigned, None, 42):
        assert "thinking_blocks" not in assistant_turn(foreign), foreign


def test_thinking_goes_to_the_assistant_turn_it_began_only() -> None:
    carried = encode_replay([SIGNED_BLOCK])
    messages = normalize_responses_request({"model": "m", "input": [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": carried},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "ok"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": carried},
        {"role": "assistant", "content": [{"type": "output_text", "text": "and more"}]},
    ]}).body["messages"]
    assert [m.get("thinking_blocks") for m in messages] == [None, None, None, [SIGNED_BLOCK]]
    assert encode_replay([{"type": "thinking", "thinking": "unsigned", "signature": ""}]) is None


GEMINI_TOOL_TURN: dict[str, Any] = {
    "id": "gemini-1", "object": "chat.completion", "created": 1760000000, "model": "gemini-3-pro",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
             "extra_content": {"google": {"thought_signature": "c2lnLTA="}}},
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]}}],
}


def test_geminis_thought_signature_comes_back_on_its_call() -> None:
    """A function_call item has no field for it: a reasoning item ahead of the calls carries the signature, and the
    next turn puts it back on the call it came with (and only that one), where Gemini's translation reads it."""
    request: dict[str, Any] = {"model": "team-gemini", "tools": [WEATHER],
                               "input": [{"role": "user", "content": "weather in Paris and Rome?"}]}
    response = chat_completion_to_response(GEMINI_TOOL_TURN, request)
    Response.model_validate(response)
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call",
                                                              "function_call"]
    reasoning = response["output"][0]
    assert reasoning["summary"] == [] and reasoning["content"] == []
    assert reasoning["encrypted_content"] == encode_replay(None, {"call_0": "c2lnLTA="})
    next_input = [*request["input"], *response["output"],
                  {"type": "function_call_output", "call_id": "call_0", "output": "Sunny"},
                  {"type": "function_call_output", "call_id": "call_1", "output": "Rainy"}]
    messages = normalize_responses_request({**request, "input": next_input}).body["messages"]
    assert messages[1]["content"] == "Checking." and "thinking_blocks" not in messages[1]
    assert [call.get("extra_content") for call in messages[1]["tool_calls"]] == [
        {"google": {"thought_signature": "c2lnLTA="}}, None]
    # Gemini's call ids repeat from answer to answer: a signature its call did not take is dropped when the turn
    # ends (at the tool results, or the user's next message), never given to a later call of the same id.
    for boundary in (next_input[-1], {"role": "user", "content": "and Rome?"}):
        later = normalize_responses_request({**request, "input": [
            *request["input"], reasoning, boundary, *response["output"][2:], *next_input[-2:]]}).body["messages"]
        assert [c.get("extra_content") for m in later if m["role"] == "assistant" for c in m["tool_calls"]] == [
            None, None]


def test_claudes_blocks_and_geminis_signatures_travel_together_and_an_altered_value_carries_nothing() -> None:
    carried = encode_replay([SIGNED_BLOCK], {"call_0": "c2lnLTA="})
    assert decode_replay(carried) == Replay([SIGNED_BLOCK], {"call_0": "c2lnLTA="})
    bad_entry = "sbthink1." + base64.urlsafe_b64encode(
        b'[{"type":"thought_signature","call_id":"call_0","signature":""}]').decode()
    assert decode_replay(bad_entry) == Replay()
    assert encode_replay(None, {"call_0": ""}) is None and encode_replay(None, {}) is None
