"""Property: OpenAI ⇄ Anthropic translation loses no message, tool-call id, argument or usage figure."""

from __future__ import annotations

from typing import Any

import anthropic.types
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from switchboard_translate.anthropic import (
    AnthropicStreamToChat,
    anthropic_message_to_chat_completion,
    anthropic_request_to_chat,
    chat_completion_to_anthropic,
    chat_request_to_anthropic,
)
from tests.fakes.anthropic_provider import FakeAnthropic, validate

MESSAGE = TypeAdapter(anthropic.types.Message)
TOOL_NAMES = ["get_weather", "search_docs", "run_sql"]
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
    for name in TOOL_NAMES
]
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())
json_scalars = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
arguments = st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=4)
# OpenAI ids are any string; Anthropic's must match [A-Za-z0-9_-]+ and are mapped when they do not.
openai_ids = st.text(min_size=1, max_size=24)
anthropic_ids = st.from_regex(r"toolu_[A-Za-z0-9_-]{4,20}", fullmatch=True)


@st.composite
def tool_turn(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An assistant turn with tool calls, the tool messages answering them, maybe a user follow-up."""
    ids = draw(st.lists(openai_ids, min_size=1, max_size=3, unique=True))
    calls = [
        {
            "id": call_id,
            "type": "function",
            "function": {
                "name": draw(st.sampled_from(TOOL_NAMES)),
                "arguments": orjson.dumps(draw(arguments)).decode(),
            },
        }
        for call_id in ids
    ]
    turn: list[dict[str, Any]] = [{"role": "assistant", "content": draw(st.none() | texts), "tool_calls": calls}]
    turn += [{"role": "tool", "tool_call_id": call_id, "content": draw(texts)} for call_id in ids]
    if draw(st.booleans()):
        turn.append({"role": "user", "content": draw(texts)})
    return turn


@st.composite
def openai_requests(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(texts)})
    messages.append({"role": "user", "content": draw(texts)})
    for _ in range(draw(st.integers(0, 3))):
        if messages[-1]["role"] in ("user", "tool") and draw(st.booleans()):
            messages.extend(draw(tool_turn()))
        else:
            if messages[-1]["role"] != "assistant":
                messages.append({"role": "assistant", "content": draw(texts)})
            messages.append({"role": "user", "content": draw(texts)})
    return {"model": "public", "messages": messages, "tools": TOOLS, "max_tokens": 500}


def comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with tool-call arguments parsed, so JSON spacing does not count as a difference."""
    out = []
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {"id": c["id"], "name": c["function"]["name"], "args": orjson.loads(c["function"]["arguments"])}
                for c in message["tool_calls"]
            ]
        out.append(message)
    return out


@SETTINGS
@given(openai_requests())
def test_request_keeps_every_message_and_tool_call(request: dict[str, Any]) -> None:
    anthropic_body = chat_request_to_anthropic(request, model="claude-x")
    validate({"x-api-key": "k", "anthropic-version": "2023-06-01"}, anthropic_body)
    back = anthropic_request_to_chat(anthropic_body)
    assert comparable(back["messages"]) == comparable(request["messages"])
    assert [t["function"]["name"] for t in back["tools"]] == TOOL_NAMES


@st.composite
def anthropic_answers(draw: st.DrawFn) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if draw(st.booleans()):
        content.append({"type": "text", "text": draw(texts)})
    ids = draw(st.lists(anthropic_ids, max_size=3, unique=True))
    for tool_id in ids:
        content.append(
            {"type": "tool_use", "id": tool_id, "name": draw(st.sampled_from(TOOL_NAMES)), "input": draw(arguments)}
        )
    if not content:
        content.append({"type": "text", "text": draw(texts)})
    counts = st.integers(0, 10**6)
    return {
        "id": "msg_" + draw(st.from_regex(r"[A-Za-z0-9]{8}", fullmatch=True)),
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": "tool_use" if ids else draw(st.sampled_from(["end_turn", "max_tokens", "refusal"])),
        "stop_sequence": None,
        "usage": {
            "input_tokens": draw(counts),
            "output_tokens": draw(counts),
            "cache_read_input_tokens": draw(counts),
            "cache_creation_input_tokens": draw(counts),
        },
    }


@SETTINGS
@given(anthropic_answers())
def test_answer_keeps_every_block_id_argument_and_usage_figure(answer: dict[str, Any]) -> None:
    MESSAGE.validate_python(answer)
    completion = anthropic_message_to_chat_completion(answer)
    usage = answer["usage"]
    assert completion["usage"]["prompt_tokens"] == (
        usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
    )
    back = chat_completion_to_anthropic(completion)
    MESSAGE.validate_python(back)
    assert back["content"] == answer["content"]
    assert back["usage"] == usage
    assert back["stop_reason"] == answer["stop_reason"]

    # The same answer streamed gives the same completion.
    fake = FakeAnthropic()
    translator = AnthropicStreamToChat(include_usage=True)
    tool_calls: dict[int, dict[str, str]] = {}
    text = ""
    for event in fake.stream_events(answer):
        for chunk in translator.event(event["type"], event):
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
                for call in choice["delta"].get("tool_calls") or []:
                    slot = tool_calls.setdefault(call["index"], {"id": "", "arguments": ""})
                    slot["id"] = call.get("id") or slot["id"]
                    slot["arguments"] += call["function"].get("arguments") or ""
    whole = completion["choices"][0]["message"]
    assert text == (whole["content"] or "")
    assert [(tool_calls[i]["id"], orjson.loads(tool_calls[i]["arguments"] or "{}")) for i in sorted(tool_calls)] == [
        (c["id"], orjson.loads(c["function"]["arguments"])) for c in whole.get("tool_calls") or []
    ]
    assert translator.usage == completion["usage"]


@st.composite
def anthropic_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Anthropic Messages bodies of the shape clients send: text, tool_use turns and their tool_result turns."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(texts)}]
    for _ in range(draw(st.integers(0, 3))):
        content: list[dict[str, Any]] = []
        if draw(st.booleans()):
            content.append({"type": "text", "text": draw(texts)})
        ids = draw(st.lists(anthropic_ids, max_size=3, unique=True))
        content += [
            {"type": "tool_use", "id": i, "name": draw(st.sampled_from(TOOL_NAMES)), "input": draw(arguments)}
            for i in ids
        ]
        if not content:
            content.append({"type": "text", "text": draw(texts)})
        messages.append({"role": "assistant", "content": content})
        answer: list[dict[str, Any]] = [{"type": "tool_result", "tool_use_id": i, "content": draw(texts)} for i in ids]
        if not ids or draw(st.booleans()):
            answer.append({"type": "text", "text": draw(texts)})
        messages.append({"role": "user", "content": answer})
    tools = [{"name": name, "input_schema": {"type": "object", "properties": {}}} for name in TOOL_NAMES]
    return {"model": "claude-x", "max_tokens": 1000, "system": draw(texts), "messages": messages, "tools": tools}


def as_blocks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "role": m["role"],
            "content": [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"],
        }
        for m in messages
    ]


@SETTINGS
@given(anthropic_requests())
def test_anthropic_request_survives_the_trip_through_openai(body: dict[str, Any]) -> None:
    validate({"x-api-key": "k", "anthropic-version": "2023-06-01"}, body)
    again = chat_request_to_anthropic(anthropic_request_to_chat(body), model="claude-x", default_max_tokens=1)
    assert again["system"] == [{"type": "text", "text": body["system"]}]
    assert as_blocks(again["messages"]) == as_blocks(body["messages"])
    assert again["max_tokens"] == body["max_tokens"]
