"""Provider attempts as OpenTelemetry GenAI spans: the attribute names are the semantic-conventions package's,
the values are what the request asked for and the provider answered.

The engine calls the fake OpenAI provider (a real HTTP server) with tracing on; the spans go to an in-memory
exporter. The attribute names are taken from ``opentelemetry-semantic-conventions``, never written out here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from switchboard_common import tracing
from switchboard_common.errors import ServiceError
from switchboard_router.catalog.config import parse_catalog
from switchboard_router.engine import Constraints, Engine, StreamChunks, StreamFinished
from switchboard_router.genai_spans import PROVIDER_NAMES, provider_name
from switchboard_router.operations import Operation
from tests.fakes.openai_provider import FakeOpenAI


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, spans kept in memory (a provider set by another test is reused)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    monkeypatch.setattr(tracing, "_enabled", True)
    yield exporter
    processor.shutdown()


@pytest.fixture
async def engine(fake_openai: tuple[FakeOpenAI, str]) -> Any:
    made = Engine(parse_catalog({"models": [
        {"name": "chatty", "deployments": [{"provider": "openai", "model": "good", "api_base": fake_openai[1],
                                            "api_key": "sk-fake"}]},
        {"name": "broken", "deployments": [{"provider": "openai", "model": "error", "api_base": fake_openai[1],
                                            "api_key": "sk-fake"}]},
        {"name": "vectors", "deployments": [{"provider": "openai", "model": "embed", "api_base": fake_openai[1],
                                             "api_key": "sk-fake"}]},
    ]}))
    yield made
    await made.aclose()


def genai_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if gen_ai.GEN_AI_OPERATION_NAME in (s.attributes or {})]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def http_child(exporter: InMemorySpanExporter, parent: ReadableSpan) -> ReadableSpan:
    children = [s for s in exporter.get_finished_spans() if s.parent is not None
                and s.parent.span_id == parent.context.span_id]
    assert len(children) == 1
    return children[0]


async def test_a_completion_is_a_chat_span_with_the_request_and_the_answer(
        engine: Engine, spans: InMemorySpanExporter, fake_openai: tuple[FakeOpenAI, str]) -> None:
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 64, "temperature": 0.2,
            "top_p": 0.9, "stop": ["END"], "seed": 7}
    result = await engine.complete("chatty", body, Constraints())

    span = genai_span(spans)
    attributes = dict(span.attributes or {})
    assert span.name == "chat good" and span.kind == trace.SpanKind.CLIENT
    assert attributes[gen_ai.GEN_AI_OPERATION_NAME] == gen_ai.GenAiOperationNameValues.CHAT.value
    assert attributes[gen_ai.GEN_AI_PROVIDER_NAME] == gen_ai.GenAiProviderNameValues.OPENAI.value
    assert attributes[gen_ai.GEN_AI_REQUEST_MODEL] == "good"
    assert attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attributes[gen_ai.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attributes[gen_ai.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attributes[gen_ai.GEN_AI_REQUEST_SEED] == 7
    assert tuple(attributes[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES]) == ("END",)
    assert attributes[gen_ai.GEN_AI_REQUEST_STREAM] is False
    assert attributes[gen_ai.GEN_AI_RESPONSE_ID] == result.body["id"]
    assert attributes[gen_ai.GEN_AI_RESPONSE_MODEL] == result.body["model"]
    assert tuple(attributes[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS]) == tuple(
        c["finish_reason"] for c in result.body["choices"])
    assert attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens > 0
    assert attributes[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens > 0
    assert attributes[server_attributes.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[server_attributes.SERVER_PORT] == int(fake_openai[1].split(":")[2].split("/")[0])
    assert attributes["switchboard.deployment"] == "chatty/0" and attributes["switchboard.model"] == "chatty"
    assert not any("hello" in str(v) for v in attributes.values()), "prompts are never recorded"
    http = http_child(spans, span)
    assert http.kind == trace.SpanKind.CLIENT and http.attributes["http.response.status_code"] == 200


async def test_a_stream_span_lasts_until_the_end_and_carries_its_usage(
        engine: Engine, spans: InMemorySpanExporter) -> None:
    items = [item async for item in engine.stream("chatty", {"messages": [{"role": "user", "content": "hi"}],
                                                             "stream": True}, Constraints(), include_usage=True)]
    finished = items[-1]
    assert isinstance(finished, StreamFinished)
    span = genai_span(spans)
    attributes = dict(span.attributes or {})
    assert attributes[gen_ai.GEN_AI_REQUEST_STREAM] is True
    assert attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] == finished.usage.prompt_tokens
    assert attributes[gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS] == finished.usage.completion_tokens > 0
    assert attributes[gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attributes[gen_ai.GEN_AI_RESPONSE_ID].startswith("chatcmpl")
    assert "stop" in attributes[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS]
    assert any(isinstance(item, StreamChunks) for item in items)
    assert span.end_time is not None and span.end_time >= http_child(spans, span).end_time, \
        "the HTTP span ends at the headers, the GenAI span at the stream's end"


async def test_a_provider_error_sets_error_type_and_status(engine: Engine, spans: InMemorySpanExporter) -> None:
    with pytest.raises(ServiceError) as refused:
        await engine.complete("broken", {"messages": [{"role": "user", "content": "hi"}]}, Constraints())
    span = genai_span(spans)
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.attributes[error_attributes.ERROR_TYPE] == str(refused.value.http_status)


async def test_embeddings_are_an_embeddings_span(engine: Engine, spans: InMemorySpanExporter) -> None:
    await engine.complete("vectors", {"input": "hi", "encoding_format": "float"}, Constraints(), Operation.EMBED)
    span = genai_span(spans)
    assert span.attributes[gen_ai.GEN_AI_OPERATION_NAME] == gen_ai.GenAiOperationNameValues.EMBEDDINGS.value
    assert tuple(span.attributes[gen_ai.GEN_AI_REQUEST_ENCODING_FORMATS]) == ("float",)
    assert span.attributes[gen_ai.GEN_AI_USAGE_INPUT_TOKENS] > 0


def test_provider_names_are_the_conventions_well_known_values() -> None:
    known = {v.value for v in gen_ai.GenAiProviderNameValues}
    assert set(PROVIDER_NAMES.values()) <= known
    assert provider_name("bedrock") == gen_ai.GenAiProviderNameValues.AWS_BEDROCK.value
    assert provider_name("azure") == gen_ai.GenAiProviderNameValues.AZURE_AI_OPENAI.value
    assert provider_name("ollama") == "ollama", "a provider the conventions do not list keeps its own name"


async def test_no_span_when_tracing_is_off(engine: Engine) -> None:
    assert not tracing.enabled()
    result = await engine.complete("chatty", {"messages": [{"role": "user", "content": "hi"}]}, Constraints())
    assert result.usage.completion_tokens > 0
