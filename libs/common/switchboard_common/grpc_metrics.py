"""A gRPC server interceptor that records every RPC of a service, with no servicer edits.

For each RPC: count by status code, time in the handler, in-flight gauge, and —
from the typed ``switchboard.v1.Error`` a servicer attaches when it refuses —
policy denials (rate limits, budgets, bad keys). For the router it also reads the
answers going out (``CompleteResponse`` and the stream's ``StreamEnd``) to count
tokens, retries, fallbacks, provider latency and upstream errors: the facts are
already in the messages, so the engine needs no metrics code of its own.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from switchboard.v1 import common_pb2, router_pb2
from switchboard_common import metrics
from switchboard_common.errors import ERROR_METADATA_KEY

Kind = common_pb2.ErrorKind

#: Error kinds that are a policy's refusal rather than a failure, and the ``reason`` label they get.
DENIAL_REASONS: dict[int, str] = {
    Kind.ERROR_KIND_RATE_LIMITED: "rate_limit",
    Kind.ERROR_KIND_BUDGET_EXCEEDED: "budget",
    Kind.ERROR_KIND_AUTHENTICATION: "authentication",
    Kind.ERROR_KIND_PERMISSION: "permission",
    Kind.ERROR_KIND_POLICY: "policy",
}
#: Error kinds whose cause is the provider.
UPSTREAM_KINDS = frozenset({Kind.ERROR_KIND_UPSTREAM, Kind.ERROR_KIND_UPSTREAM_UNREACHABLE,
                            Kind.ERROR_KIND_UPSTREAM_TIMEOUT})


def kind_label(kind: int) -> str:
    """``ERROR_KIND_UPSTREAM_TIMEOUT`` -> ``upstream_timeout`` (a small, closed set)."""
    try:
        return Kind.Name(kind).removeprefix("ERROR_KIND_").lower()  # type: ignore[arg-type]
    except ValueError:
        return "unknown"


def _typed_error(context: grpc.aio.ServicerContext) -> common_pb2.Error | None:
    for key, value in context.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            try:
                return common_pb2.Error.FromString(value)
            except DecodeError:  # a malformed detail must not break the RPC
                return None
    return None


def record_route(model: str, route: router_pb2.RouteInfo, usage: common_pb2.Usage, provider_ms: float,
                 ttfb_ms: float = 0.0, error: common_pb2.Error | None = None) -> None:
    """Counts what one finished completion tells: tokens, retries, fallbacks, provider time, upstream errors."""
    deployment, provider = route.deployment_id, route.provider
    if deployment:
        served = route.served_model or model
        metrics.TOKENS.inc((served, deployment, "in"), usage.prompt_tokens)
        metrics.TOKENS.inc((served, deployment, "out"), usage.completion_tokens)
        metrics.PROVIDER_LATENCY.observe((provider, deployment), provider_ms / 1000)
        if ttfb_ms > 0:
            metrics.PROVIDER_TTFB.observe((provider, deployment), ttfb_ms / 1000)
    if route.attempts > 1:
        metrics.RETRIES.labels(model).inc(route.attempts - 1)
    if route.served_model and route.served_model != model:
        metrics.FALLBACKS.labels(model, route.served_model).inc()
    if error is not None and error.kind in UPSTREAM_KINDS:
        metrics.UPSTREAM_ERRORS.labels(error.provider or provider or "unknown", kind_label(error.kind)).inc()


def call_started(service: str, method: str) -> None:
    """Counts a call in flight (``record_call`` ends it): for calls that are not RPCs of their own (Exchange)."""
    metrics.RPC_INFLIGHT.add((service, method), 1)


def record_call(service: str, method: str, started: float, code: Any, error: common_pb2.Error | None) -> None:
    """Counts one finished call of ``method`` with its status ``code`` and, when refused, its typed ``error``."""
    name = code.name if isinstance(code, grpc.StatusCode) else str(code)
    metrics.RPCS.inc((service, method, name))
    metrics.RPC_LATENCY.observe((service, method), time.perf_counter() - started)
    metrics.RPC_INFLIGHT.add((service, method), -1)
    if name != "OK" and error is not None:
        if error.kind in DENIAL_REASONS:
            metrics.DENIALS.labels(service, DENIAL_REASONS[error.kind]).inc()
        elif error.kind in UPSTREAM_KINDS:
            metrics.UPSTREAM_ERRORS.labels(error.provider or "unknown", kind_label(error.kind)).inc()


def observe_response(request: Any, response: Any) -> None:
    """Counts what an answer going out tells (tokens, retries, fallbacks, provider time)."""
    if isinstance(response, router_pb2.CompleteResponse):
        record_route(request.model, response.route, response.usage, response.provider_ms)
    elif isinstance(response, router_pb2.StreamEvent) and response.WhichOneof("event") == "end":
        end = response.end
        record_route(request.model, end.route, end.usage, end.provider_ms, end.time_to_first_byte_ms,
                     end.error if end.HasField("error") else None)


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Records every unary and server-streaming RPC of ``service`` (e.g. ``"auth"``)."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None and inspect.iscoroutinefunction(handler.unary_unary):
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler

    def _finish(self, method: str, started: float, context: grpc.aio.ServicerContext,
                failed: grpc.StatusCode | None) -> None:
        """``failed``: the code to count when the handler did not set one (None: it succeeded)."""
        code = context.code() or failed or grpc.StatusCode.OK
        record_call(self.service, method, started, code, _typed_error(context) if code != grpc.StatusCode.OK else None)

    def _unary(self, method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metrics.RPC_INFLIGHT.add((self.service, method), 1)
            started = time.perf_counter()
            failed: grpc.StatusCode | None = grpc.StatusCode.UNKNOWN
            try:
                response = await behavior(request, context)
                failed = None
            except asyncio.CancelledError:
                failed = grpc.StatusCode.CANCELLED
                raise
            finally:
                self._finish(method, started, context, failed)
            observe_response(request, response)
            return response

        return observed

    def _stream(self, method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def observed(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            metrics.RPC_INFLIGHT.add((self.service, method), 1)
            started = time.perf_counter()
            failed: grpc.StatusCode | None = grpc.StatusCode.UNKNOWN
            try:
                async for response in behavior(request, context):
                    observe_response(request, response)
                    yield response
                failed = None
            except (asyncio.CancelledError, GeneratorExit):
                failed = grpc.StatusCode.CANCELLED
                raise
            finally:
                self._finish(method, started, context, failed)

        return observed
