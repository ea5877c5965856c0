"""Running one admitted call through the router, unary or streamed, for any client dialect.

The router always speaks OpenAI Chat Completions; each HTTP dialect (OpenAI
chat, Anthropic Messages, the Responses API) differs only in how it renders
the answer. A :class:`Dialect` says that: how to turn a whole completion into
the client's body, and a fresh :class:`StreamEncoder` per stream that frames
chunk batches and the end of the stream. Everything else — the router call,
the route headers, settling usage exactly once however a stream ends — lives
here once, so every dialect gets the same accounting.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from switchboard.v1 import common_pb2, router_pb2
from switchboard_common import metrics
from switchboard_common.errors import ServiceError, from_rpc_error
from switchboard_facade.budget import budget_headers
from switchboard_facade.errors import anthropic_status_for, error_response, status_for
from switchboard_facade.gateway import Call, Gateway, StreamHandle, call_headers, route_headers
from switchboard_facade.replies import Reply, StreamReply
from switchboard_translate.generated_text import DeliveredText


class StreamEncoder(Protocol):
    """Frames one stream for one client: chunk batches as they come, then the end."""

    def chunks(self, chunks: Sequence[bytes]) -> bytes:
        """SSE bytes for a batch of OpenAI ``chat.completion.chunk`` JSON documents (may be empty)."""

    def end(self, usage: dict[str, Any] | None, error: common_pb2.Error | None) -> bytes:
        """The closing SSE bytes: ``error`` is set when the stream failed after it began."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one HTTP dialect renders the router's answers."""

    #: Error body shape: "openai" or "anthropic" (see :func:`errors.error_response`).
    errors: str
    #: A whole answer: (the router's chat.completion JSON, the usage it billed) → the client's body.
    render: Callable[[bytes, common_pb2.Usage | None], bytes]
    #: A fresh encoder for each stream.
    stream_encoder: Callable[[], StreamEncoder]
    #: Headers this dialect adds to every answer (given the request id).
    extra_headers: Callable[[str], Mapping[str, str]] = field(default=lambda request_id: {})


def openai_usage(usage: common_pb2.Usage) -> dict[str, Any]:
    """The router's usage as an OpenAI ``usage`` object (cache writes in the details, as the translators expect)."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_prompt_tokens,
            "cache_creation_tokens": usage.cache_write_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


async def admit(gw: Gateway, api_key: str, call: Call) -> None:
    """Everything that must pass before the router is called (raises :class:`ServiceError`)."""
    await gw.authorize(api_key, call)
    try:
        await gw.reserve(call, call.body_bytes or call.estimated_prompt_tokens * 4)
    except ServiceError:
        gw.release_limits(call)  # refused after admission (e.g. by the budget): give the rate-limit slot back
        raise


async def run(gw: Gateway, call: Call, dialect: Dialect) -> Reply:
    """Answers an admitted call, whole or streamed, in ``dialect``."""
    if call.stream:
        return await _stream(gw, call, dialect)
    return await _unary(gw, call, dialect)


def failed(gw: Gateway, call: Call, err: ServiceError, dialect: Dialect) -> Reply:
    """Settles a call that failed before any answer and renders the error."""
    http_status = anthropic_status_for(err) if dialect.errors == "anthropic" else status_for(err)
    gw.settle(call, usage=None, route=None, status="error", http_status=http_status, error_code=err.error.code)
    headers = {**call_headers(call), **dialect.extra_headers(call.request_id)}
    return error_response(err, headers, dialect=dialect.errors)


async def _unary(gw: Gateway, call: Call, dialect: Dialect) -> Reply:
    try:
        result = await gw.complete(call)
    except ServiceError as err:
        return failed(gw, call, err, dialect)
    gw.settle(call, usage=result.usage, route=result.route, status="success", http_status=200)
    headers = route_headers(call, result.route)
    headers.update(budget_headers(call.budget))
    headers.update(dialect.extra_headers(call.request_id))
    body = dialect.render(result.body, result.usage if result.HasField("usage") else None)
    headers["x-switchboard-overhead-ms"] = _overhead(call, result.provider_ms)
    return Reply(body, 200, headers)


def _overhead(call: Call, provider_ms: float) -> str:
    """Total minus provider time (TensorZero's definition), for the header and the histogram."""
    overhead_ms = max(0.0, (time.perf_counter() - call.started) * 1000 - provider_ms)
    metrics.GATEWAY_OVERHEAD.observe(("unary",), overhead_ms / 1000)
    return f"{overhead_ms:.3f}"


async def _stream(gw: Gateway, call: Call, dialect: Dialect) -> Reply:
    try:
        route, events, rpc = await gw.stream(call)
    except ServiceError as err:
        return failed(gw, call, err, dialect)
    headers = route_headers(call, route)
    headers.update(budget_headers(call.budget))
    headers.update(dialect.extra_headers(call.request_id))
    ttfb_overhead_ms = max(0.0, (time.perf_counter() - call.started) * 1000 - route.provider_ttfb_ms)
    metrics.GATEWAY_OVERHEAD.observe(("stream_first_byte",), ttfb_overhead_ms / 1000)
    headers["x-switchboard-ttfb-overhead-ms"] = f"{ttfb_overhead_ms:.3f}"
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"
    return StreamReply(_relay(gw, call, route, events, rpc, dialect.stream_encoder()), headers)


async def _relay(gw: Gateway, call: Call, route: router_pb2.RouteInfo,
                 events: AsyncIterator[router_pb2.StreamEvent], rpc: StreamHandle,
                 encoder: StreamEncoder) -> AsyncIterator[bytes]:
    """Frames chunk batches through ``encoder``; settles exactly once however the stream ends."""
    usage: common_pb2.Usage | None = None
    status, http_status, error_code = "cancelled", 499, "client_disconnected"
    ttft_ms = 0.0
    forwarded = DeliveredText()
    try:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "chunks":
                chunks = event.chunks.chunks
                if not forwarded.chunks:
                    ttft_ms = (time.perf_counter() - call.started) * 1000
                forwarded.add(chunks)
                frame = encoder.chunks(chunks)
                if frame:
                    yield frame
            elif kind == "end":
                end = event.end
                usage = end.usage
                route = end.route if end.HasField("route") else route
                if end.HasField("error"):
                    status, http_status, error_code = "error", status_for(ServiceError.from_proto(end.error)), \
                        end.error.code
                    yield encoder.end(openai_usage(usage), end.error)
                else:
                    status, http_status, error_code = "success", 200, ""
                    yield encoder.end(openai_usage(usage), None)
    except (grpc.aio.AioRpcError, ServiceError) as exc:
        # The call failed after it started (the router's typed error, the router lost, the deadline passed).
        err = exc if isinstance(exc, ServiceError) else from_rpc_error(exc, "router")
        status, http_status, error_code = "error", status_for(err), err.error.code
        yield encoder.end(None, err.error)
    finally:
        rpc.cancel()
        if usage is None:
            # The stream ended before the router could report usage (client gone): bill the text delivered.
            usage = common_pb2.Usage(prompt_tokens=call.estimated_prompt_tokens, completion_tokens=forwarded.tokens(),
                                     reported_by_provider=False)
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        gw.settle(call, usage=usage, route=route, status=status, http_status=http_status, error_code=error_code,
                  ttft_ms=ttft_ms)
