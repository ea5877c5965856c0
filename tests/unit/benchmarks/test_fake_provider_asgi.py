"""The Starlette/uvicorn fake provider answers what the raw one does, for the official SDK."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from benchmarks.fake_provider import completion_text
from benchmarks.processes import ManagedProcess, free_port, wait_http_ok


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[openai.AsyncOpenAI]:
    """The provider as the runner starts it: its own process, on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.fake_provider_asgi", "--port", str(port), "--chunks", "5",
            "--chunk-delay-ms", "1"]
    process = ManagedProcess("fake-provider-asgi", argv, tmp_path / "provider.log")
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", 20, process)
        sdk = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        yield sdk
        await sdk.close()
    finally:
        process.stop()


async def test_completion_and_stream_match_the_raw_provider(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="bench-model", messages=[{"role": "user", "content": "hello"}], max_tokens=3
    )
    assert completion.choices[0].message.content == completion_text(3)
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    stream = await client.chat.completions.create(
        model="bench-model", messages=[{"role": "user", "content": "hello"}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == completion_text(5)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


async def test_a_body_without_messages_is_a_400_in_openais_shape(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages"):
        await client.chat.completions.create(model="bench-model", messages=None)  # type: ignore[arg-type]
