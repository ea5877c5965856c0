"""A span per provider attempt in OpenTelemetry's GenAI semantic conventions, for processes that trace.

Imported only when :func:`switchboard_common.tracing.enabled`. Each attempt of a
completion (or embeddings call) gets a ``CLIENT`` span named
``"{gen_ai.operation.name} {gen_ai.request.model}"`` (``chat gpt-4o-mini``)
carrying the request's ``gen_ai.*`` attributes — operation, provider (the
convention's well-known names: ``openai``, ``azure.ai.openai``, ``aws.bedrock``,
``gcp.gemini``, ...), the model sent, max tokens, temperature — and, once the
answer is known, the response's id, model, finish reasons and token usage. The
HTTP call to the provider (:mod:`switchboard_router.upstream_spans`) is its
child; a stream's span lasts until the stream ends. Attribute names come from
the ``opentelemetry-semantic-conventions`` package, never typed by hand.
Prompts and answers are never recorded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from switchboard_common.errors import ServiceError
from switchboard_common.tracing import TRACER_NAME
from switchboard_router.deployment import Deployment
from switchboard_router.operations import Operation
from switchboard_router.outcomes import AttemptFailed, StreamChunks, StreamFinished, StreamItem, UnaryResult
from switchboard_router.providers.base import TokenUsage, UpstreamError

_Provider = gen_ai.GenAiProviderNameValues
#: Adapter name → the convention's ``gen_ai.provider.name``; other adapters (ollama, vllm, ...) keep their name.
PROVIDER_NAMES = {
    "openai": _Provider.OPENAI.value,
    "azure": _Provider.AZURE_AI_OPENAI.value,
    "anthropic": _Provider.ANTHROPIC.value,
    "gemini": _Provider.GCP_GEMINI.value,
    "vertex": _Provider.GCP_VERTEX_AI.value,
    "bedrock": _Provider.AWS_BEDROCK.value,
    "mistral": _Provider.MISTRAL_AI.value,
    "groq": _Provider.GROQ.value,
    "deepseek": _Provider.DEEPSEEK.value,
    "xai": _Provider.X_AI.value,
    "perplexity": _Provider.PERPLEXITY.value,
    "cohere": _Provider.COHERE.value,
}
_OPERATIONS = {Operation.COMPLETE: gen_ai.GenAiOperationNameValues.CHAT.value,
               Operation.EMBED: gen_ai.GenAiOperationNameValues.EMBEDDINGS.value}
#: Request body fields → their attribute, when the client set them.
_NUMBERS = {
    "temperature": gen_ai.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": gen_ai.GEN_AI_REQUEST_TOP_P,
    "frequency_penalty": gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": gen_ai.GEN_AI_REQUEST_SEED,
}
#: The gateway's own attributes beside the convention's: the public model asked for and the deployment.
MODEL_ATTRIBUTE = "switchboard.model"
DEPLOYMENT_ATTRIBUTE = "switchboard.deployment"


def provider_name(adapter: str) -> str:
    return PROVIDER_NAMES.get(adapter, adapter)


def request_attributes(deployment: Deployment, served_model: str, operation: Operation,
                       body: dict[str, Any]) -> dict[str, Any]:
    """The attributes known before the provider is called."""
    attributes: dict[str, Any] = {
        gen_ai.GEN_AI_OPERATION_NAME: _OPERATIONS[operation],
        gen_ai.GEN_AI_PROVIDER_NAME: provider_name(deployment.provider),
        gen_ai.GEN_AI_REQUEST_MODEL: deployment.model,
        MODEL_ATTRIBUTE: served_model,
        DEPLOYMENT_ATTRIBUTE: deployment.id,
    }
    base = urlsplit(deployment.api_base) if deployment.api_base else None
    if base is not None and base.hostname:
        attributes[server_attributes.SERVER_ADDRESS] = base.hostname
        attributes[server_attributes.SERVER_PORT] = base.port or (443 if base.scheme == "https" else 80)
    if operation is Operation.EMBED:
        if isinstance(body.get("encoding_format"), str):
            attributes[gen_ai.GEN_AI_REQUEST_ENCODING_FORMATS] = [body["encoding_format"]]
        return attributes
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for field, name in _NUMBERS.items():
        value = body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    stop = body.get("stop")
    if isinstance(stop, str):
        attributes[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attributes[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = stop
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices != 1:
        attributes[gen_ai.GEN_AI_REQUEST_CHOICE_COUNT] = choices
    attributes[gen_ai.GEN_AI_REQUEST_STREAM] = bool(body.get("stream"))
    return attributes


def response_attributes(answer: dict[str, Any]) -> dict[str, Any]:
    """The attributes of an OpenAI-shaped answer (a chat completion, or a stream chunk): id, model, finish reasons."""
    attributes: dict[str, Any] = {}
    if isinstance(answer.get("id"), str) and answer["id"]:
        attributes[gen_ai.GEN_AI_RESPONSE_ID] = answer["id"]
    if isinstance(answer.get("model"), str) and answer["model"]:
        attributes[gen_ai.GEN_AI_RESPONSE_MODEL] = answer["model"]
    reasons = [c["finish_reason"] for c in answer.get("choices") or ()
               if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)]
    if reasons:
        attributes[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    return attributes


def usage_attributes(usage: TokenUsage) -> dict[str, int]:
    """Token counts; input tokens include cached and cache-written ones, as the convention says."""
    attributes = {gen_ai.GEN_AI_USAGE_INPUT_TOKENS: usage.prompt_tokens,
                  gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: usage.completion_tokens}
    if usage.cached_prompt_tokens:
        attributes[gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_prompt_tokens
    if usage.cache_write_tokens:
        attributes[gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        attributes[gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    return attributes


def error_type(error: UpstreamError | ServiceError) -> str:
    """``error.type``: the provider's HTTP status, or the gateway's code for a timeout or an unreachable provider."""
    if isinstance(error, ServiceError):
        return error.error.code or "error"
    if error.code in ("upstream_timeout", "upstream_unreachable"):
        return error.code
    return str(error.status)


def _failed(span: trace.Span, error: UpstreamError | ServiceError) -> None:
    kind = error_type(error)
    span.set_attribute(error_attributes.ERROR_TYPE, kind)
    span.set_status(trace.StatusCode.ERROR, kind)


def _start(deployment: Deployment, served_model: str, operation: Operation, body: dict[str, Any]) -> trace.Span:
    attributes = request_attributes(deployment, served_model, operation, body)
    name = f"{attributes[gen_ai.GEN_AI_OPERATION_NAME]} {deployment.model}"
    return trace.get_tracer(TRACER_NAME).start_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)


class UnaryAttempt:
    """The span of one unary attempt: ``with attempt(...) as record: record(result)``."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def __call__(self, result: UnaryResult) -> None:
        self.span.set_attributes({**response_attributes(result.body), **usage_attributes(result.usage)})


@contextmanager
def unary_attempt(deployment: Deployment, served_model: str, operation: Operation,
                  body: dict[str, Any]) -> Iterator[UnaryAttempt]:
    span = _start(deployment, served_model, operation, body)
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield UnaryAttempt(span)
    except AttemptFailed as exc:
        _failed(span, exc.error)
        raise
    except ServiceError as exc:
        _failed(span, exc)
        raise
    finally:
        span.end()


async def stream_attempt(items: AsyncIterator[StreamItem], deployment: Deployment, served_model: str,
                         body: dict[str, Any]) -> AsyncIterator[StreamItem]:
    """``items`` (one attempt's stream) unchanged, inside its span: current while the provider is awaited, with
    the first chunk's id and model, the finish reasons, the time to the first chunk and the final usage."""
    span = _start(deployment, served_model, Operation.COMPLETE, body)
    started = time.perf_counter()
    current = trace.set_span_in_context(span)
    first = True
    reasons: list[str] = []
    try:
        while True:
            token = otel_context.attach(current)
            try:
                item = await anext(items)
            except StopAsyncIteration:
                return
            finally:
                otel_context.detach(token)
            if isinstance(item, StreamChunks) and item.chunks:
                if first:
                    first = False
                    span.set_attribute(gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, time.perf_counter() - started)
                    span.set_attributes({k: v for k, v in _chunk_attributes(item.chunks[0]).items()
                                         if k != gen_ai.GEN_AI_RESPONSE_FINISH_REASONS})
                reasons.extend(_finish_reasons(item.chunks))
            elif isinstance(item, StreamFinished):
                span.set_attributes(usage_attributes(item.usage))
                if item.error is not None:
                    _failed(span, item.error)
            yield item
    except AttemptFailed as exc:
        _failed(span, exc.error)
        raise
    finally:
        if reasons:
            span.set_attribute(gen_ai.GEN_AI_RESPONSE_FINISH_REASONS, reasons)
        span.end()


def _chunk_attributes(raw: bytes) -> dict[str, Any]:
    try:
        chunk = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return response_attributes(chunk) if isinstance(chunk, dict) else {}


def _finish_reasons(chunks: list[bytes]) -> list[str]:
    reasons: list[str] = []
    for raw in chunks:
        if b'"finish_reason"' in raw and b'"finish_reason":null' not in raw:
            reasons.extend(_chunk_attributes(raw).get(gen_ai.GEN_AI_RESPONSE_FINISH_REASONS, ()))
    return reasons
