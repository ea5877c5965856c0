"""Chat through the real gateway with the official ``openai`` SDK: /v1 and /cursor, unary and streaming."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.harness import Gateway


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key(key_alias="sdk-tests", models=[])


def client(gateway: Gateway, key: str, base: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gateway.base_url + base, max_retries=0, timeout=20)


def wait_for_usage(gateway: Gateway, request_id: str, timeout: float = 10) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = httpx.get(f"{gateway.base_url}/spend/logs", headers=gateway.admin(), timeout=5).json()
        for row in rows:
            if row["request_id"] == request_id:
                return row
        time.sleep(0.1)
    raise AssertionError(f"no usage row for {request_id}")


@pytest.mark.parametrize("base", ["/v1", "/cursor", ""])
def test_unary_chat_on_every_base_path(gateway: Gateway, key: str, base: str) -> None:
    raw = client(gateway, key, base).chat.completions.with_raw_response.create(
        model="fake-good", messages=[{"role": "user", "content": "hi"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake provider."
    assert completion.usage is not None and completion.usage.total_tokens > 0
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_")
    assert raw.headers["x-switchboard-deployment"] == "fake-good/0"
    assert float(raw.headers["x-switchboard-overhead-ms"]) >= 0
    row = wait_for_usage(gateway, request_id)
    assert row["model"] == "fake-good"
    assert row["status"] == "success"
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["completion_tokens"] == completion.usage.completion_tokens


@pytest.mark.parametrize("base", ["/v1", "/cursor"])
def test_streaming_chat_passes_chunks_and_usage(gateway: Gateway, key: str, base: str) -> None:
    stream = client(gateway, key, base).chat.completions.create(
        model="fake-good", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake provider."
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_stream_without_include_usage_has_no_usage_chunk_but_is_billed(gateway: Gateway, key: str) -> None:
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model="fake-good", messages=[{"role": "user", "content": "count me"}], stream=True)
    chunks = list(raw.parse())
    assert all(c.choices for c in chunks), "usage chunk sent although the client did not ask for it"
    assert all(getattr(c, "usage", None) is None for c in chunks)
    row = wait_for_usage(gateway, raw.headers["x-request-id"])
    assert row["stream"] is True and row["completion_tokens"] > 0 and row["usage_reported_by_provider"] is True


def test_stream_sse_framing_ends_with_done(gateway: Gateway, key: str) -> None:
    with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions",
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                      timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = b"".join(response.iter_raw()).decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_tool_calls_round_trip_through_the_gateway(gateway: Gateway, key: str) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    completion = client(gateway, key).chat.completions.create(
        model="fake-tool", messages=[{"role": "user", "content": "weather?"}], tools=tools)
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'
    assert completion.choices[0].finish_reason == "tool_calls"
    stream = client(gateway, key).chat.completions.create(
        model="fake-tool", messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True)
    args = ""
    names = []
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            args += tc.function.arguments or ""
            if tc.function.name:
                names.append(tc.function.name)
    assert names == ["get_weather"] and args == '{"city": "Paris"}'


def test_models_are_listed_for_the_key(gateway: Gateway, key: str) -> None:
    for base in ("/v1", "/cursor", ""):
        ids = {m.id for m in client(gateway, key, base).models.list()}
        assert {"fake-good", "fake-tool"} <= ids


def test_a_key_limited_to_some_models_sees_only_those(gateway: Gateway) -> None:
    limited = gateway.create_key(key_alias="limited", models=["fake-good"])
    ids = {m.id for m in client(gateway, limited).models.list()}
    assert ids == {"fake-good"}
    for base in ("/v1", "/cursor"):  # the SDK's models.retrieve: one model, or OpenAI's 404
        with client(gateway, limited, base) as sdk:
            model = sdk.models.retrieve("fake-good")
            assert (model.id, model.object) == ("fake-good", "model")
            with pytest.raises(openai.NotFoundError) as missing:
                sdk.models.retrieve("fake-echo")
        assert isinstance(missing.value.body, dict) and missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(gateway, limited).chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": "x"}])
    assert "fake-good" in str(info.value)


def test_azure_style_path_with_api_key_header(gateway: Gateway, key: str) -> None:
    azure = openai.AzureOpenAI(api_key=key, azure_endpoint=gateway.base_url, api_version="2024-10-21",
                               max_retries=0)
    completion = azure.chat.completions.create(model="fake-good", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello from the fake provider."


def test_cors_preflight_from_the_editor(gateway: Gateway) -> None:
    response = httpx.options(f"{gateway.base_url}/cursor/chat/completions", headers={
        "Origin": "vscode-file://vscode-app", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "vscode-file://vscode-app")


def test_cors_headers_on_the_editors_chat_request(gateway: Gateway, key: str) -> None:
    response = httpx.post(f"{gateway.base_url}/cursor/chat/completions", timeout=30, headers={
        "Origin": "vscode-file://vscode-app", "Authorization": f"Bearer {key}"},
        json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "vscode-file://vscode-app")
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "x-switchboard-custody-path", "x-ratelimit-remaining-requests"} <= exposed
    assert response.headers["vary"] == "Origin"
    assert response.headers["x-request-id"].startswith("req_")


def test_retry_on_a_transient_provider_error_is_transparent(gateway: Gateway, key: str) -> None:
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model="fake-flaky", messages=[{"role": "user", "content": f"flaky {time.time()}"}])
    assert raw.parse().choices[0].message.content == "Hello from the fake provider."
    assert raw.headers["x-switchboard-attempts"] == "2"


def test_fallback_model_serves_when_the_primary_is_down(gateway: Gateway, key: str) -> None:
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model="fake-with-fallback", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content == "Hello from the fake provider."
    assert raw.headers["x-switchboard-model"] == "fake-good"


def test_the_gateways_own_overhead_is_reported_without_the_providers_time(gateway: Gateway, key: str) -> None:
    """fake-slow-first-byte waits two seconds before its first byte: the overhead headers must not count that wait."""
    sdk = client(gateway, key)
    raw = sdk.chat.completions.with_raw_response.create(model="fake-slow-first-byte",
                                                        messages=[{"role": "user", "content": "hi"}])
    assert float(raw.headers["x-switchboard-overhead-ms"]) < 1000
    raw = sdk.chat.completions.with_raw_response.create(model="fake-slow-first-byte", stream=True,
                                                        messages=[{"role": "user", "content": "hi"}])
    assert float(raw.headers["x-switchboard-ttfb-overhead-ms"]) < 1000
    list(raw.parse())
    metrics = httpx.get(f"{gateway.base_url}/metrics").text
    assert 'switchboard_gateway_overhead_seconds_count{kind="unary"}' in metrics
    assert 'switchboard_gateway_overhead_seconds_count{kind="stream_first_byte"}' in metrics
