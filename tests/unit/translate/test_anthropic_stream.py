"""Streams: Anthropic events → OpenAI chunks, and OpenAI chunks → Anthropic events."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import anthropic
import anthropic.types
import openai.types.chat
from anthropic.types.shared.error_response import ErrorResponse
from pydantic import TypeAdapter

from switchboard_translate.anthropic import (
    AnthropicStreamToChat,
    ChatStreamToAnthropic,
    anthropic_message_to_chat_completion,
    chat_completion_to_anthropic_events,
    encode_anthropic_events,
)
from tests.fakes.anthropic_provider import FakeAnthropic

RAW_EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)
CHUNK = TypeAdapter(openai.types.chat.ChatCompletionChunk)
TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}},
]


def anthropic_events(model: str, **body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A message and its stream, made by the fake server's answer logic (Anthropic's exact event shapes)."""
    fake = FakeAnthropic()
    message = fake.message_for({"model": model, "messages": [{"role": "user", "content": "hi"}], **body})
    events = list(fake.stream_events(message))
    for event in events:
        if event["type"] != "ping":
            RAW_EVENT.validate_python(event)
    return message, events


def run_forward(events: list[dict[str, Any]], *, include_usage: bool) -> tuple[AnthropicStreamToChat, list[dict]]:
    translator = AnthropicStreamToChat(model="public", include_usage=include_usage, created=1700000000)
    chunks: list[dict[str, Any]] = []
    for event in events:
        chunks.extend(translator.event(event["type"], event))
    chunks.extend(translator.close())
    for chunk in chunks:
        CHUNK.validate_python(chunk)
    return translator, chunks


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What an OpenAI client rebuilds from the chunks."""
    message: dict[str, Any] = {"content": "", "reasoning_content": "", "tool_calls": {}}
    finish_reason = None
    usage = None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            message["content"] += delta.get("content") or ""
            message["reasoning_content"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = message["tool_calls"].setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = (call.get("function") or {}).get("name") or slot["name"]
                slot["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish_reason = choice["finish_reason"] or finish_reason
    return {"message": message, "finish_reason": finish_reason, "usage": usage}


def test_streamed_parallel_tool_calls_equal_the_whole_answer() -> None:
    message, events = anthropic_events("tool", tools=TOOLS)
    translator, chunks = run_forward(events, include_usage=True)
    whole = anthropic_message_to_chat_completion(message)
    streamed = assemble(chunks)
    whole_message = whole["choices"][0]["message"]
    assert streamed["message"]["content"] == whole_message["content"]
    assert [streamed["message"]["tool_calls"][i] for i in sorted(streamed["message"]["tool_calls"])] == [
        {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
        for c in whole_message["tool_calls"]
    ]
    assert len(whole_message["tool_calls"]) == 2
    assert streamed["finish_reason"] == "tool_calls"
    assert streamed["usage"] == whole["usage"] == translator.usage
    # The first chunk announces the role; tool-call deltas are keyed by tool index, not block index.
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["index"] for ch in chunks for c in (ch["choices"] or [{}])[0].get("delta", {}).get("tool_calls", [])} == {
        0,
        1,
    }


def test_usage_chunk_only_when_asked_but_usage_always_known() -> None:
    _, events = anthropic_events("cache")
    translator, chunks = run_forward(events, include_usage=False)
    assert all(chunk["choices"] for chunk in chunks)
    assert translator.usage is not None
    assert translator.usage["prompt_tokens"] == 12 + 1000 + 200
    assert translator.usage["prompt_tokens_details"]["cached_tokens"] == 1000
    _, chunks = run_forward(events, include_usage=True)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == translator.usage
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_thinking_deltas_become_reasoning_content() -> None:
    _, events = anthropic_events("thinking")
    _, chunks = run_forward(events, include_usage=False)
    streamed = assemble(chunks)
    assert streamed["message"]["reasoning_content"] == "Let me think step by step."
    assert streamed["message"]["content"] == "The answer is 4."


def test_message_delta_updates_cumulative_usage() -> None:
    _, events = anthropic_events("good")
    events[-2]["usage"] = {"output_tokens": 77, "input_tokens": 20, "cache_read_input_tokens": 5}
    translator, _ = run_forward(events, include_usage=False)
    assert translator.usage is not None
    assert (translator.usage["prompt_tokens"], translator.usage["completion_tokens"]) == (25, 77)


def test_error_event_and_cut_stream_are_failures() -> None:
    _, events = anthropic_events("good")
    translator = AnthropicStreamToChat()
    for event in events[:4]:
        translator.event(event["type"], event)
    assert translator.event("ping", {"type": "ping"}) == []
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert translator.event("error", error) == []
    assert translator.failure is not None and translator.failure.type == "overloaded_error"

    cut = AnthropicStreamToChat()
    for event in events[:4]:
        cut.event(event["type"], event)
    cut.close()
    assert cut.failure is not None and cut.failure.type == "stream_cut"
    assert cut.usage is not None  # input tokens from message_start are still known

    whole = AnthropicStreamToChat()
    for event in events:
        whole.event(event["type"], event)
    whole.close()
    assert whole.failure is None


# --- reverse: OpenAI chunks → Anthropic events -------------------------------------------------


def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


USAGE_CHUNK = {
    "id": "chatcmpl-9",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "gpt-4o",
    "choices": [],
    "usage": {
        "prompt_tokens": 40,
        "completion_tokens": 12,
        "total_tokens": 52,
        "prompt_tokens_details": {"cached_tokens": 30},
    },
}


def run_reverse(chunks: list[dict[str, Any]], **close: Any) -> list[dict[str, Any]]:
    translator = ChatStreamToAnthropic(model="claude-public")
    events: list[dict[str, Any]] = []
    for item in chunks:
        CHUNK.validate_python(item)
        events.extend(translator.feed(item))
    events.extend(translator.close(**close))
    for event in events:
        RAW_EVENT.validate_python(event)
    check_block_order(events)
    return events


def check_block_order(events: list[dict[str, Any]]) -> None:
    """message_start first; blocks opened in index order, one at a time; message_delta then message_stop last."""
    assert events[0]["type"] == "message_start"
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    open_index = None
    next_index = 0
    for event in events[1:-2]:
        if event["type"] == "content_block_start":
            assert open_index is None and event["index"] == next_index
            open_index, next_index = event["index"], next_index + 1
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index
        elif event["type"] == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
    assert open_index is None


async def sdk_final_message(events: list[dict[str, Any]]) -> anthropic.types.Message:
    """What the official Anthropic SDK makes of the encoded stream, served over loopback HTTP."""
    payload = encode_anthropic_events(events)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        await reader.readexactly(int(length.group(1)) if length else 0)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
            + b"content-length: %d\r\n\r\n" % len(payload)
            + payload
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0)
        async with client.messages.stream(
            model="claude-public", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
        await client.close()
        return message
    finally:
        server.close()
        await server.wait_closed()


async def test_reverse_stream_text_with_usage() -> None:
    events = run_reverse(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            USAGE_CHUNK,
        ]
    )
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"] == {
        "input_tokens": 10,
        "output_tokens": 12,
        "cache_read_input_tokens": 30,
        "cache_creation_input_tokens": 0,
    }
    message = await sdk_final_message(events)
    assert message.content[0].type == "text" and message.content[0].text == "Hello"
    assert message.usage.output_tokens == 12 and message.stop_reason == "end_turn"


async def test_reverse_stream_starting_with_a_tool_call_whose_arguments_come_first() -> None:
    events = run_reverse(
        [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk(
                {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}}]}
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
        ],
        usage={"prompt_tokens": 5, "completion_tokens": 3},
    )
    assert events[0]["type"] == "message_start"
    assert events[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
    }
    assert events[2]["delta"] == {"type": "input_json_delta", "partial_json": '{"city":'}
    message = await sdk_final_message(events)
    assert message.stop_reason == "tool_use"
    tools = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert tools == [("call_1", "get_weather", {"city": "Paris"}), ("call_2", "get_time", {})]
    assert message.usage.input_tokens == 5 and message.usage.output_tokens == 3


async def test_reverse_stream_reasoning_text_then_tools_close_in_order() -> None:
    events = run_reverse(
        [
            chunk({"role": "assistant", "reasoning_content": "Think"}),
            chunk({"reasoning_content": "ing"}),
            chunk({"content": "I'll check."}),
            chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x":1}'}}]}),
            chunk({}, "tool_calls"),
        ]
    )
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    message = await sdk_final_message(events)
    assert message.content[0].type == "thinking" and message.content[0].thinking == "Thinking"
    assert message.content[1].type == "text" and message.content[1].text == "I'll check."
    assert message.content[2].type == "tool_use" and message.content[2].input == {"x": 1}


async def test_reverse_stream_of_nothing_and_of_a_whole_completion() -> None:
    events = run_reverse([])
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    completion = {
        "id": "chatcmpl-2",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Done.",
                    "tool_calls": [{"id": "call_z", "type": "function", "function": {"name": "g", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    events = chat_completion_to_anthropic_events(completion, model="claude-public")
    check_block_order(events)
    message = await sdk_final_message(events)
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.stop_reason == "tool_use" and message.usage.output_tokens == 2


async def test_reverse_stream_refusal_becomes_text_with_refusal_stop() -> None:
    events = run_reverse(
        [chunk({"role": "assistant", "refusal": "I can't help with that."}), chunk({}, "content_filter")]
    )
    message = await sdk_final_message(events)
    assert message.content[0].type == "text" and message.content[0].text == "I can't help with that."
    assert message.stop_reason == "refusal"


def test_an_interrupted_stream_closes_its_block_and_reports_the_usage_without_a_stop_reason() -> None:
    translator = ChatStreamToAnthropic(model="claude-public")
    assert translator.interrupted(USAGE_CHUNK["usage"]) == [], "before message_start the error event is the stream"
    events = translator.feed(chunk({"role": "assistant", "content": "Hel"}))
    events += translator.interrupted(USAGE_CHUNK["usage"])
    for event in events:
        RAW_EVENT.validate_python(event)
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta",
                                          "content_block_stop", "message_delta"]
    assert events[-1]["delta"] == {"stop_reason": None, "stop_sequence": None}
    assert events[-1]["usage"] == {"input_tokens": 10, "output_tokens": 12, "cache_read_input_tokens": 30,
                                   "cache_creation_input_tokens": 0}
    assert translator.close() == [] and translator.interrupted(USAGE_CHUNK["usage"]) == [], "the stream is over"


def test_error_event_shape() -> None:
    event = ChatStreamToAnthropic.error("upstream failed", "overloaded_error")
    ErrorResponse.model_validate(event)
    assert encode_anthropic_events([event]).startswith(b"event: error\ndata: ")


# -- Thinking signatures: what Anthropic needs back in a later tool-use turn survives both translations --------


def _signed_thinking_events() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A message with a signed thinking block, a redacted one, a second signed one and a tool call, streamed."""
    fake = FakeAnthropic()
    message = fake.message_for({"model": "thinking", "messages": [{"role": "user", "content": "hi"}]})
    message["content"] = [
        {"type": "thinking", "thinking": "First, the weather.", "signature": "sig-one=="},
        {"type": "redacted_thinking", "data": "EncryptedBlob=="},
        {"type": "thinking", "thinking": "Then the tool.", "signature": "sig-two=="},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    message["stop_reason"] = "tool_use"
    return message, list(fake.stream_events(message))


def test_streamed_signatures_and_redacted_blocks_reach_chat_chunks() -> None:
    _, events = _signed_thinking_events()
    _, chunks = run_forward(events, include_usage=False)
    carried = [block for c in chunks for block in c["choices"][0]["delta"].get("thinking_blocks", []) if c["choices"]]
    assert carried == [
        {"type": "thinking", "thinking": "", "signature": "sig-one=="},
        {"type": "redacted_thinking", "data": "EncryptedBlob=="},
        {"type": "thinking", "thinking": "", "signature": "sig-two=="},
    ]
    assert assemble(chunks)["message"]["reasoning_content"] == "First, the weather.Then the tool."


async def test_anthropic_stream_through_chat_chunks_keeps_every_thinking_block_for_the_sdk() -> None:
    message, events = _signed_thinking_events()
    _, chunks = run_forward(events, include_usage=True)
    final = await sdk_final_message(run_reverse(chunks))
    assert [block.model_dump(exclude_none=True) for block in final.content] == [
        {**block, "input": block["input"]} if block["type"] == "tool_use" else block for block in message["content"]
    ]
    assert final.stop_reason == "tool_use"


async def test_thinking_text_after_a_signature_opens_the_next_block() -> None:
    events = run_reverse([
        chunk({"role": "assistant", "reasoning_content": "One."}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "s1"}]}),
        chunk({"reasoning_content": "Two."}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "s2"}]}),
        chunk({"content": "Done."}, "stop"),
    ])
    final = await sdk_final_message(events)
    assert [block.model_dump(exclude_none=True) for block in final.content] == [
        {"type": "thinking", "thinking": "One.", "signature": "s1"},
        {"type": "thinking", "thinking": "Two.", "signature": "s2"},
        {"type": "text", "text": "Done."},
    ]


async def test_a_whole_completion_with_signed_thinking_streams_each_block_signed() -> None:
    completion = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "claude",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "4.", "reasoning_content": "a. b.",
            "thinking_blocks": [{"type": "thinking", "thinking": "a. ", "signature": "s1"},
                                {"type": "thinking", "thinking": "b.", "signature": "s2"}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
    events = chat_completion_to_anthropic_events(completion)
    check_block_order(events)
    final = await sdk_final_message(events)
    assert [block.model_dump(exclude_none=True) for block in final.content] == [
        {"type": "thinking", "thinking": "a. ", "signature": "s1"},
        {"type": "thinking", "thinking": "b.", "signature": "s2"},
        {"type": "text", "text": "4."},
    ]
