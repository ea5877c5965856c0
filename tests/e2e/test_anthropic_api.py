"""The Anthropic Messages API on the gateway, driven by the official ``anthropic`` SDK.

One gateway for this module serves the fake OpenAI provider's models
(``fake-*``: OpenAI in → Anthropic out) and the fake Anthropic API's
(``claude-*``: Anthropic in → OpenAI canonical → Anthropic out).
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import FAKE_PRICES, fake_models
from tests.fakes.anthropic_provider import FakeAnthropic
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

WEATHER_TOOL = {"name": "get_weather", "description": "Weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture(scope="module")
def fake_anthropic_api() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
       fake_anthropic_api: FakeAnthropic) -> Iterator[Gateway]:
    def claude(name: str, model: str) -> dict[str, object]:
        return {"name": name, "deployments": [{"provider": "anthropic", "model": model, "api_base":
                                               fake_anthropic_api.url, "api_key": "sk-ant-fake-upstream",
                                               **FAKE_PRICES}]}
    models = fake_models(fake_openai[1]) + [claude("claude-good", "good"), claude("claude-tool", "tool"),
                                            claude("claude-cache", "cache"), claude("claude-max", "max"),
                                            claude("claude-stream-error", "stream-error"),
                                            claude("claude-thinking", "thinking"), claude("claude-stop", "stop")]
    tmp: Path = tmp_path_factory.mktemp("anthropic-gateway")
    gateway = start_gateway(tmp, models)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def key(gw: Gateway) -> str:
    return gw.create_key(key_alias="anthropic-sdk-tests", models=[])


def client(gw: Gateway, key: str, base: str = "") -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gw.base_url + base, max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def sdk(gw: Gateway, key: str) -> Iterator[anthropic.Anthropic]:
    with client(gw, key) as c:
        yield c


def usage_row(gw: Gateway, request_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in httpx.get(f"{gw.base_url}/spend/logs", headers=gw.admin(), timeout=5).json():
            if row["request_id"] == request_id:
                return dict(row)
        time.sleep(0.1)
    raise AssertionError(f"no usage row for {request_id}")


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# -- OpenAI-backed models answer in Anthropic's format ------------------------------------------------


def test_unary_message_from_an_openai_model_is_billed(gw: Gateway, sdk: anthropic.Anthropic) -> None:
    raw = sdk.messages.with_raw_response.create(
        model="fake-good", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.model == "fake-good"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from the fake provider."
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    request_id = raw.headers["x-request-id"]
    assert raw.headers["request-id"] == request_id and message.id == "msg_" + request_id.removeprefix("req_")
    assert raw.headers["x-switchboard-deployment"] == "fake-good/0"
    row = usage_row(gw, request_id)
    assert row["status"] == "success" and row["model"] == "fake-good" and row["stream"] is False
    assert row["prompt_tokens"] == message.usage.input_tokens
    assert row["completion_tokens"] == message.usage.output_tokens


def test_streamed_message_from_an_openai_model(gw: Gateway, sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model="fake-good", max_tokens=100,
                                         messages=[{"role": "user", "content": "hi"}]) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert len(deltas) > 1 and "".join(deltas) == "Hello from the fake provider."
    assert final.content[0].text == "Hello from the fake provider." and final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    row = usage_row(gw, request_id)
    assert row["stream"] is True and row["status"] == "success"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (final.usage.input_tokens, final.usage.output_tokens)


def test_stream_events_follow_anthropic_order(gw: Gateway, key: str) -> None:
    with httpx.stream("POST", f"{gw.base_url}/v1/messages", timeout=10,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                      json={"model": "fake-good", "max_tokens": 50, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = b"".join(response.iter_raw()).decode()
    names = [frame.split("\n")[0].removeprefix("event: ") for frame in body.split("\n\n") if frame]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}


def test_tool_use_whole_and_streamed(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model="fake-tool", max_tokens=100, tools=[WEATHER_TOOL],
                                  messages=[{"role": "user", "content": "weather in Paris?"}])
    assert message.stop_reason == "tool_use"
    [call] = [block for block in message.content if block.type == "tool_use"]
    assert (call.id, call.name, call.input) == ("call_fake_1", "get_weather", {"city": "Paris"})
    with sdk.messages.stream(model="fake-tool", max_tokens=100, tools=[WEATHER_TOOL],
                             messages=[{"role": "user", "content": "weather in Paris?"}]) as stream:
        final = stream.get_final_message()
    [call] = [block for block in final.content if block.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"}) and final.stop_reason == "tool_use"


def test_tool_result_and_system_prompt_reach_the_openai_provider(sdk: anthropic.Anthropic,
                                                                fake_openai: tuple[FakeOpenAI, str]) -> None:
    message = sdk.messages.create(
        model="fake-echo", max_tokens=100, system="Answer briefly.", tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_fake_1", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_fake_1", "content": "Sunny"},
                                         {"type": "text", "text": "and tomorrow?"}]},
        ])
    assert message.content[0].text == "and tomorrow?"
    sent = next(r.body for r in reversed(fake_openai[0].requests) if r.body.get("model") == "echo")
    assert sent["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assistant, tool, user = sent["messages"][2:]
    assert assistant["tool_calls"][0]["id"] == "call_fake_1"
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert tool == {"role": "tool", "tool_call_id": "call_fake_1", "content": "Sunny"}
    assert user == {"role": "user", "content": "and tomorrow?"}


def test_images_become_openai_image_parts(sdk: anthropic.Anthropic, fake_openai: tuple[FakeOpenAI, str]) -> None:
    data = base64.b64encode(png(2, 2)).decode()
    sdk.messages.create(model="fake-echo", max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "what is this?"}]}])
    sent = next(r.body for r in reversed(fake_openai[0].requests) if r.body.get("model") == "echo")
    assert sent["messages"][-1]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
        {"type": "text", "text": "what is this?"}]


def test_bearer_token_and_the_anthropic_base_path(gw: Gateway, key: str) -> None:
    """Claude Code's ANTHROPIC_AUTH_TOKEN sends ``Authorization: Bearer``; some clients use ``<gw>/anthropic``."""
    with anthropic.Anthropic(auth_token=key, base_url=gw.base_url + "/anthropic", max_retries=0, timeout=20) as sdk:
        message = sdk.messages.create(model="fake-good", max_tokens=20,
                                      messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello from the fake provider."


# -- count_tokens --------------------------------------------------------------------------------------


def test_count_tokens_is_an_estimate_that_grows_with_the_prompt(sdk: anthropic.Anthropic) -> None:
    short = sdk.messages.count_tokens(model="fake-good", messages=[{"role": "user", "content": "hi"}])
    long = sdk.messages.count_tokens(model="fake-good", messages=[{"role": "user", "content": "hello there " * 100}])
    with_tools = sdk.messages.count_tokens(model="fake-good", tools=[WEATHER_TOOL],
                                           messages=[{"role": "user", "content": "hi"}])
    image = sdk.messages.count_tokens(model="claude-good", messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": base64.b64encode(png(200, 150)).decode()}}]}])
    assert 0 < short.input_tokens < 10
    assert 150 <= long.input_tokens <= 300
    assert with_tools.input_tokens >= short.input_tokens + 346
    assert 40 <= image.input_tokens < 50  # 200 × 150 / 750 = 40 for the image, plus the message's framing


def test_count_tokens_refuses_unknown_models_and_bad_keys(gw: Gateway, sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        sdk.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with client(gw, "sk-wrong") as bad, pytest.raises(anthropic.AuthenticationError):
        bad.messages.count_tokens(model="fake-good", messages=[{"role": "user", "content": "x"}])


# -- errors --------------------------------------------------------------------------------------------


def test_errors_are_anthropic_error_json(gw: Gateway, key: str, sdk: anthropic.Anthropic) -> None:
    with client(gw, "sk-wrong") as bad, pytest.raises(anthropic.AuthenticationError) as auth:
        bad.messages.create(model="fake-good", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert auth.value.status_code == 401 and auth.value.body["type"] == "error"  # type: ignore[index]
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(model="no-such-model", max_tokens=5,
                                        messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "no-such-model" in missing.value.body["error"]["message"]  # type: ignore[index]
    response = httpx.post(f"{gw.base_url}/v1/messages", headers={"x-api-key": key}, timeout=10,
                          json={"model": "fake-good", "max_tokens": 5, "messages": []})
    assert response.status_code == 400
    assert response.json() == {"type": "error", "error": {
        "type": "invalid_request_error", "message": response.json()["error"]["message"]}}
    assert "messages" in response.json()["error"]["message"]
    server_tool = httpx.post(f"{gw.base_url}/v1/messages", headers={"x-api-key": key}, timeout=10, json={
        "model": "fake-good", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]})
    assert server_tool.status_code == 400 and "server tools" in server_tool.json()["error"]["message"]
    mcp = httpx.post(f"{gw.base_url}/v1/messages", headers={"x-api-key": key}, timeout=10, json={
        "model": "fake-good", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
        "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "example"}]})
    assert mcp.status_code == 400 and "mcp_servers" in mcp.json()["error"]["message"]
    wrong_method = httpx.get(f"{gw.base_url}/v1/messages", headers={"x-api-key": key}, timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "error"
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"
    batches = httpx.post(f"{gw.base_url}/v1/messages/batches", headers={"x-api-key": key}, timeout=10, json={})
    assert batches.status_code == 404 and batches.json()["error"]["type"] == "not_found_error"
    assert "POST /v1/messages" in batches.json()["error"]["message"]


# -- Anthropic in, Anthropic out -----------------------------------------------------------------------


def test_anthropic_model_round_trip_whole_and_streamed(sdk: anthropic.Anthropic,
                                                       fake_anthropic_api: FakeAnthropic) -> None:
    message = sdk.messages.create(model="claude-good", max_tokens=64, system="Be kind.",
                                  messages=[{"role": "user", "content": "ping"}])
    assert message.content[0].text == "Hello! You said: ping" and message.stop_reason == "end_turn"
    upstream = fake_anthropic_api.requests[-1]
    assert upstream.headers["x-api-key"] == "sk-ant-fake-upstream"
    assert upstream.body["system"] in ("Be kind.", [{"type": "text", "text": "Be kind."}])
    assert upstream.body["max_tokens"] == 64
    with sdk.messages.stream(model="claude-good", max_tokens=64,
                             messages=[{"role": "user", "content": "pong"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello! You said: pong" and final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    capped = sdk.messages.create(model="claude-max", max_tokens=5, messages=[{"role": "user", "content": "long"}])
    assert capped.stop_reason == "max_tokens"


def test_anthropic_cache_usage_survives_the_round_trip(gw: Gateway, sdk: anthropic.Anthropic) -> None:
    raw = sdk.messages.with_raw_response.create(
        model="claude-cache", max_tokens=32, messages=[{"role": "user", "content": "cached?"}])
    usage = raw.parse().usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (12, 1000, 200)
    with sdk.messages.stream(model="claude-cache", max_tokens=32,
                                         messages=[{"role": "user", "content": "cached?"}]) as stream:
        streamed = stream.get_final_message().usage
    assert (streamed.input_tokens, streamed.cache_read_input_tokens, streamed.cache_creation_input_tokens) == \
        (12, 1000, 200)
    row = usage_row(gw, raw.headers["x-request-id"])
    assert row["prompt_tokens"] == 1212 and row["cached_prompt_tokens"] == 1000


def test_anthropic_tool_round_trip(sdk: anthropic.Anthropic, fake_anthropic_api: FakeAnthropic) -> None:
    first = sdk.messages.create(model="claude-tool", max_tokens=64, tools=[WEATHER_TOOL],
                                messages=[{"role": "user", "content": "weather?"}])
    calls = [block for block in first.content if block.type == "tool_use"]
    assert first.stop_reason == "tool_use" and [c.input for c in calls] == [{"city": "city-value"}]
    with sdk.messages.stream(model="claude-tool", max_tokens=64, tools=[WEATHER_TOOL],
                             messages=[{"role": "user", "content": "weather?"}]) as stream:
        streamed = [block for block in stream.get_final_message().content if block.type == "tool_use"]
    assert [(c.name, c.input) for c in streamed] == [("get_weather", {"city": "city-value"})]
    answer = sdk.messages.create(model="claude-good", max_tokens=64, tools=[WEATHER_TOOL], messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "Sunny"},
                                     {"type": "text", "text": "thanks"}]},
    ])
    assert answer.content[0].text == "Hello! You said: thanks"
    result_block = fake_anthropic_api.requests[-1].body["messages"][2]["content"][0]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == calls[0].id


def test_streamed_thinking_keeps_its_signature_and_budget(sdk: anthropic.Anthropic,
                                                           fake_anthropic_api: FakeAnthropic) -> None:
    # Claude Code streams with thinking on, and must send the signed block back in its next tool-use turn.
    with sdk.messages.stream(model="claude-thinking", max_tokens=2000,
                             thinking={"type": "enabled", "budget_tokens": 1500},
                             messages=[{"role": "user", "content": "2+2?"}]) as stream:
        final = stream.get_final_message()
    assert fake_anthropic_api.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    assert [block.model_dump(exclude_none=True) for block in final.content] == [
        {"type": "thinking", "thinking": "Let me think step by step.", "signature": "sig-fake=="},
        {"type": "text", "text": "The answer is 4."},
    ]


def test_the_matched_stop_sequence_is_reported_whole_and_streamed(sdk: anthropic.Anthropic) -> None:
    asked = {"model": "claude-stop", "max_tokens": 64, "stop_sequences": ["###", "END"],
             "messages": [{"role": "user", "content": "count"}]}
    message = sdk.messages.create(**asked)  # type: ignore[call-overload]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")
    with sdk.messages.stream(**asked) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "###")
    plain = sdk.messages.create(model="claude-good", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert (plain.stop_reason, plain.stop_sequence) == ("end_turn", None)


def test_anthropic_error_mid_stream_reaches_the_client(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError):
        with sdk.messages.stream(model="claude-stream-error", max_tokens=64,
                                             messages=[{"role": "user", "content": "hello"}]) as stream:
            stream.get_final_message()


def test_responses_api_reaches_an_anthropic_model(gw: Gateway, key: str) -> None:
    with openai.OpenAI(api_key=key, base_url=gw.base_url + "/v1", max_retries=0, timeout=20) as sdk:
        response = sdk.responses.create(model="claude-good", input="hola", instructions="Be brief.")
    assert response.output_text == "Hello! You said: hola"
    assert response.usage is not None and response.usage.input_tokens > 0
