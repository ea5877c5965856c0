"""The Anthropic provider adapter: request building, error mapping, and end to end against the fake API."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import openai.types.chat
import orjson
import pytest
from pydantic import TypeAdapter

from switchboard_router.deployment import Deployment
from switchboard_router.providers.anthropic import AnthropicAdapter, AnthropicStreamTranslator
from switchboard_router.providers.base import CompletionResult, StreamOptions, UpstreamError
from tests.fakes.anthropic_provider import FakeAnthropic, fake_anthropic  # noqa: F401  (fixture)

CHUNK = TypeAdapter(openai.types.chat.ChatCompletionChunk)
COMPLETION = TypeAdapter(openai.types.chat.ChatCompletion)
ADAPTER = AnthropicAdapter()
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


def deployment(model: str, api_base: str = "", **kwargs: Any) -> Deployment:
    return Deployment(
        id=f"claude/{model}",
        public_model="claude-public",
        provider="anthropic",
        model=model,
        api_base=api_base,
        api_key="sk-ant-test",
        **kwargs,
    )


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-public", "messages": list(messages), **extra}


# --- pure parts -------------------------------------------------------------------------------


def test_build_request_url_headers_and_body() -> None:
    request = ADAPTER.build_request(
        deployment("claude-sonnet-4-5"), chat({"role": "user", "content": "Hi"}, max_tokens=10), stream=False
    )
    assert (request.method, request.url) == ("POST", "https://api.anthropic.com/v1/messages")
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    body = orjson.loads(request.content)
    assert body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": 10,
    }


def test_build_request_default_max_tokens_follows_the_model() -> None:
    request = ADAPTER.build_request(
        deployment("claude-sonnet-4-5"), chat({"role": "user", "content": "Hi"}), stream=False
    )
    assert orjson.loads(request.content)["max_tokens"] == 16384
    request = ADAPTER.build_request(
        deployment("claude-sonnet-4-5", max_output_tokens=1000), chat({"role": "user", "content": "Hi"}), stream=False
    )
    assert orjson.loads(request.content)["max_tokens"] == 1000


def test_build_request_stream_base_url_and_deployment_settings() -> None:
    target = deployment(
        "claude-haiku",
        "https://proxy.internal/anthropic/v1/",
        max_output_tokens=2048,
        extra={"anthropic_beta": ["a-1", "b-2"], "headers": {"X-Team": "ml"}},
    )
    request = ADAPTER.build_request(target, chat({"role": "user", "content": "Hi"}), stream=True)
    assert request.url == "https://proxy.internal/anthropic/v1/messages"
    assert request.headers["anthropic-beta"] == "a-1,b-2"
    assert request.headers["x-team"] == "ml"
    body = orjson.loads(request.content)
    assert body["stream"] is True
    assert body["max_tokens"] == 2048


def test_prompt_cache_marks_are_placed_by_default_and_not_when_off() -> None:
    rules = {"role": "system", "content": "House rules. " * 500}
    body = chat(rules, {"role": "user", "content": "Hi"})
    sent = orjson.loads(ADAPTER.build_request(deployment("claude-sonnet-4-5"), body, stream=False).content)
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
    off = deployment("claude-sonnet-4-5", extra={"prompt_cache": "off"})
    sent = orjson.loads(ADAPTER.build_request(off, body, stream=False).content)
    assert "cache_control" not in sent["system"][0]
    assert "cache_control" not in body["messages"][0], "the canonical body is left for other deployments as it was"


def test_parse_error_overloaded_is_retryable() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    error = ADAPTER.parse_error(529, body, {})
    assert (error.status, error.type, error.message, error.retryable) == (529, "overloaded_error", "Overloaded", True)


def test_parse_error_retry_after_seconds_and_http_date() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}'
    assert ADAPTER.parse_error(429, body, {"Retry-After": "12"}).retry_after == 12.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    retry_after = ADAPTER.parse_error(429, body, {"retry-after": later}).retry_after
    assert retry_after is not None and 25 <= retry_after <= 31


def test_parse_error_prompt_too_long_is_a_context_window_error() -> None:
    body = orjson.dumps(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"},
        }
    )
    error = ADAPTER.parse_error(400, body, {})
    assert error.context_window_exceeded and error.code == "context_length_exceeded" and not error.retryable


def test_parse_error_keeps_the_detailed_error_code() -> None:
    body = orjson.dumps(
        {
            "type": "error",
            "error": {
                "type": "rate_limit_error",
                "message": "You have reached your monthly spend limit",
                "details": {"error_code": "enforced_spend_limit_reached"},
            },
            "request_id": "req_1",
        }
    )
    error = ADAPTER.parse_error(429, body, {})
    assert (error.type, error.code, error.retry_after) == ("rate_limit_error", "enforced_spend_limit_reached", None)


def test_parse_error_without_json() -> None:
    error = ADAPTER.parse_error(502, b"<html>Bad gateway</html>", {})
    assert error.status == 502 and "Bad gateway" in error.message and error.retryable


# --- end to end over HTTP against the fake -----------------------------------------------------


async def complete(target: Deployment, body: dict[str, Any]) -> CompletionResult | UpstreamError:
    request = ADAPTER.build_request(target, body, stream=False)
    async with httpx.AsyncClient() as client:
        response = await client.request(request.method, request.url, headers=request.headers, content=request.content)
    if response.status_code >= 300:
        return ADAPTER.parse_error(response.status_code, response.content, dict(response.headers))
    result = ADAPTER.parse_response(target, response.content)
    COMPLETION.validate_python(result.body)
    return result


async def stream(
    target: Deployment, body: dict[str, Any], *, include_usage: bool = True
) -> tuple[AnthropicStreamTranslator | UpstreamError, list[dict[str, Any]]]:
    """Streams over HTTP, feeding the translator the raw bytes as they arrive."""
    request = ADAPTER.build_request(target, body, stream=True)
    translator = ADAPTER.stream_translator(target, StreamOptions(include_usage=include_usage))
    chunks: list[bytes] = []
    async with (
        httpx.AsyncClient() as client,
        client.stream(request.method, request.url, headers=request.headers, content=request.content) as response,
    ):
        if response.status_code >= 300:
            body_bytes = await response.aread()
            return ADAPTER.parse_error(response.status_code, body_bytes, dict(response.headers)), []
        try:
            async for data in response.aiter_raw():
                chunks.extend(translator.feed(data))
        except httpx.RemoteProtocolError:
            pass
    chunks.extend(translator.close())
    parsed = [orjson.loads(chunk) for chunk in chunks]
    for chunk in parsed:
        CHUNK.validate_python(chunk)
    return translator, parsed


async def test_whole_text_answer(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    result = await complete(
        deployment("good", fake_anthropic.url),
        chat({"role": "system", "content": "Be brief."}, {"role": "user", "content": "ping"}, temperature=0.2),
    )
    assert isinstance(result, CompletionResult)
    assert result.body["model"] == "claude-public"
    assert result.body["choices"][0]["message"]["content"] == "Hello! You said: ping"
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    received = fake_anthropic.requests[-1]
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == "sk-ant-test"
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert received.body["temperature"] == 0.2 and "stream" not in received.body


async def test_parallel_tool_calls_then_tool_results_round(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    target = deployment("tool", fake_anthropic.url)
    question = {"role": "user", "content": "Weather in Paris and the time?"}
    first = await complete(target, chat(question, tools=TOOLS))
    assert isinstance(first, CompletionResult)
    reply = first.body["choices"][0]["message"]
    assert first.body["choices"][0]["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in reply["tool_calls"]] == ["get_weather", "get_time"]
    assert orjson.loads(reply["tool_calls"][0]["function"]["arguments"]) == {"city": "city-value"}

    # Send the results back the OpenAI way: separate tool messages. The fake refuses the request
    # unless every tool_use is answered at the start of the very next user message.
    results = [
        {"role": "tool", "tool_call_id": c["id"], "content": f"result {i}"} for i, c in enumerate(reply["tool_calls"])
    ]
    second = await complete(target, chat(question, reply, *results, {"role": "user", "content": "Thanks"}, tools=TOOLS))
    assert isinstance(second, CompletionResult), second
    sent = fake_anthropic.requests[-1].body["messages"][-1]
    assert [b["type"] for b in sent["content"]] == ["tool_result", "tool_result", "text"]
    assert [b["tool_use_id"] for b in sent["content"][:2]] == [c["id"] for c in reply["tool_calls"]]


async def test_parallel_tool_calls_false_gives_one_call(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    target = deployment("tool", fake_anthropic.url)
    result = await complete(target, chat({"role": "user", "content": "Go"}, tools=TOOLS, parallel_tool_calls=False))
    assert isinstance(result, CompletionResult)
    assert len(result.body["choices"][0]["message"]["tool_calls"]) == 1
    assert fake_anthropic.requests[-1].body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


async def test_streamed_parallel_tool_calls(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    translator, chunks = await stream(
        deployment("tool", fake_anthropic.url), chat({"role": "user", "content": "Go"}, tools=TOOLS)
    )
    assert isinstance(translator, AnthropicStreamTranslator) and translator.error is None
    assert fake_anthropic.requests[-1].body["stream"] is True
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = call["function"].get("name") or slot["name"]
                slot["arguments"] += call["function"].get("arguments") or ""
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert orjson.loads(calls[0]["arguments"]) == {"city": "city-value"}
    assert all(calls[i]["id"].startswith("toolu_") for i in calls)
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert (
        chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == translator.usage.completion_tokens
    )
    assert all(chunk["model"] == "claude-public" for chunk in chunks)


async def test_streamed_cache_usage_without_usage_chunk(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    translator, chunks = await stream(
        deployment("cache", fake_anthropic.url), chat({"role": "user", "content": "Hi"}), include_usage=False
    )
    assert isinstance(translator, AnthropicStreamTranslator)
    assert all(chunk["choices"] for chunk in chunks)
    usage = translator.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.cached_prompt_tokens, usage.cache_write_tokens) == (1212, 1000, 200)
    whole = await complete(deployment("cache", fake_anthropic.url), chat({"role": "user", "content": "Hi"}))
    assert isinstance(whole, CompletionResult) and whole.usage == usage


async def test_streamed_thinking(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    _, chunks = await stream(deployment("thinking", fake_anthropic.url), chat({"role": "user", "content": "2+2?"}))
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c["choices"])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert (reasoning, text) == ("Let me think step by step.", "The answer is 4.")


@pytest.mark.parametrize(
    ("model", "status", "error_type", "retryable"),
    [
        ("error", 400, "invalid_request_error", False),
        ("error-401", 401, "authentication_error", False),
        ("overloaded", 529, "overloaded_error", True),
        ("ratelimit", 429, "rate_limit_error", True),
        ("error-500", 500, "api_error", True),
    ],
)
async def test_errors_whole_and_streamed(
    fake_anthropic: FakeAnthropic,  # noqa: F811
    model: str,
    status: int,
    error_type: str,
    retryable: bool,
) -> None:
    target = deployment(model, fake_anthropic.url)
    for error in (
        await complete(target, chat({"role": "user", "content": "x"})),
        (await stream(target, chat({"role": "user", "content": "x"})))[0],
    ):
        assert isinstance(error, UpstreamError)
        assert (error.status, error.type, error.retryable) == (status, error_type, retryable)
        assert error.message
        if model == "ratelimit":
            assert error.retry_after == 7.0


async def test_prompt_too_long(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    error = await complete(deployment("toolong", fake_anthropic.url), chat({"role": "user", "content": "x"}))
    assert isinstance(error, UpstreamError) and error.context_window_exceeded


async def test_request_the_real_api_would_refuse_is_refused(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    target = Deployment(id="d", public_model="p", provider="anthropic", model="good", api_base=fake_anthropic.url)
    error = await complete(target, chat({"role": "user", "content": "x"}))
    assert isinstance(error, UpstreamError) and error.status == 401 and error.type == "authentication_error"


async def test_error_event_mid_stream(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    translator, chunks = await stream(
        deployment("stream-error", fake_anthropic.url), chat({"role": "user", "content": "x"})
    )
    assert isinstance(translator, AnthropicStreamTranslator)
    assert translator.error is not None
    assert (translator.error.status, translator.error.type, translator.error.retryable) == (
        529,
        "overloaded_error",
        True,
    )
    assert chunks and not any(c["choices"] and c["choices"][0]["finish_reason"] for c in chunks)


async def test_stream_cut_mid_way(fake_anthropic: FakeAnthropic) -> None:  # noqa: F811
    translator, chunks = await stream(deployment("cut", fake_anthropic.url), chat({"role": "user", "content": "x"}))
    assert isinstance(translator, AnthropicStreamTranslator)
    assert chunks  # what arrived before the cut was passed on
    assert translator.error is not None and translator.error.type == "stream_cut" and translator.error.retryable
    assert translator.usage is not None and translator.usage.prompt_tokens > 0
