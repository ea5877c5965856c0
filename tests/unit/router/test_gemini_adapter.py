"""The Gemini adapter end to end against the fake Gemini over real HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_router.providers.base import StreamOptions, UpstreamRequest
from switchboard_router.providers.gemini import GeminiAdapter
from switchboard_router.providers.gemini_request import SKIP_SIGNATURE, generate_content_body
from switchboard_router.providers.gemini_response import GeminiStreamTranslator, parse_generate_content
from switchboard_router.providers.gemini_schema import to_gemini_schema
from tests.fakes.gemini_provider import FakeGemini, fake_gemini_fixture, fake_gemini_server_fixture  # noqa: F401

ADAPTER = GeminiAdapter()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string", "format": "uri"},
                "unit": {"$ref": "#/$defs/Unit"},
                "days": {"type": ["integer", "null"], "minimum": 1},
            },
            "required": ["city"],
            "additionalProperties": False,
            "$defs": {"Unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "additionalProperties": False}},
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


async def call(request: UpstreamRequest) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(request.method, request.url, headers=request.headers, content=request.content)


async def stream(request: UpstreamRequest, translator: GeminiStreamTranslator) -> tuple[list[dict[str, Any]], int]:
    """Feeds the raw bytes as they arrive; returns the chunks and how many reads produced chunks."""
    chunks: list[dict[str, Any]] = []
    productive_reads = 0
    async with (
        httpx.AsyncClient() as client,
        client.stream(request.method, request.url, headers=request.headers, content=request.content) as resp,
    ):
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"] == "text/event-stream"
        async for data in resp.aiter_raw():
            out = translator.feed(data)
            productive_reads += bool(out)
            chunks += [orjson.loads(c) for c in out]
    chunks += [orjson.loads(c) for c in translator.close()]
    return chunks, productive_reads


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gemini-test", "messages": list(messages), **extra}


def finishes(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


# -- request translation --------------------------------------------------------------------------


def test_request_translation(fake_gemini: FakeGemini) -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    body = chat(
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            {"type": "image_url", "image_url": {"url": "gs://bucket/cat.jpg"}},
        ]},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 5}'},
        tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required",
        temperature=0.3, top_p=0.8, max_completion_tokens=99, stop=["X", "Y"],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": {
            "type": "object", "properties": {"a": {"const": 1}}, "additionalProperties": False}}},
    )  # fmt: skip
    request = ADAPTER.build_request(fake_gemini.deployment("gemini-2.5-flash"), body, stream=False)
    assert request.url == f"{fake_gemini.base_url}/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == "AIzaFakeGeminiKeyForTests0123456789"
    sent = orjson.loads(request.content)
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]}
    assert sent["contents"] == [
        {"role": "user", "parts": [
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": png}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.jpg"}},
        ]},
        {"role": "model", "parts": [
            {"text": "Let me look."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temp": 5}}},
        ]},
    ]  # fmt: skip
    declarations = sent["tools"][0]["functionDeclarations"]
    assert declarations[0]["parameters"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "nullable": True, "minimum": 1},
        },
        "required": ["city"],
    }
    assert declarations[1] == {"name": "get_time"}
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert sent["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.8,
        "maxOutputTokens": 99,
        "stopSequences": ["X", "Y"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"enum": ["1"], "type": "string"}}},
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ({"type": "function", "function": {"name": "get_time"}}, {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    from switchboard_router.deployment import Deployment

    deployment = Deployment(
        id="d", public_model="p", provider="gemini", model="gemini-2.5-pro", api_base="", api_key="k"
    )
    request = ADAPTER.build_request(
        deployment, chat({"role": "user", "content": "hi"}, tools=[TIME_TOOL], tool_choice=choice), stream=True
    )
    assert (
        request.url
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert orjson.loads(request.content)["toolConfig"] == {"functionCallingConfig": config}


def test_tool_message_without_its_call_is_refused() -> None:
    from switchboard_router.deployment import Deployment

    deployment = Deployment(id="d", public_model="p", provider="gemini", model="gemini-2.5-pro", api_base="")
    with pytest.raises(ValueError, match="no earlier assistant message"):
        ADAPTER.build_request(
            deployment, chat({"role": "tool", "tool_call_id": "call_x", "content": "1"}), stream=False
        )


@settings(max_examples=50, deadline=None)
@given(
    st.recursive(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["string", "integer", "boolean", ["string", "null"]])},
            optional={"additionalProperties": st.booleans(), "$comment": st.text(max_size=5), "const": st.integers()},
        ),
        lambda children: (
            st.fixed_dictionaries(
                {
                    "type": st.just("object"),
                    "properties": st.dictionaries(st.text("abc", min_size=1, max_size=3), children, max_size=3),
                },
                optional={"additionalProperties": st.just(False), "$schema": st.just("x"), "required": st.just(["a"])},
            )
            | st.fixed_dictionaries({"type": st.just("array"), "items": children})
        ),
        max_leaves=8,
    )
)
def test_cleaned_schemas_hold_only_gemini_keys(schema: dict[str, Any]) -> None:
    allowed = {"type", "nullable", "enum", "properties", "required", "items", "anyOf", "format"}

    def walk(node: dict[str, Any]) -> None:
        assert set(node) <= allowed, node
        for sub in (node.get("properties") or {}).values():
            walk(sub)
        if "items" in node:
            walk(node["items"])
        for sub in node.get("anyOf") or []:
            walk(sub)
        assert set(node.get("required", [])) <= set(node.get("properties") or {})

    walk(to_gemini_schema(schema))


# -- whole answers --------------------------------------------------------------------------------


async def test_answer_and_usage(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-good")
    response = await call(ADAPTER.build_request(deployment, chat({"role": "user", "content": "Hi"}), stream=False))
    assert response.status_code == 200, response.text
    result = ADAPTER.parse_response(deployment, response.content)
    assert result.body["id"] == "chatcmpl-fakeResp01"
    assert result.body["model"] == "gemini-test"
    assert result.body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from fake Gemini."},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens, usage.reasoning_tokens) == (
        12,
        11,
        4,
        5,
    )
    assert result.body["usage"]["total_tokens"] == 23
    recorded = fake_gemini.requests[-1]
    assert recorded.headers["x-goog-api-key"] == "AIzaFakeGeminiKeyForTests0123456789"
    assert "key" not in recorded.query


async def test_tool_round_trip_keeps_ids_names_and_signature(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-3-tool")
    question = {"role": "user", "content": "Weather and time?"}
    first = await call(ADAPTER.build_request(deployment, chat(question, tools=[WEATHER_TOOL, TIME_TOOL]), stream=False))
    assert first.status_code == 200, first.text
    result = ADAPTER.parse_response(deployment, first.content)
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_0", "call_1"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert orjson.loads(calls[0]["function"]["arguments"]) == {"city": "Paris", "unit": "celsius", "days": 3}
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="}}
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.reasoning_tokens) == (30, 21, 7)

    follow_up = chat(
        question,
        choice["message"],
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_0", "content": '{"temp": 18}'},
        tools=[WEATHER_TOOL, TIME_TOOL],
    )
    second = await call(ADAPTER.build_request(deployment, follow_up, stream=False))
    assert second.status_code == 200, second.text
    final = ADAPTER.parse_response(deployment, second.content)
    assert (
        final.body["choices"][0]["message"]["content"]
        == 'The tools said: get_time={"result":"noon"}; get_weather={"temp":18}'
    )
    replayed = fake_gemini.requests[-1].json()["contents"][1]["parts"]
    assert replayed[1]["thoughtSignature"] == "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="


async def test_foreign_tool_history_gets_placeholder_signature(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-3-tool")
    body = chat(
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "noon"},
        tools=[TIME_TOOL],
    )
    response = await call(ADAPTER.build_request(deployment, body, stream=False))
    assert response.status_code == 200, response.text
    assert fake_gemini.requests[-1].json()["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE


async def test_safety_blocks_are_content_filter(fake_gemini: FakeGemini) -> None:
    for model in ("gemini-safety", "gemini-blocked"):
        deployment = fake_gemini.deployment(model)
        response = await call(ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=False))
        assert response.status_code == 200
        result = ADAPTER.parse_response(deployment, response.content)
        assert result.body["choices"][0]["finish_reason"] == "content_filter", model
        assert result.body["choices"][0]["message"]["content"] == ""
        assert result.usage.prompt_tokens in (9, 10)


@pytest.mark.parametrize(
    ("model", "status", "kind", "retryable", "retry_after", "context"),
    [
        ("gemini-ratelimit", 429, "RESOURCE_EXHAUSTED", True, 7.0, False),
        ("gemini-toolong", 400, "INVALID_ARGUMENT", False, None, True),
        ("gemini-error", 400, "INVALID_ARGUMENT", False, None, False),
    ],
)
async def test_errors(
    fake_gemini: FakeGemini,
    model: str,
    status: int,
    kind: str,
    retryable: bool,
    retry_after: float | None,
    context: bool,
) -> None:
    response = await call(
        ADAPTER.build_request(fake_gemini.deployment(model), chat({"role": "user", "content": "x"}), stream=False)
    )
    assert response.status_code == status
    error = ADAPTER.parse_error(response.status_code, response.content, dict(response.headers))
    assert (error.status, error.type, error.retryable, error.retry_after, error.context_window_exceeded) == (
        status, kind, retryable, retry_after, context,
    )  # fmt: skip


async def test_wrong_key_and_unclean_schema_are_refused_by_the_fake(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-good", api_key="wrong")
    response = await call(ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=False))
    assert response.status_code == 400
    assert "API key not valid" in ADAPTER.parse_error(400, response.content, dict(response.headers)).message
    # The fake really rejects what Gemini rejects: the raw schema would not pass.
    declaration = {"name": "f", "parameters": WEATHER_TOOL["function"]["parameters"]}
    raw = {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [declaration]}]}
    async with httpx.AsyncClient() as client:
        refused = await client.post(
            f"{fake_gemini.base_url}/v1beta/models/gemini-good:generateContent",
            headers={"x-goog-api-key": "AIzaFakeGeminiKeyForTests0123456789"},
            content=orjson.dumps(raw),
        )
    assert refused.status_code == 400 and "Unknown name" in refused.text


# -- streams --------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_text(fake_gemini: FakeGemini, include_usage: bool) -> None:
    deployment = fake_gemini.deployment("gemini-good")
    request = ADAPTER.build_request(deployment, chat({"role": "user", "content": "Hi"}), stream=True)
    translator = ADAPTER.stream_translator(
        deployment, StreamOptions(include_usage=include_usage, model="public-gemini")
    )
    chunks, _ = await stream(request, translator)
    assert fake_gemini.requests[-1].query == {"alt": ["sse"]}
    assert translator.error is None
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["id"] for c in chunks} == {"chatcmpl-fakeResp01"}
    assert {c["model"] for c in chunks} == {"public-gemini"}
    assert text_of(chunks) == "Hello from fake Gemini."
    assert finishes(chunks) == ["stop"]
    assert translator.usage is not None
    assert (translator.usage.prompt_tokens, translator.usage.completion_tokens) == (12, 11)
    usage_chunks = [c for c in chunks if "usage" in c]
    if include_usage:
        assert usage_chunks == [chunks[-1]] and chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}
    else:
        assert usage_chunks == []


async def test_stream_tool_calls_come_whole(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-tool")
    request = ADAPTER.build_request(
        deployment, chat({"role": "user", "content": "x"}, tools=[WEATHER_TOOL, TIME_TOOL]), stream=True
    )
    translator = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=True))
    chunks, _ = await stream(request, translator)
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [(tc["index"], tc["id"], tc["function"]["name"]) for tc in calls] == [
        (0, "call_0", "get_weather"),
        (1, "call_1", "get_time"),
    ]
    assert orjson.loads(calls[1]["function"]["arguments"]) == {}
    assert text_of(chunks) == "Checking."
    assert finishes(chunks) == ["tool_calls"]
    assert translator.usage is not None and translator.usage.completion_tokens == 21


async def test_stream_safety_is_content_filter(fake_gemini: FakeGemini) -> None:
    for model in ("gemini-safety", "gemini-blocked"):
        deployment = fake_gemini.deployment(model)
        translator = ADAPTER.stream_translator(deployment, StreamOptions())
        chunks, _ = await stream(
            ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
        )
        assert finishes(chunks) == ["content_filter"], model
        assert translator.error is None and translator.usage is not None


async def test_stream_error_event_and_cut(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-streamerror")
    translator = ADAPTER.stream_translator(deployment, StreamOptions())
    chunks, _ = await stream(
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
    )
    assert text_of(chunks) == "Hello"
    assert translator.error is not None
    assert (translator.error.status, translator.error.type, translator.error.retryable) == (503, "UNAVAILABLE", True)

    deployment = fake_gemini.deployment("gemini-cut")
    translator = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=True))
    chunks, _ = await stream(
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
    )
    assert text_of(chunks) == "Hello from fake" and finishes(chunks) == []
    assert translator.error is not None and translator.error.code == "stream_cut"


async def test_slow_stream_is_translated_as_it_arrives(fake_gemini: FakeGemini) -> None:
    fake_gemini.slow_delay = 0.05
    deployment = fake_gemini.deployment("gemini-slow")
    translator = ADAPTER.stream_translator(deployment, StreamOptions())
    chunks, productive_reads = await stream(
        ADAPTER.build_request(deployment, chat({"role": "user", "content": "x"}), stream=True), translator
    )
    assert productive_reads == 3
    assert text_of(chunks) == "Hello from fake Gemini."


async def test_stream_bytes_fed_one_at_a_time(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-tool")
    request = ADAPTER.build_request(
        deployment, chat({"role": "user", "content": "x"}, tools=[WEATHER_TOOL, TIME_TOOL]), stream=True
    )
    raw = (await call(request)).content
    whole = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=True))
    by_byte = ADAPTER.stream_translator(deployment, StreamOptions(include_usage=True))
    expected = [orjson.loads(c)["choices"] for c in whole.feed(raw) + whole.close()]
    got = [orjson.loads(c)["choices"] for i in range(len(raw)) for c in by_byte.feed(raw[i : i + 1])]
    got += [orjson.loads(c)["choices"] for c in by_byte.close()]
    assert got == expected and len(expected) >= 4


def test_an_exact_thinking_budget_is_sent_as_is() -> None:
    # What /v1/messages makes of Claude Code's thinking.budget_tokens (and LiteLLM's chat parameter).
    body = {"messages": [{"role": "user", "content": "think"}], "max_tokens": 2000, "reasoning_effort": "medium",
            "thinking": {"type": "enabled", "budget_tokens": 1500}}
    config = generate_content_body(body, model="gemini-2.5-flash")["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1500}
    del body["reasoning_effort"]
    assert generate_content_body(body, model="gemini-2.5-pro")["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1500}
    # Without it the level's budget is used, as before.
    level = generate_content_body({"messages": body["messages"], "reasoning_effort": "medium"}, model="gemini-2.5-pro")
    assert level["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8192}


def test_several_choices_are_refused_rather_than_dropped() -> None:
    # Gemini is asked for one candidate: a client asking for n answers must hear so, not get one silently.
    with pytest.raises(ValueError, match="set n to 1"):
        generate_content_body({"messages": [{"role": "user", "content": "hi"}], "n": 2}, model="gemini-2.5-flash")
    assert generate_content_body({"messages": [{"role": "user", "content": "hi"}], "n": 1}, model="gemini-2.5-flash")


def test_an_openai_file_id_is_refused_not_sent_as_an_image_uri() -> None:
    def body(file: dict[str, str]) -> dict[str, object]:
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": "read"},
                                                          {"type": "file", "file": file}]}]}
    with pytest.raises(ValueError, match="OpenAI file id"):
        generate_content_body(body({"file_id": "file-123"}), model="gemini-2.5-flash")
    sent = generate_content_body(body({"file_id": "gs://bucket/report.pdf"}), model="gemini-2.5-flash")
    assert sent["contents"][0]["parts"][1] == {"fileData": {"mimeType": "application/pdf",
                                                            "fileUri": "gs://bucket/report.pdf"}}


def test_allowed_tools_sends_only_the_allowed_functions() -> None:
    def tool(name: str) -> dict[str, object]:
        return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
    body = {"messages": [{"role": "user", "content": "time?"}], "tools": [tool("get_weather"), tool("get_time")],
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {
                "mode": "required", "tools": [{"type": "function", "function": {"name": "get_time"}}]}}}
    sent = generate_content_body(body, model="gemini-2.5-flash")
    assert [d["name"] for d in sent["tools"][0]["functionDeclarations"]] == ["get_time"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


def test_the_thinking_budget_stays_below_max_output_tokens() -> None:
    # Gemini spends thinking out of maxOutputTokens, which is the output bound billing held: a budget above it
    # would leave no room for the answer (Anthropic's rule, budget_tokens < max_tokens, applied the same way).
    cases: list[tuple[dict[str, Any], int, str, dict[str, Any]]] = [
        ({"reasoning_effort": "high"}, 1000, "gemini-2.5-flash", {"thinkingBudget": 999}),
        ({"thinking": {"type": "enabled", "budget_tokens": 5000}}, 4000, "gemini-2.5-pro", {"thinkingBudget": 3999}),
        ({"reasoning_effort": "low", "thinking": {"type": "enabled", "budget_tokens": 5000}}, 600, "gemini-2.5-flash",
         {"thinkingBudget": 599}),
        # Within the bound, or a level (Gemini 3), it is sent as asked.
        ({"reasoning_effort": "medium"}, 20000, "gemini-2.5-pro", {"thinkingBudget": 8192}),
        ({"reasoning_effort": "none"}, 100, "gemini-2.5-flash", {"thinkingBudget": 0}),
        ({"reasoning_effort": "high"}, 1000, "gemini-3-pro-preview", {"thinkingLevel": "high"}),
    ]  # fmt: skip
    for asks, max_tokens, model, thinking in cases:
        body = {"messages": [{"role": "user", "content": "think"}], "max_completion_tokens": max_tokens, **asks}
        config = generate_content_body(body, model=model)["generationConfig"]
        assert config["maxOutputTokens"] == max_tokens
        assert config["thinkingConfig"] == thinking, (asks, max_tokens, model)


def _thinking(model: str, **asks: Any) -> Any:
    body = {"messages": [{"role": "user", "content": "think"}], **asks}
    return generate_content_body(body, model=model)["generationConfig"].get("thinkingConfig")


def test_a_gemini_model_that_cannot_think_is_sent_no_thinking_config_and_refuses_reasoning() -> None:
    """Gemini 2.0 does not think (the model data says so), nor does the retired 1.5, and Google refuses any
    thinkingConfig there, a budget of 0 included: reasoning_effort "none" is sent none, a request for reasoning is
    refused naming its field."""
    from switchboard_translate.errors import InvalidRequest

    for model in ("gemini-2.0-flash", "gemini-2.0-flash-lite-001", "gemini-1.5-pro", "gemini-1.5-flash-002"):
        assert _thinking(model, reasoning_effort="none", max_tokens=100) is None
        for asks, field in (({"reasoning_effort": "low"}, "reasoning_effort"),
                            ({"thinking": {"type": "enabled", "budget_tokens": 1000}}, "thinking")):
            with pytest.raises(InvalidRequest) as refused:
                _thinking(model, **asks)
            assert refused.value.param == field and f"{model} cannot think" in refused.value.message


def test_the_thinking_budget_is_moved_into_the_models_own_range() -> None:
    # Google refuses a budget outside a 2.5 model's range: 2.5 Pro takes 128 to 32768 and cannot stop thinking,
    # Flash-Lite 512 to 24576 (or 0), Flash up to 24576 (or 0). Within the output bound, the budget is moved into it.
    cases: list[tuple[str, dict[str, Any], Any]] = [
        ("gemini-2.5-pro", {"reasoning_effort": "none", "max_tokens": 1000}, {"thinkingBudget": 128}),
        ("models/gemini-2.5-pro", {"thinking": {"type": "enabled", "budget_tokens": 50}}, {"thinkingBudget": 128}),
        ("gemini-2.5-pro@001", {"thinking": {"type": "enabled", "budget_tokens": 50000}, "max_tokens": 60000},
         {"thinkingBudget": 32768}),
        ("gemini-2.5-flash", {"thinking": {"type": "enabled", "budget_tokens": 30000}}, {"thinkingBudget": 24576}),
        ("gemini-2.5-flash", {"reasoning_effort": "none", "max_tokens": 100}, {"thinkingBudget": 0}),
        ("gemini-2.5-flash-lite", {"thinking": {"type": "enabled", "budget_tokens": 100}, "max_tokens": 4000},
         {"thinkingBudget": 512}),
        ("gemini-2.5-flash-lite", {"reasoning_effort": "none", "max_tokens": 100}, {"thinkingBudget": 0}),
        ("gemini-2.5-flash-lite-preview-06-17", {"reasoning_effort": "minimal", "max_tokens": 600},
         {"thinkingBudget": 512}),
        # A model whose range is not known gets the budget as computed.
        ("gemini-2.0-flash-thinking-exp", {"reasoning_effort": "none", "max_tokens": 100}, {"thinkingBudget": 0}),
    ]  # fmt: skip
    for model, asks, expected in cases:
        assert _thinking(model, **asks) == expected, (model, asks)


@pytest.mark.parametrize(("model", "asks", "field", "least"), [
    ("gemini-2.5-pro", {"reasoning_effort": "low", "max_tokens": 100}, "max_tokens", 129),
    ("gemini-2.5-pro", {"reasoning_effort": "none", "max_completion_tokens": 128}, "max_completion_tokens", 129),
    ("gemini-2.5-flash-lite", {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 300},
     "max_tokens", 513),
    ("gemini-2.5-flash", {"reasoning_effort": "high", "max_tokens": 1}, "max_tokens", 2),
])  # fmt: skip
def test_an_output_bound_with_no_room_for_the_least_budget_is_refused_naming_it(
        model: str, asks: dict[str, Any], field: str, least: int) -> None:
    from switchboard_translate.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        _thinking(model, **asks)
    assert refused.value.param == field
    assert f"Set {field} to at least {least}" in refused.value.message and model in refused.value.message
    assert _thinking(model, **{**asks, field: least}) == {"thinkingBudget": least - 1}


def test_logprobs_are_asked_of_gemini() -> None:
    def config(**asks: Any) -> dict[str, Any]:
        body = {"messages": [{"role": "user", "content": "hi"}], **asks}
        return dict(generate_content_body(body, model="gemini-2.5-flash").get("generationConfig") or {})

    assert config(logprobs=True) == {"responseLogprobs": True}
    assert config(logprobs=True, top_logprobs=4) == {"responseLogprobs": True, "logprobs": 4}
    assert config(logprobs=False, top_logprobs=0) == {}


async def test_logprobs_come_back_with_the_whole_answer(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-good")
    body = chat({"role": "user", "content": "hi"}, logprobs=True, top_logprobs=2)
    response = await call(ADAPTER.build_request(deployment, body, stream=False))
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["logprobsResult"]["chosenCandidates"]
    choice = ADAPTER.parse_response(deployment, response.content).body["choices"][0]
    content = choice["logprobs"]["content"]
    assert choice["logprobs"]["refusal"] is None
    assert "".join(token["token"] for token in content) == choice["message"]["content"] == "Hello from fake Gemini."
    for token in content:
        assert token["logprob"] < 0 and token["bytes"] == list(token["token"].encode())
        assert len(token["top_logprobs"]) == 2 and token["top_logprobs"][0]["token"] == token["token"]
        assert token["top_logprobs"][1]["logprob"] < token["top_logprobs"][0]["logprob"]
    # Without a request for them, the answer has none (as OpenAI's).
    plain = await call(ADAPTER.build_request(deployment, chat({"role": "user", "content": "hi"}), stream=False))
    assert ADAPTER.parse_response(deployment, plain.content).body["choices"][0]["logprobs"] is None


async def test_logprobs_come_with_each_streamed_text_chunk(fake_gemini: FakeGemini) -> None:
    deployment = fake_gemini.deployment("gemini-good")
    body = chat({"role": "user", "content": "hi"}, logprobs=True)
    chunks, _ = await stream(ADAPTER.build_request(deployment, body, stream=True),
                             ADAPTER.stream_translator(deployment, StreamOptions()))
    texts = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(texts) == 3
    for chunk in texts:
        logprobs = chunk["choices"][0]["logprobs"]["content"]
        assert "".join(t["token"] for t in logprobs) == chunk["choices"][0]["delta"]["content"]
        assert all(t["top_logprobs"] == [] for t in logprobs)
    whole = await call(ADAPTER.build_request(deployment, body, stream=False))
    whole_logprobs = ADAPTER.parse_response(deployment, whole.content).body["choices"][0]["logprobs"]["content"]
    assert [t for c in texts for t in c["choices"][0]["logprobs"]["content"]] == whole_logprobs


def test_a_log_probability_google_leaves_out_is_zero() -> None:
    # Google's JSON omits fields at their default: a certain token comes without logProbability.
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Yes"}]}, "finishReason": "STOP",
                              "logprobsResult": {"chosenCandidates": [{"token": "Yes", "tokenId": 7}],
                                                 "topCandidates": [{"candidates": [{"token": "Yes", "tokenId": 7}]}]}}]}
    choice = parse_generate_content(orjson.dumps(answer), "gemini-test").body["choices"][0]
    assert choice["logprobs"]["content"] == [{"token": "Yes", "logprob": 0.0, "bytes": [89, 101, 115], "top_logprobs": [
        {"token": "Yes", "logprob": 0.0, "bytes": [89, 101, 115]}]}]
