"""The demo provider through the router's real engine: deterministic answers, streams that add up to
the same answer and the same usage, tool calls, JSON, output limits, embeddings, and the catalog rule
that keeps it live only while no other model is."""

from __future__ import annotations

import base64
import math
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from switchboard_common.errors import ServiceError
from switchboard_router.catalog.config import load_catalog, parse_catalog
from switchboard_router.catalog.probe import drop_if_not_alone, live_catalog
from switchboard_router.engine import Constraints, Engine, StreamChunks, StreamFinished
from switchboard_router.operations import Operation
from switchboard_router.providers import demo_model

ROOT = Path(__file__).resolve().parents[3]
DEMO = {"name": "demo", "deployments": [{"provider": "demo", "model": "switchboard-demo", "chunk_delay_ms": 0,
                                         "only_if_alone": True}]}
PROMPT = [{"role": "user", "content": "Summarise the quarterly report, please."}]


def engine() -> Engine:
    return Engine(parse_catalog({"models": [DEMO]}))


async def complete(body: dict[str, Any], operation: Operation = Operation.COMPLETE) -> Any:
    demo = engine()
    try:
        return await demo.complete("demo", {"model": "demo", **body}, Constraints(), operation)
    finally:
        await demo.aclose()


async def stream(body: dict[str, Any]) -> tuple[list[dict[str, Any]], StreamFinished]:
    demo = engine()
    chunks: list[dict[str, Any]] = []
    finished = None
    try:
        async for item in demo.stream("demo", {"model": "demo", **body}, Constraints(), include_usage=True):
            if isinstance(item, StreamChunks):
                chunks.extend(orjson.loads(c) for c in item.chunks)
            elif isinstance(item, StreamFinished):
                finished = item
    finally:
        await demo.aclose()
    assert finished is not None
    return chunks, finished


async def test_a_whole_answer_quotes_the_prompt_and_counts_its_tokens() -> None:
    result = await complete({"messages": PROMPT})
    message = result.body["choices"][0]["message"]
    assert message["content"].startswith('You said: "Summarise the quarterly report, please."')
    assert "demo model" in message["content"]
    assert result.body["choices"][0]["finish_reason"] == "stop"
    # "Summarise the quarterly report, please." is 7 tokens (5 words, a comma, a full stop), plus framing.
    assert result.usage.prompt_tokens == 3 + demo_model.MESSAGE_OVERHEAD + 7
    assert result.usage.completion_tokens == demo_model.count_tokens(message["content"])
    assert result.usage.reported_by_provider and result.body["usage"]["total_tokens"] == result.usage.total_tokens
    again = await complete({"messages": PROMPT})
    assert again.body == result.body, "the same request, the same answer"
    other = await complete({"messages": [{"role": "user", "content": "something else"}]})
    assert other.body["choices"][0]["message"]["content"] != message["content"]


async def test_a_stream_is_the_same_answer_token_by_token_with_the_same_usage() -> None:
    whole = await complete({"messages": PROMPT})
    chunks, finished = await stream({"messages": PROMPT})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole.body["choices"][0]["message"]["content"]
    content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == whole.usage.completion_tokens, "one chunk per token"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == whole.usage.completion_tokens
    assert (finished.usage.prompt_tokens, finished.usage.completion_tokens) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens)
    assert finished.error is None and finished.route.deployment.provider == "demo"


async def test_max_tokens_cuts_the_answer_with_finish_reason_length() -> None:
    result = await complete({"messages": PROMPT, "max_tokens": 5})
    assert result.body["choices"][0]["finish_reason"] == "length"
    assert result.usage.completion_tokens == 5
    assert result.body["choices"][0]["message"]["content"] == 'You said: "Summarise'


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "required": ["city", "unit", "days"],
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                   "days": {"type": "integer", "minimum": 1}, "detail": {"type": "boolean"}}}}}


async def test_offered_tools_are_called_with_arguments_that_fit_their_schema() -> None:
    ask = [{"role": "user", "content": "Weather in Lyon?"}]
    result = await complete({"messages": ask, "tools": [WEATHER]})
    choice = result.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and call["id"].startswith("call_demo_")
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Weather in Lyon?", "unit": "celsius", "days": 1}
    assert result.usage.prompt_tokens > 3 + demo_model.MESSAGE_OVERHEAD + 4, "the tool definitions count"

    chunks, _ = await stream({"messages": ask, "tools": [WEATHER]})
    pieces = [d["tool_calls"][0] for c in chunks if c["choices"] for d in [c["choices"][0]["delta"]]
              if d.get("tool_calls")]
    assert pieces[0]["id"] == call["id"] and pieces[0]["function"]["name"] == "get_weather"
    assert "".join(p["function"]["arguments"] for p in pieces) == call["function"]["arguments"]

    follow_up = [*ask, {"role": "assistant", "content": None, "tool_calls": [call]},
                 {"role": "tool", "tool_call_id": call["id"], "content": "18 degrees and sunny"}]
    answer = (await complete({"messages": follow_up, "tools": [WEATHER]})).body["choices"][0]
    assert answer["finish_reason"] == "stop"
    assert answer["message"]["content"].startswith('The tool answered: "18 degrees and sunny"')
    none = await complete({"messages": ask, "tools": [WEATHER], "tool_choice": "none"})
    assert none.body["choices"][0]["finish_reason"] == "stop"


async def test_json_response_formats_are_valid_json() -> None:
    schema = {"type": "object", "required": ["title", "tags"],
              "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}
    shaped = await complete({"messages": PROMPT, "response_format": {
        "type": "json_schema", "json_schema": {"name": "summary", "schema": schema}}})
    data = orjson.loads(shaped.body["choices"][0]["message"]["content"])
    assert set(data) == {"title", "tags"} and isinstance(data["tags"], list)
    loose = await complete({"messages": PROMPT, "response_format": {"type": "json_object"}})
    assert "answer" in orjson.loads(loose.body["choices"][0]["message"]["content"])


async def test_embeddings_are_deterministic_unit_vectors_in_either_encoding() -> None:
    result = await complete({"input": ["alpha", "beta", "alpha"]}, Operation.EMBED)
    vectors = [d["embedding"] for d in result.body["data"]]
    assert len(vectors[0]) == demo_model.EMBEDDING_DIMENSIONS
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert math.isclose(sum(v * v for v in vectors[1]), 1.0, rel_tol=1e-9)
    assert result.usage.prompt_tokens == 3
    packed = await complete({"input": "alpha", "encoding_format": "base64", "dimensions": 8}, Operation.EMBED)
    decoded = struct.unpack("<8f", base64.b64decode(packed.body["data"][0]["embedding"]))
    assert math.isclose(sum(v * v for v in decoded), 1.0, rel_tol=1e-5)


async def test_a_request_the_model_cannot_answer_is_the_callers_error_and_not_retried() -> None:
    with pytest.raises(ServiceError) as refused:
        await complete({"messages": []})
    assert "messages" in refused.value.message
    with pytest.raises(ServiceError) as refused_stream:
        await stream({"messages": "hello"})
    assert "messages" in refused_stream.value.message


def test_only_if_alone_steps_aside_when_another_model_is_live() -> None:
    real = {"name": "gpt", "deployments": [{"provider": "openai", "model": "gpt-4o-mini", "api_key": "${KEY_X}"}]}
    alone = drop_if_not_alone(parse_catalog({"models": [DEMO, real]}))
    assert alone.live_models() == ["demo"], "with no provider key the demo answers"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KEY_X", "sk-x")
        crowded = drop_if_not_alone(parse_catalog({"models": [DEMO, real]}))
    assert crowded.live_models() == ["gpt"]
    assert "only_if_alone" in dict(crowded.models["demo"].unavailable)["demo/0"]


PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "MISTRAL_API_KEY", "DEEPSEEK_API_KEY",
                 "GROQ_API_KEY")


@pytest.mark.parametrize(("variable", "models"), [
    (None, {"demo"}),
    ("OPENAI_API_KEY", {"gpt-4o-mini", "gpt-4o"}),
    ("ANTHROPIC_API_KEY", {"claude-sonnet-4-5", "claude-haiku-4-5"}),
    ("GEMINI_API_KEY", {"gemini-2.5-flash", "gemini-2.5-pro"}),
])
async def test_the_shipped_catalog_serves_the_demo_or_the_providers_whose_keys_are_set(
        monkeypatch: pytest.MonkeyPatch, variable: str | None, models: set[str]) -> None:
    for name in PROVIDER_KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_API_BASE", "http://127.0.0.1:9/v1")  # no Ollama here
    if variable:
        monkeypatch.setenv(variable, "a-key")
    catalog = await live_catalog(load_catalog(ROOT / "config" / "switchboard.yaml"))
    assert set(catalog.live_models()) == models
