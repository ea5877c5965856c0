"""Chat chunks become Responses stream events that the official SDK parses and accumulates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from switchboard_translate.reasoning_replay import decode_replay
from switchboard_translate.responses_api import chat_completion_to_response
from switchboard_translate.responses_stream import ChatChunksToResponseEvents
from switchboard_translate.sse import encode_event

EVENT = TypeAdapter(ResponseStreamEvent)
REQUEST: dict[str, Any] = {
    "model": "team-gpt",
    "input": "Fix a.py",
    "tools": [
        {
            "type": "function",
            "name": "read_file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
        },
    ],
}
PATCH = '*** Begin Patch\n*** Update File: a.py\n+x = "é"\n*** End Patch'


def mask_ids(response: dict[str, Any]) -> dict[str, Any]:
    masked = {**response, "output": [{**item, "id": item["id"].split("_")[0]} for item in response["output"]]}
    masked["completed_at"] = "<timestamp>" if response.get("completed_at") is not None else None
    return masked


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "gpt-5",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _script() -> list[dict[str, Any]]:
    """A provider stream: reasoning, text, a function call and a custom-tool call in small fragments."""
    patch_args = json.dumps({"input": PATCH})
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "Read "}),
        _chunk({"reasoning_content": "then patch."}),
        _chunk({"content": "Reading "}),
        _chunk({"content": "and patching."}),
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": ""}}
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path":'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a.py"}'}}]}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "apply_patch", "arguments": ""},
                    }
                ]
            }
        ),
    ]
    chunks += [
        _chunk({"tool_calls": [{"index": 1, "function": {"arguments": patch_args[i : i + 5]}}]})
        for i in range(0, len(patch_args), 5)
    ]
    chunks.append(_chunk({}, "tool_calls"))
    chunks.append(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1760000000,
            "model": "gpt-5",
            "choices": [],
            "usage": {"prompt_tokens": 50, "completion_tokens": 30, "total_tokens": 80},
        }
    )
    return chunks


def _translate(chunks: list[dict[str, Any]], request: dict[str, Any] = REQUEST) -> list[tuple[str, dict[str, Any]]]:
    translator = ChatChunksToResponseEvents(request, response_id="resp_test", created_at=1760000000)
    events = []
    for chunk in chunks:
        events.extend(translator.feed(chunk))
    events.extend(translator.finish())
    assert translator.finish() == []  # finishing twice emits nothing more
    return events


def test_every_event_parses_with_the_sdk_and_is_numbered() -> None:
    events = _translate(_script())
    for number, (name, payload) in enumerate(events):
        assert payload["type"] == name
        assert payload["sequence_number"] == number
        EVENT.validate_python(payload)


def test_event_order_matches_openai() -> None:
    names = [name for name, _ in _translate(_script())]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[2:8] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
    ]
    text_start = names.index("response.output_text.delta")
    assert names[text_start - 2 : text_start] == ["response.output_item.added", "response.content_part.added"]
    assert names[names.index("response.output_text.done") + 1 : names.index("response.output_text.done") + 3] == [
        "response.content_part.done",
        "response.output_item.done",
    ]
    done = names.index("response.function_call_arguments.done")
    assert names[done + 1] == "response.output_item.done"
    assert names[done + 2] == "response.output_item.added"  # the custom call opens only after the function call closed
    assert names[-3:] == [
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_sdk_accumulator_rebuilds_the_same_response() -> None:
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    final = None
    for _, payload in _translate(_script()):
        for event in state.handle_event(EVENT.validate_python(payload)):
            if event.type == "response.completed":
                final = event.response
    assert final is not None
    assert final.output_text == "Reading and patching."
    kinds = [item.type for item in final.output]
    assert kinds == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert final.output[2].arguments == '{"path":"a.py"}'
    assert final.output[3].input == PATCH
    assert final.usage is not None and final.usage.total_tokens == 80


def test_custom_input_deltas_carry_raw_text() -> None:
    events = _translate(_script())
    deltas = "".join(p["delta"] for n, p in events if n == "response.custom_tool_call_input.delta")
    assert deltas == PATCH


def test_stream_and_non_stream_agree() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1760000000,
        "model": "gpt-5",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "reasoning_content": "Read then patch.",
                    "content": "Reading and patching.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": '{"path":"a.py"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "apply_patch", "arguments": json.dumps({"input": PATCH})},
                        },
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 30, "total_tokens": 80},
    }
    streamed = _translate(_script())[-1][1]["response"]
    whole = chat_completion_to_response(completion, REQUEST, response_id="resp_test")
    assert mask_ids(streamed) == mask_ids(whole)


def test_length_finish_ends_incomplete() -> None:
    events = _translate([_chunk({"content": "trunc"}), _chunk({}, "length")])
    name, payload = events[-1]
    assert name == "response.incomplete"
    assert payload["response"]["status"] == "incomplete"
    assert payload["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert payload["response"]["output"][0]["status"] == "incomplete"
    done = [p for n, p in events if n == "response.output_item.done"]
    assert done[-1]["item"]["status"] == "incomplete"
    EVENT.validate_python(payload)


def test_empty_stream_still_completes() -> None:
    names = [name for name, _ in _translate([])]
    assert names == ["response.created", "response.in_progress", "response.completed"]


def test_fail_ends_with_response_failed() -> None:
    translator = ChatChunksToResponseEvents(REQUEST)
    translator.feed(_chunk({"content": "par"}))
    name, payload = translator.fail("upstream reset the connection")[-1]
    assert name == "response.failed"
    assert payload["response"]["error"] == {"code": "server_error", "message": "upstream reset the connection"}
    EVENT.validate_python(payload)
    assert translator.finish() == []


def test_tool_name_arriving_late_is_kept() -> None:
    events = _translate(
        [
            _chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"arguments": ""}}]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"name": "read_file", "arguments": "{}"}}]}),
            _chunk({}, "tool_calls"),
        ]
    )
    final = events[-1][1]["response"]
    assert final["output"][0]["name"] == "read_file"


async def _serve_sse(body: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def sse_server() -> AsyncIterator[int]:
    body = b"".join(encode_event(name, orjson.dumps(payload)) for name, payload in _translate(_script()))
    server, port = await _serve_sse(body)
    async with server:
        yield port


async def test_official_sdk_streams_our_events_over_http(sse_server: int) -> None:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{sse_server}/v1", max_retries=0)
    async with client.responses.stream(model="team-gpt", input="Fix a.py") as stream:
        text = ""
        async for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
        final = await stream.get_final_response()
    await client.close()
    assert text == "Reading and patching."
    assert final.id == "resp_test"
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call", "custom_tool_call"]


def test_refusal_streams_as_a_refusal_part() -> None:
    events = _translate(
        [_chunk({"role": "assistant", "refusal": "I can't "}), _chunk({"refusal": "help."}), _chunk({}, "stop")]
    )
    for _, payload in events:
        EVENT.validate_python(payload)
    names = [name for name, _ in events]
    assert "response.refusal.delta" in names
    done = next(p for n, p in events if n == "response.refusal.done")
    assert done["refusal"] == "I can't help."
    final = events[-1][1]["response"]
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]


def test_every_event_names_the_model_the_request_asked_for() -> None:
    # The provider answers with its own id (here "gpt-5"); the client asked for "team-gpt" and is told so.
    events = _translate(_script())
    envelopes = [(name, payload["response"]) for name, payload in events if "response" in payload]
    assert [name for name, _ in envelopes] == ["response.created", "response.in_progress", "response.completed"]
    assert {response["model"] for _, response in envelopes} == {"team-gpt"}
    translator = ChatChunksToResponseEvents(REQUEST)
    translator.feed(_chunk({"content": "par"}))
    assert translator.fail("cut")[-1][1]["response"]["model"] == "team-gpt"


def _failed(chunks: list[dict[str, Any]], request: dict[str, Any] = REQUEST) -> tuple[list[str], dict[str, Any]]:
    """The names of the events a stream cut after ``chunks`` sends, and its ``response.failed`` response."""
    translator = ChatChunksToResponseEvents(request, response_id="resp_test", created_at=1760000000)
    events = [event for chunk in chunks for event in translator.feed(chunk)]
    events += translator.fail("upstream reset the connection")
    for _, payload in events:
        EVENT.validate_python(payload)
    name, payload = events[-1]
    assert name == "response.failed" and payload["response"]["status"] == "failed"
    Response.model_validate(payload["response"])
    return [n for n, _ in events], payload["response"]


def test_a_failed_stream_keeps_the_text_streamed_so_far() -> None:
    names, response = _failed([_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Hello "}),
                               _chunk({"content": "wor"})])
    assert response["error"] == {"code": "server_error", "message": "upstream reset the connection"}
    [message] = response["output"]
    assert message["type"] == "message" and message["status"] == "incomplete"
    assert message["content"] == [{"type": "output_text", "text": "Hello wor", "annotations": [], "logprobs": []}]
    # The open item is not closed with .done events: it did not finish.
    assert names[-1] == "response.failed" and "response.output_item.done" not in names


def test_a_failed_stream_keeps_finished_items_as_sent_and_the_open_call_so_far() -> None:
    chunks = _script()[:9]  # reasoning, text and the read_file call done; apply_patch has only begun
    chunks.append(_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"input": "*** Be'}}]}))
    names, response = _failed(chunks)
    kinds = [(item["type"], item.get("status")) for item in response["output"]]
    assert kinds == [("reasoning", "completed"), ("message", "completed"), ("function_call", "completed"),
                     ("custom_tool_call", None)]
    done = [p["item"] for n, p in _translate(_script()) if n == "response.output_item.done"]
    assert response["output"][2] == {**done[2], "id": response["output"][2]["id"]}
    assert response["output"][2]["arguments"] == '{"path":"a.py"}'
    assert response["output"][3]["input"] == "*** Be"  # the raw input received so far
    # A function call cut mid-arguments is an incomplete item with its arguments so far.
    _, cut_call = _failed(_script()[:7])
    assert cut_call["output"][-1] == {**cut_call["output"][-1], "type": "function_call", "status": "incomplete",
                                      "arguments": '{"path":'}


def test_a_failed_stream_keeps_a_refusal_so_far() -> None:
    _, response = _failed([_chunk({"refusal": "I can't"})])
    assert response["output"][0]["status"] == "incomplete"
    assert response["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't"}]


SUMMARY_REQUEST: dict[str, Any] = {"model": "team-claude", "input": "2+2?",
                                   "reasoning": {"effort": "medium", "summary": "auto"}}
SIGNED = {"type": "thinking", "thinking": "", "signature": "sig-abc=="}


def _claude_script() -> list[dict[str, Any]]:
    """Claude's stream as the router's chunks: thinking text, its signature, then the answer."""
    return [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "Two and "}),
        _chunk({"reasoning_content": "two make four."}),
        _chunk({"thinking_blocks": [SIGNED]}),
        _chunk({"content": "It is "}),
        _chunk({"content": "4."}),
        _chunk({}, "stop"),
    ]


def test_reasoning_streams_as_a_summary_when_one_is_asked_for() -> None:
    events = _translate(_claude_script(), SUMMARY_REQUEST)
    for _, payload in events:
        EVENT.validate_python(payload)
    names = [name for name, _ in events]
    assert names[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    assert "response.reasoning_text.delta" not in names and names[9] == "response.output_item.added"
    payloads = dict(events[2:9])
    where = {"item_id": payloads["response.output_item.added"]["item"]["id"], "output_index": 0, "summary_index": 0}
    assert payloads["response.output_item.added"]["item"]["summary"] == []
    assert payloads["response.reasoning_summary_part.added"] == {
        **payloads["response.reasoning_summary_part.added"], **where, "part": {"type": "summary_text", "text": ""}}
    assert [p["delta"] for n, p in events if n == "response.reasoning_summary_text.delta"] == ["Two and ",
                                                                                               "two make four."]
    assert payloads["response.reasoning_summary_text.done"]["text"] == "Two and two make four."
    assert payloads["response.reasoning_summary_part.done"]["part"] == {"type": "summary_text",
                                                                        "text": "Two and two make four."}
    item = payloads["response.output_item.done"]["item"]
    assert item["summary"] == [{"type": "summary_text", "text": "Two and two make four."}]
    assert "content" not in item and item["status"] == "completed"
    # Claude's signed block rides along, for the client to send back.
    assert decode_replay(item["encrypted_content"]).thinking_blocks == [
        {"type": "thinking", "thinking": "Two and two make four.", "signature": "sig-abc=="}]
    final = events[-1][1]["response"]
    assert final["output"][0] == item and final["reasoning"] == {"effort": "medium", "summary": "auto"}


def test_sdk_accumulates_the_summary_and_stream_and_whole_agree() -> None:
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    final = None
    for _, payload in _translate(_claude_script(), SUMMARY_REQUEST):
        for event in state.handle_event(EVENT.validate_python(payload)):
            if event.type == "response.completed":
                final = event.response
    assert final is not None and final.output_text == "It is 4."
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text == "Two and two make four."
    completion = {"id": "msg_1", "object": "chat.completion", "created": 1760000000, "model": "claude-sonnet-4-5",
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {
                      "role": "assistant", "content": "It is 4.", "reasoning_content": "Two and two make four.",
                      "thinking_blocks": [{**SIGNED, "thinking": "Two and two make four."}]}}]}
    streamed = _translate(_claude_script(), SUMMARY_REQUEST)[-1][1]["response"]
    whole = chat_completion_to_response(completion, SUMMARY_REQUEST, response_id="resp_test")
    assert mask_ids(streamed) == mask_ids(whole)


def test_without_a_summary_asked_for_reasoning_streams_as_reasoning_text() -> None:
    events = _translate(_claude_script(), {**SUMMARY_REQUEST, "reasoning": {"effort": "medium"}})
    names = [name for name, _ in events]
    assert not [name for name in names if "summary" in name]
    assert names[2:8] == ["response.output_item.added", "response.content_part.added",
                          "response.reasoning_text.delta", "response.reasoning_text.delta",
                          "response.reasoning_text.done", "response.content_part.done"]
    item = next(p["item"] for n, p in events if n == "response.output_item.done")
    assert item["summary"] == [] and item["content"] == [{"type": "reasoning_text", "text": "Two and two make four."}]
    assert decode_replay(item["encrypted_content"]).thinking_blocks[0]["signature"] == "sig-abc=="


def test_each_signed_block_keeps_its_own_text_and_redacted_blocks_are_kept() -> None:
    redacted = {"type": "redacted_thinking", "data": "opaque=="}
    events = _translate([
        _chunk({"thinking_blocks": [redacted]}),
        _chunk({"reasoning_content": "First."}),
        _chunk({"thinking_blocks": [{**SIGNED, "signature": "s1"}]}),
        _chunk({"reasoning_content": "Second."}),
        _chunk({"thinking_blocks": [{**SIGNED, "signature": "s2"}]}),
        _chunk({"content": "Done."}),
    ], SUMMARY_REQUEST)
    item = next(p["item"] for n, p in events if n == "response.output_item.done")
    assert item["summary"] == [{"type": "summary_text", "text": "First.Second."}]
    assert decode_replay(item["encrypted_content"]).thinking_blocks == [
        redacted, {"type": "thinking", "thinking": "First.", "signature": "s1"},
        {"type": "thinking", "thinking": "Second.", "signature": "s2"}]


def test_a_failed_stream_keeps_the_summary_so_far() -> None:
    _, response = _failed(_claude_script()[:3], SUMMARY_REQUEST)
    [reasoning] = response["output"]
    assert reasoning["status"] == "incomplete"
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Two and two make four."}]
    assert "encrypted_content" not in reasoning  # no signature came: nothing to replay


def _token(token: str, logprob: float, top: list[tuple[str, float]] | None = None,
           raw: list[int] | None = None) -> dict[str, Any]:
    """A chat ``logprobs.content`` entry (``bytes`` null unless given, as some providers send it)."""
    return {"token": token, "logprob": logprob, "bytes": raw,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top or []]}


def _text_chunk(text: str, *tokens: dict[str, Any]) -> dict[str, Any]:
    chunk = _chunk({"content": text})
    chunk["choices"][0]["logprobs"] = {"content": list(tokens), "refusal": None}
    return chunk


LOGPROB_SCRIPT = [
    _chunk({"role": "assistant", "content": ""}),
    _text_chunk("Hi", _token("Hi", -0.1, [("Hi", -0.1), ("Hey", -2.5)], [72, 105])),
    _text_chunk(" é", _token(" é", -0.5, [(" é", -0.5)])),
    _chunk({}, "stop"),
]


def test_log_probabilities_stream_with_the_text_they_belong_to() -> None:
    """Each text delta carries its tokens' log probabilities in the delta event's shape; .done, the finished part and
    item carry the whole text's, the part's with bytes (UTF-8 of the token when the provider sent none)."""
    events = _translate(LOGPROB_SCRIPT)
    for _, payload in events:
        EVENT.validate_python(payload)
    deltas = [p["logprobs"] for n, p in events if n == "response.output_text.delta"]
    assert deltas == [[{"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1},
                                                                        {"token": "Hey", "logprob": -2.5}]}],
                      [{"token": " é", "logprob": -0.5, "top_logprobs": [{"token": " é", "logprob": -0.5}]}]]
    done = next(p for n, p in events if n == "response.output_text.done")
    assert done["logprobs"] == deltas[0] + deltas[1]
    whole = [{"token": "Hi", "bytes": [72, 105], "logprob": -0.1,
              "top_logprobs": [{"token": "Hi", "bytes": [72, 105], "logprob": -0.1},
                               {"token": "Hey", "bytes": [72, 101, 121], "logprob": -2.5}]},
             {"token": " é", "bytes": [32, 195, 169], "logprob": -0.5,
              "top_logprobs": [{"token": " é", "bytes": [32, 195, 169], "logprob": -0.5}]}]
    part_done = next(p for n, p in events if n == "response.content_part.done")
    assert part_done["part"]["logprobs"] == whole
    item = next(p["item"] for n, p in events if n == "response.output_item.done")
    assert item["content"][0]["logprobs"] == whole
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["logprobs"] == whole
    completion = {"id": "c", "object": "chat.completion", "created": 1760000000, "model": "gemini",
                  "choices": [{"index": 0, "finish_reason": "stop", "logprobs": {"content": [
                      _token("Hi", -0.1, [("Hi", -0.1), ("Hey", -2.5)], [72, 105]),
                      _token(" é", -0.5, [(" é", -0.5)])]},
                      "message": {"role": "assistant", "content": "Hi é"}}]}
    assert mask_ids(final) == mask_ids(chat_completion_to_response(completion, REQUEST, response_id="resp_test"))


def test_a_failed_stream_keeps_the_log_probabilities_so_far() -> None:
    _, response = _failed(LOGPROB_SCRIPT[:2])
    [message] = response["output"]
    assert message["status"] == "incomplete" and [e["token"] for e in message["content"][0]["logprobs"]] == ["Hi"]


def _gemini_call_chunk(index: int, call_id: str, signature: str | None) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "id": call_id, "type": "function",
                            "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}
    if signature is not None:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return _chunk({"tool_calls": [call]})


def test_a_signed_call_is_preceded_by_a_reasoning_item_carrying_its_signature() -> None:
    """Gemini's calls come whole, the first one signed: a finished reasoning item carrying the signature opens right
    before it; the stream and the whole answer give the same response."""
    events = _translate([_chunk({"content": "Checking."}), _gemini_call_chunk(0, "call_0", "c2ln"),
                         _gemini_call_chunk(1, "call_1", None), _chunk({}, "tool_calls")])
    for _, payload in events:
        EVENT.validate_python(payload)
    final = events[-1][1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "reasoning", "function_call", "function_call"]
    reasoning = final["output"][1]
    assert reasoning["summary"] == [] and reasoning["content"] == [] and reasoning["status"] == "completed"
    assert decode_replay(reasoning["encrypted_content"]).thought_signatures == {"call_0": "c2ln"}
    added = [p["item"]["type"] for n, p in events if n == "response.output_item.added"]
    assert added == ["message", "reasoning", "function_call", "function_call"]
    done = [p["item"] for n, p in events if n == "response.output_item.done"]
    assert done[1] == reasoning
    whole = chat_completion_to_response({"id": "c", "object": "chat.completion", "created": 1760000000,
                                         "model": "gemini", "choices": [{"index": 0, "finish_reason": "tool_calls",
                                         "message": {"role": "assistant", "content": "Checking.", "tool_calls": [
                                             {"id": "call_0", "type": "function",
                                              "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                                              "extra_content": {"google": {"thought_signature": "c2ln"}}},
                                             {"id": "call_1", "type": "function",
                                              "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}},
                                         ]}}]}, REQUEST, response_id="resp_test")
    assert [item["type"] for item in whole["output"]] == ["reasoning", "message", "function_call", "function_call"]
    assert whole["output"][0]["encrypted_content"] == reasoning["encrypted_content"]
