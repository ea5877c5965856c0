"""The benchmark's fake provider speaks OpenAI's wire format well enough for the official SDK."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from benchmarks.fake_provider import FakeProviderConfig, completion_text, start_fake_provider
from benchmarks.stream_client import run_load


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    server, port = await start_fake_provider(FakeProviderConfig(chunks=5))
    yield f"http://127.0.0.1:{port}/v1"
    server.close()
    await server.wait_closed()


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    yield sdk
    await sdk.close()


async def test_sdk_parses_a_completion(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="bench-model", messages=[{"role": "user", "content": "hello"}], max_tokens=3
    )
    assert completion.object == "chat.completion"
    assert completion.model == "bench-model"
    assert completion.choices[0].message.content == "alpha bravo charlie "
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


async def test_sdk_parses_a_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="bench-model",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == completion_text(5) == "alpha bravo charlie delta echo "
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


async def test_stream_without_usage_has_no_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="bench-model", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=2
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "alpha bravo "


async def test_the_answer_is_as_long_as_the_prompt_asks_up_to_the_cap(client: openai.AsyncOpenAI) -> None:
    """An output bound a gateway adds (a budget's) does not lengthen the answer; a smaller one cuts it."""
    asked = [{"role": "user", "content": "Tell a story. Answer in 7 words."}]
    long_cap = await client.chat.completions.create(model="bench-model", messages=asked,  # type: ignore[arg-type]
                                                    max_completion_tokens=32768)
    assert long_cap.usage is not None and long_cap.usage.completion_tokens == 7
    short_cap = await client.chat.completions.create(model="bench-model", messages=asked,  # type: ignore[arg-type]
                                                     max_tokens=3)
    assert short_cap.usage is not None and short_cap.usage.completion_tokens == 3
    default = await client.chat.completions.create(model="bench-model", messages=[{"role": "user", "content": "hi"}],
                                                   max_completion_tokens=32768)
    assert default.usage is not None and default.usage.completion_tokens == 5


async def test_sdk_lists_models(client: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in client.models.list()]
    assert models == ["bench-model"]


async def test_errors_are_openai_shaped(base_url: str) -> None:
    async with httpx.AsyncClient() as http:
        bad = await http.post(f"{base_url}/chat/completions", content=b"{not json")
        missing = await http.get(f"{base_url}/nowhere")
    assert bad.status_code == 400 and "message" in bad.json()["error"]
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


async def test_provider_time_header_reports_the_configured_delay() -> None:
    server, port = await start_fake_provider(FakeProviderConfig(delay_ms=5, chunks=2, chunk_delay_ms=1))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1") as http:
            plain = await http.post("/chat/completions", json={"model": "m", "messages": []})
            streamed = await http.post("/chat/completions", json={"model": "m", "messages": [], "stream": True})
    finally:
        server.close()
        await server.wait_closed()
    assert float(plain.headers["x-fake-provider-ms"]) == 5.0
    assert float(streamed.headers["x-fake-provider-ms"]) == 7.0
    assert streamed.text.count("data: ") == 5 and streamed.text.endswith("data: [DONE]\n\n")


async def test_stream_client_sees_every_event_and_the_first_token(base_url: str) -> None:
    body = b'{"model":"bench-model","messages":[],"stream":true,"stream_options":{"include_usage":true}}'
    result = await run_load(f"{base_url}/chat/completions", body, "x", concurrency=2, duration_s=0.2)
    summary = result.summary()
    assert summary["ok"] == summary["requests"] and summary["requests"] > 0
    assert summary["errors"] == {}
    # role chunk + 5 content chunks + finish chunk + usage chunk + [DONE]
    assert summary["events_mean"] == 9
    assert all(s.ttft_s is not None and s.ttft_s <= s.total_s for s in result.samples)


async def test_consecutive_stream_chunks_differ(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="bench-model", messages=[{"role": "user", "content": "Answer in 20 words."}], stream=True,
        max_tokens=4096)
    contents = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert len(contents) == 20
    assert all(first != second for first, second in itertools.pairwise(contents))
    assert "".join(contents) == completion_text(20)


async def test_stream_client_counts_error_events_and_cut_streams_as_failures() -> None:
    """A gateway that answers 200 but breaks the stream must not be counted as a success."""
    answers = {
        "/error": b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: {"error": {"message": "x"}}\n\n',
        "/cut": b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
    }

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            body = answers[head.split(b" ")[1].decode()]
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%b"
                % (len(body), body)
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        errored = await run_load(f"http://127.0.0.1:{port}/error", b"{}", "x", concurrency=1, duration_s=0.1)
        cut = await run_load(f"http://127.0.0.1:{port}/cut", b"{}", "x", concurrency=1, duration_s=0.1)
    finally:
        server.close()
        await server.wait_closed()
    assert errored.summary()["ok"] == 0 and "stream_error_event" in errored.summary()["errors"]
    assert errored.summary()["failures"] == errored.summary()["requests"] > 0
    assert cut.summary()["ok"] == 0 and "stream_without_done" in cut.summary()["errors"]
