"""The Bedrock adapter end to end against the fake Bedrock over real HTTP, and the event-stream codec."""

from __future__ import annotations

import base64
import dataclasses
import zlib
from typing import Any

import httpx
import orjson
import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_router.providers.base import StreamOptions, UpstreamRequest
from switchboard_router.providers.bedrock import BedrockAdapter
from switchboard_router.providers.bedrock_eventstream import (
    EventStreamDecoder,
    EventStreamError,
    encode_event,
    encode_message,
)
from switchboard_router.providers.bedrock_response import BedrockStreamTranslator
from tests.fakes.bedrock_provider import FakeBedrock, fake_bedrock_fixture, fake_bedrock_server_fixture  # noqa: F401

ADAPTER = BedrockAdapter()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def call(request: UpstreamRequest) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(request.method, request.url, headers=request.headers, content=request.content)


async def stream(request: UpstreamRequest, translator: BedrockStreamTranslator) -> tuple[list[dict[str, Any]], int]:
    """Feeds the raw bytes as they arrive; returns the chunks and how many reads produced chunks."""
    chunks: list[dict[str, Any]] = []
    productive_reads = 0
    async with (
        httpx.AsyncClient() as client,
        client.stream(request.method, request.url, headers=request.headers, content=request.content) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/vnd.amazon.eventstream"
        async for data in resp.aiter_raw():
            out = translator.feed(data)
            productive_reads += bool(out)
            chunks += [orjson.loads(c) for c in out]
    chunks += [orjson.loads(c) for c in translator.close()]
    return chunks, productive_reads


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-test", "messages": list(messages), **extra}


# -- event-stream codec ---------------------------------------------------------------------------


def test_decodes_published_vector() -> None:
    frame = bytes.fromhex(
        "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e"
        "7b27666f6f273a27626172277d8d9c08b1"
    )
    [message] = EventStreamDecoder().feed(frame)
    assert message.headers == {"content-type": "application/json"}
    assert message.payload == b"{'foo':'bar'}"


@settings(max_examples=60, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_decoder_accepts_any_byte_split(payloads: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(
        encode_message({":event-type": f"e{i}", "n": i, "flag": i % 2 == 0}, p) for i, p in enumerate(payloads)
    )
    points = sorted({c % (len(wire) + 1) for c in cuts})
    decoder = EventStreamDecoder()
    messages = []
    start = 0
    for point in [*points, len(wire)]:
        messages += decoder.feed(wire[start:point])
        start = point
    assert [m.payload for m in messages] == payloads
    assert [m.headers for m in messages] == [
        {":event-type": f"e{i}", "n": i, "flag": i % 2 == 0} for i in range(len(payloads))
    ]
    assert decoder.pending == 0


@settings(max_examples=40, deadline=None)
@given(
    headers=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=40), st.binary(max_size=40)),
        max_size=5,
    ),
    payload=st.binary(max_size=500),
)
def test_encoder_agrees_with_botocore(headers: dict[str, Any], payload: bytes) -> None:
    """botocore's own event-stream parser reads what the encoder writes."""
    buffer = EventStreamBuffer()
    buffer.add_data(encode_message(headers, payload))
    [message] = list(buffer)
    assert message.payload == payload
    assert message.headers == headers
    [ours] = EventStreamDecoder().feed(encode_message(headers, payload))
    assert ours.headers == headers and ours.payload == payload


def test_decoder_rejects_corrupt_crcs() -> None:
    frame = bytearray(encode_event("messageStart", b'{"role":"assistant"}'))
    corrupt_payload = bytearray(frame)
    corrupt_payload[-6] ^= 0x01
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(corrupt_payload))
    corrupt_length = bytearray(frame)
    corrupt_length[3] ^= 0x01
    with pytest.raises(EventStreamError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(corrupt_length))
    # Sanity: the CRCs are plain CRC32 over the prelude and over the frame.
    assert int.from_bytes(frame[8:12], "big") == zlib.crc32(bytes(frame[:8]))
    assert int.from_bytes(frame[-4:], "big") == zlib.crc32(bytes(frame[:-4]))


# -- request translation --------------------------------------------------------------------------


def test_translates_messages_tools_and_images(fake_bedrock: FakeBedrock) -> None:
    png = base64.b64encode(b"\x89PNG fake image").decode()
    body = chat(
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "5C"},
        {"role": "user", "content": "And tomorrow?"},
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        stop="END",
    )
    request = ADAPTER.build_request(fake_bedrock.deployment("anthropic.claude-good-v1:0"), body, stream=False)
    assert request.url.endswith("/model/anthropic.claude-good-v1%3A0/converse")
    sent = orjson.loads(request.content)
    assert sent["system"] == [{"text": "Be brief."}]
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "Look"}, {"image": {"format": "png", "source": {"bytes": png}}}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "5C"}]}},
                {"text": "And tomorrow?"},
            ],
        },
    ]
    assert sent["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}
    assert sent["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"] == ["city"]
    with pytest.raises(ValueError, match="data: URLs"):
        ADAPTER.build_request(
            fake_bedrock.deployment("m"),
            chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}),
            stream=False,
        )


def test_cache_control_becomes_cache_points() -> None:
    from switchboard_router.providers.bedrock_messages import converse_body

    sent = converse_body(
        chat(
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "user", "content": "Long document", "cache_control": {"type": "ephemeral"}},
        ),
        model="m",
    )
    assert sent["system"] == [{"text": "Long rules"}, {"cachePoint": {"type": "default"}}]
    assert sent["messages"][0]["content"] == [{"text": "Long document"}, {"cachePoint": {"type": "default"}}]


def test_a_marked_tool_is_followed_by_a_cache_point() -> None:
    from switchboard_router.providers.bedrock_messages import converse_body

    sent = converse_body(chat({"role": "user", "content": "x"},
                              tools=[{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}]), model="m")
    assert sent["toolConfig"]["tools"] == [
        {"toolSpec": {"name": "get_weather", "description": "Current weather in a city",
                      "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]}}},
        {"cachePoint": {"type": "default"}},
    ]


async def test_fake_refuses_what_bedrock_refuses(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("m-good")
    starts_with_assistant = chat({"role": "assistant", "content": "Hi"}, {"role": "user", "content": "x"})
    response = await call(ADAPTER.build_request(deployment, starts_with_assistant, stream=False))
    assert response.status_code == 400
    assert (
        "must start with a user message" in ADAPTER.parse_error(400, response.content, dict(response.headers)).message
    )


def test_tool_choice_none_drops_tools_and_missing_credentials_fail() -> None:
    from switchboard_router.deployment import Deployment

    deployment = Deployment(id="d", public_model="p", provider="bedrock", model="m", api_base="", api_key="k")
    request = ADAPTER.build_request(
        deployment, chat({"role": "user", "content": "hi"}, tools=[WEATHER_TOOL], tool_choice="none"), stream=True
    )
    assert "toolConfig" not in orjson.loads(request.content)
    assert request.url == "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream"
    assert request.headers["Authorization"] == "Bearer k"
    with pytest.raises(ValueError, match="no credentials"):
        ADAPTER.build_request(
            Deployment(id="d", public_model="p", provider="bedrock", model="m", api_base=""), chat(), stream=False
        )


async def test_a_json_schema_response_format_becomes_converse_structured_output(fake_bedrock: FakeBedrock) -> None:
    # Converse takes the schema as a JSON string in outputConfig.textFormat; it used to be dropped without a word.
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    body = chat({"role": "user", "content": "Where?"}, response_format={"type": "json_schema", "json_schema": {
        "name": "place", "description": "Where it is", "schema": schema, "strict": True}})
    deployment = fake_bedrock.deployment("anthropic.claude-good-v1:0")
    response = await call(ADAPTER.build_request(deployment, body, stream=False))
    assert response.status_code == 200, response.text
    sent = fake_bedrock.requests[-1].json()["outputConfig"]["textFormat"]
    assert sent["type"] == "json_schema"
    definition = sent["structure"]["jsonSchema"]
    assert orjson.loads(definition.pop("schema")) == schema
    assert definition == {"name": "place", "description": "Where it is"}


@pytest.mark.parametrize(("extra", "param"), [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "logprobs"),
])  # fmt: skip
def test_what_converse_cannot_do_is_refused_not_dropped(extra: dict[str, Any], param: str) -> None:
    from switchboard_router.deployment import Deployment
    from switchboard_translate.errors import InvalidRequest

    deployment = Deployment(id="d", public_model="p", provider="bedrock", model="m", api_base="", api_key="k")
    with pytest.raises(InvalidRequest) as refused:
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "hi"}, **extra), stream=False)
    assert refused.value.param == param
    assert ("json_schema" if param == "response_format" else "leave out logprobs") in refused.value.message
    plain = chat({"role": "user", "content": "hi"}, logprobs=False, response_format={"type": "text"})
    assert "outputConfig" not in orjson.loads(ADAPTER.build_request(deployment, plain, stream=False).content)


# -- whole answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["sigv4", "sigv4+token", "api_key"])
async def test_converse_answer_and_usage(fake_bedrock: FakeBedrock, auth: str) -> None:
    deployment = fake_bedrock.deployment(
        "anthropic.claude-good-v1:0", auth=auth.split("+")[0], session_token="token" in auth
    )
    request = ADAPTER.build_request(deployment, chat({"role": "user", "content": "Hi"}), stream=False)
    response = await call(request)
    assert response.status_code == 200, response.text
    result = ADAPTER.parse_response(deployment, response.content)
    assert result.body["choices"][0]["message"] == {"role": "assistant", "content": "Hello from fake Bedrock."}
    assert result.body["choices"][0]["finish_reason"] == "stop"
    assert result.body["model"] == "claude-test"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (21 + 4 + 2, 9)
    assert (result.usage.cached_prompt_tokens, result.usage.cache_write_tokens) == (4, 2)
    assert result.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    recorded = fake_bedrock.requests[-1]
    assert recorded.raw_path == "/model/anthropic.claude-good-v1%3A0/converse"
    if auth.startswith("sigv4"):
        assert recorded.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKEBEDROCKTEST1/")
        assert ("x-amz-security-token" in recorded.headers) == ("token" in auth)


async def test_inference_profile_arn_is_quoted_and_signed(fake_bedrock: FakeBedrock) -> None:
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-good-v1:0"
    deployment = fake_bedrock.deployment(arn)
    response = await call(ADAPTER.build_request(deployment, chat({"role": "user", "content": "Hi"}), stream=False))
    assert response.status_code == 200, response.text
    assert fake_bedrock.requests[-1].raw_path == "/model/" + arn.replace(":", "%3A").replace("/", "%2F") + "/converse"


async def test_bad_signature_is_refused(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("anthropic.claude-good-v1:0")
    wrong = dataclasses.replace(deployment, extra={**deployment.extra, "aws_secret_access_key": "not-the-secret"})
    response = await call(ADAPTER.build_request(wrong, chat({"role": "user", "content": "Hi"}), stream=False))
    assert response.status_code == 403
    error = ADAPTER.parse_error(response.status_code, response.content, dict(response.headers))
    assert error.type == "InvalidSignatureException"
    assert "signature" in error.message
    assert not error.retryable


async def test_tool_round_trip_keeps_ids_and_arguments(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("anthropic.claude-tool-v1:0")
    question = {"role": "user", "content": "Weather in Paris?"}
    first = await call(ADAPTER.build_request(deployment, chat(question, tools=[WEATHER_TOOL]), stream=False))
    result = ADAPTER.parse_response(deployment, first.content)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    [tool_call] = choice["message"]["tool_calls"]
    assert tool_call["id"] == "tooluse_fakeAbc123"
    assert tool_call["function"]["name"] == "get_weather"
    assert orjson.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}
    assert result.usage.prompt_tokens == 21

    follow_up = chat(
        question,
        choice["message"],
        {"role": "tool", "tool_call_id": tool_call["id"], "content": "18C and sunny"},
        tools=[WEATHER_TOOL],
    )
    second = await call(ADAPTER.build_request(deployment, follow_up, stream=False))
    final = ADAPTER.parse_response(deployment, second.content)
    assert final.body["choices"][0]["message"]["content"] == "The tool said: 18C and sunny"
    sent = fake_bedrock.requests[-1].json()["messages"]
    assert sent[1]["content"][1]["toolUse"] == {
        "toolUseId": "tooluse_fakeAbc123",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert sent[2]["content"][0]["toolResult"]["toolUseId"] == "tooluse_fakeAbc123"


async def test_guardrail_is_content_filter(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("anthropic.claude-safety-v1:0")
    response = await call(ADAPTER.build_request(deployment, chat({"role": "user", "content": "bad"}), stream=False))
    result = ADAPTER.parse_response(deployment, response.content)
    assert result.body["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("model", "status", "error_type", "retryable", "context"),
    [
        ("m-throttle", 429, "ThrottlingException", True, False),
        ("m-toolong", 400, "ValidationException", False, True),
        ("m-error", 400, "ValidationException", False, False),
    ],
)
async def test_errors(
    fake_bedrock: FakeBedrock, model: str, status: int, error_type: str, retryable: bool, context: bool
) -> None:
    response = await call(
        ADAPTER.build_request(fake_bedrock.deployment(model), chat({"role": "user", "content": "x"}), stream=False)
    )
    assert response.status_code == status
    error = ADAPTER.parse_error(response.status_code, response.content, dict(response.headers))
    assert (error.status, error.type, error.retryable, error.context_window_exceeded) == (
        status,
        error_type,
        retryable,
        context,
    )
    assert error.message


# -- streams --------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_text(fake_bedrock: FakeBedrock, include_usage: bool) -> None:
    deployment = fake_bedrock.deployment("anthropic.claude-good-v1:0")
    request = ADAPTER.build_request(deployment, chat({"role": "user", "content": "Hi"}), stream=True)
    assert request.url.endswith("/converse-stream")
    translator = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=include_usage, model="claude-test"))
    chunks, _ = await stream(request, translator)
    assert translator.error is None
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "claude-test" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello from fake Bedrock."
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["stop"]
    assert translator.usage is not None and translator.usage.prompt_tokens == 27
    usage_chunks = [c for c in chunks if "usage" in c]
    if include_usage:
        assert usage_chunks == [chunks[-1]]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 36
    else:
        assert usage_chunks == []


async def test_stream_tool_call(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("anthropic.claude-tool-v1:0")
    request = ADAPTER.build_request(
        deployment, chat({"role": "user", "content": "Weather?"}, tools=[WEATHER_TOOL]), stream=True
    )
    translator = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=True))
    chunks, _ = await stream(request, translator)
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "tooluse_fakeAbc123" and calls[0]["function"]["name"] == "get_weather"
    assert {tc["index"] for tc in calls} == {0}
    assert orjson.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"city": "Paris"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] == [
        "tool_calls"
    ]
    assert translator.usage is not None and translator.usage.completion_tokens == 9


async def test_stream_guardrail_is_content_filter(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("m-safety")
    translator = ADAPTER.stream_translator(deployment, StreamOptions())
    chunks, _ = await stream(
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


async def test_stream_exception_event_becomes_error(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("m-exception")
    translator = ADAPTER.stream_translator(deployment, StreamOptions())
    chunks, _ = await stream(
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
    )
    assert translator.error is not None
    assert (translator.error.status, translator.error.type) == (429, "ThrottlingException")
    assert translator.error.retryable and "Too many tokens" in translator.error.message
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hello"]


async def test_stream_cut_mid_frame_is_an_error(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("m-cut")
    translator = ADAPTER.stream_translator(deployment, StreamOptions())
    chunks, _ = await stream(
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
    )
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello from"
    assert translator.error is not None and translator.error.retryable and translator.usage is None


async def test_slow_stream_is_translated_as_it_arrives(fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.slow_delay = 0.05
    deployment = fake_bedrock.deployment("m-slow")
    translator = ADAPTER.stream_translator(deployment, StreamOptions())
    chunks, productive_reads = await stream(
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
    )
    assert productive_reads >= 4
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_stream_bytes_fed_one_at_a_time(fake_bedrock: FakeBedrock) -> None:
    deployment = fake_bedrock.deployment("anthropic.claude-tool-v1:0")
    request = ADAPTER.build_request(
        deployment, chat({"role": "user", "content": "Weather?"}, tools=[WEATHER_TOOL]), stream=True
    )
    raw = (await call(request)).content
    whole = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=True))
    by_byte = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=True))
    expected = [orjson.loads(c)["choices"] for c in whole.feed(raw)]
    got = [orjson.loads(c)["choices"] for i in range(len(raw)) for c in by_byte.feed(raw[i : i + 1])]
    assert got == expected and len(expected) > 5
    assert whole.close() == [] and by_byte.close() == []
    assert whole.error is None and by_byte.error is None


def test_claude_on_bedrock_gets_automatic_cache_points_and_other_models_do_not() -> None:
    from switchboard_router.deployment import Deployment

    body = chat({"role": "system", "content": "House rules. " * 500}, {"role": "user", "content": "Hi"})

    def sent(model: str) -> dict[str, Any]:
        target = Deployment(id="d", public_model="p", provider="bedrock", model=model, api_base="", api_key="k")
        return orjson.loads(ADAPTER.build_request(target, body, stream=False).content)

    assert sent("us.anthropic.claude-sonnet-4-5-20250929-v1:0")["system"][-1] == {"cachePoint": {"type": "default"}}
    assert not any("cachePoint" in block for block in sent("amazon.nova-pro-v1:0")["system"])


# -- extended thinking ----------------------------------------------------------------------------


def _deployment(model: str) -> Any:
    from switchboard_router.deployment import Deployment

    return Deployment(id="d", public_model="p", provider="bedrock", model=model, api_base="", api_key="k")


def _sent(model: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(orjson.loads(ADAPTER.build_request(_deployment(model), body, stream=False).content))


CLAUDE_ON_BEDROCK = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.mark.parametrize("asks", [
    {"reasoning_effort": "high", "max_tokens": 3000, "temperature": 0.2, "top_p": 0.5},
    {"reasoning_effort": "medium", "max_completion_tokens": 20000, "top_p": 0.97},
    {"thinking": {"type": "enabled", "budget_tokens": 1500}, "max_tokens": 2000},
    {"reasoning_effort": "low"},  # no bound named: Claude's default output limit is sent, and bounds the budget
    {"reasoning_effort": "low", "max_tokens": 500},  # no room for Claude's least budget: thinking stays off
    {"reasoning_effort": "none", "max_tokens": 4000},
    {"reasoning_effort": "high", "max_tokens": 8000, "tools": [WEATHER_TOOL], "tool_choice": "required"},
])  # fmt: skip
def test_claude_on_bedrock_thinks_by_the_anthropic_translations_rule(asks: dict[str, Any]) -> None:
    """Converse carries Claude's extended thinking in additionalModelRequestFields; the budget, and when thinking
    stays off, are the Anthropic translation's for the same body, and so are the sampling settings it rules out."""
    from switchboard_translate.anthropic import chat_request_to_anthropic

    body = chat({"role": "user", "content": "Think."}, **asks)
    anthropic = chat_request_to_anthropic(body, model="claude-sonnet-4-5")
    sent = _sent(CLAUDE_ON_BEDROCK, body)
    fields = sent.get("additionalModelRequestFields") or {}
    assert fields.get("thinking") == anthropic.get("thinking"), asks
    inference = sent.get("inferenceConfig") or {}
    if "thinking" in anthropic:
        assert inference["maxTokens"] == anthropic["max_tokens"]
        assert "temperature" not in inference
        assert inference.get("topP") == anthropic.get("top_p")
    else:
        assert "additionalModelRequestFields" not in sent


def test_signed_thinking_of_an_earlier_turn_goes_back_first_and_keeps_thinking_on() -> None:
    call = {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    signed = {"type": "thinking", "thinking": "Weather needs the tool.", "signature": "c2ln"}
    redacted = {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"}
    turns = [{"role": "user", "content": "Weather in Oslo?"},
             {"role": "assistant", "content": None, "tool_calls": [call], "thinking_blocks": [signed, redacted]},
             {"role": "tool", "tool_call_id": "tooluse_1", "content": "5C"}]
    sent = _sent(CLAUDE_ON_BEDROCK, chat(*turns, tools=[WEATHER_TOOL], reasoning_effort="medium", max_tokens=4000))
    assert sent["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Weather needs the tool.", "signature": "c2ln"}}},
        {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}},
    ]
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    # Without the signed block (an OpenAI client that drops it) Claude would refuse thinking: it stays off.
    turns[1] = {k: v for k, v in turns[1].items() if k != "thinking_blocks"}
    unsigned = _sent(CLAUDE_ON_BEDROCK, chat(*turns, tools=[WEATHER_TOOL], reasoning_effort="medium", max_tokens=4000))
    assert "additionalModelRequestFields" not in unsigned


@pytest.mark.parametrize(("asks", "param"), [
    ({"reasoning_effort": "low"}, "reasoning_effort"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "thinking"),
])  # fmt: skip
def test_a_bedrock_model_other_than_claude_is_refused_reasoning_not_sent_it_silently(asks: dict[str, Any],
                                                                                       param: str) -> None:
    from switchboard_translate.errors import InvalidRequest

    for model in ("meta.llama3-3-70b-instruct-v1:0", "amazon.nova-pro-v1:0"):
        with pytest.raises(InvalidRequest) as refused:
            _sent(model, chat({"role": "user", "content": "Think."}, **asks))
        assert refused.value.param == param and "Claude" in refused.value.message
        served = _sent(model, chat({"role": "user", "content": "Think."}, reasoning_effort="none"))
        assert "additionalModelRequestFields" not in served


def test_several_choices_are_refused_on_bedrock() -> None:
    from switchboard_translate.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="set n to 1") as refused:
        _sent(CLAUDE_ON_BEDROCK, chat({"role": "user", "content": "hi"}, n=2))
    assert refused.value.param == "n"
    assert _sent(CLAUDE_ON_BEDROCK, chat({"role": "user", "content": "hi"}, n=1))


def test_reasoning_blocks_come_back_as_the_anthropic_translation_answers_them() -> None:
    from switchboard_router.providers.bedrock_response import parse_converse
    from switchboard_translate.anthropic import anthropic_message_to_chat_completion

    converse = {"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "Think first.", "signature": "c2ln"}}},
        {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}},
        {"text": "4"}]}}, "stopReason": "end_turn", "usage": {"inputTokens": 3, "outputTokens": 5}}
    message = parse_converse(orjson.dumps(converse), "p").body["choices"][0]["message"]
    anthropic = anthropic_message_to_chat_completion({"content": [
        {"type": "thinking", "thinking": "Think first.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
        {"type": "text", "text": "4"}]})["choices"][0]["message"]
    for key in ("content", "reasoning_content", "thinking_blocks"):
        assert message[key] == anthropic[key], key


@pytest.mark.parametrize("stream_it", [False, True])
async def test_claude_on_the_fake_bedrock_thinks_and_signs_whole_and_streamed(fake_bedrock: FakeBedrock,
                                                                            stream_it: bool) -> None:
    from tests.fakes.bedrock_provider import THOUGHT, thought_signature

    deployment = fake_bedrock.deployment("us.anthropic.claude-redacted-v1:0")
    body = chat({"role": "user", "content": "Hi"}, reasoning_effort="low", max_tokens=2000)
    request = ADAPTER.build_request(deployment, body, stream=stream_it)
    if stream_it:
        chunks, _ = await stream(request, ADAPTER.stream_translator(deployment, StreamOptions()))
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
        blocks = [b for d in deltas for b in d.get("thinking_blocks", [])]
        signed = {"type": "thinking", "thinking": "", "signature": thought_signature(THOUGHT)}
        text = "".join(d.get("content") or "" for d in deltas)
    else:
        response = await call(request)
        assert response.status_code == 200, response.text
        message = ADAPTER.parse_response(deployment, response.content).body["choices"][0]["message"]
        reasoning, blocks, text = message["reasoning_content"], message["thinking_blocks"], message["content"]
        signed = {"type": "thinking", "thinking": THOUGHT, "signature": thought_signature(THOUGHT)}
    assert reasoning == THOUGHT and text == "Hello from fake Bedrock."
    redacted = {"type": "redacted_thinking", "data": base64.b64encode(b"encrypted thoughts").decode()}
    assert blocks == [signed, redacted]
    assert fake_bedrock.requests[-1].json()["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}}
