"""A gRPC server interceptor that records every RPC of a service, with no servicer edits.

For each RPC: count by status code, time in the handler, in-flight gauge, and —
from the typed ``switchboard.v1.Error`` a servicer attaches when it refuses —
policy denials (rate limits, budgets, bad keys). A service may also hand it an
``observe`` function that reads each answer going out (the router counts tokens,
retries and provider latency from its answers: see ``switchboard_router.route_metrics``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from switchboard.v1 import common_pb2
from switchboard_common import metrics
from switchboard_common.errors import ERROR_METADATA_KEY

Kind = common_pb2.ErrorKind
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

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
        return Kind.Name(kind).removeprefix("ERROR_KIND_").lower()
    except ValueError:
        return "unknown"


def _typed_error(context: grpc.aio.ServicerContext[Any, Any]) -> common_pb2.Error | None:
    for key, value in context.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            try:
                return common_pb2.Error.FromString(value)
            except DecodeError:  # a malformed detail must not break the RPC
                return None
    return None


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


#: Reads one answer going out: (the RPC's request, the answer or one streamed message).
Observe = Callable[[Any, Any], None]


def _ignore(request: Any, response: Any) -> None:
    return None


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Records every unary and server-streaming RPC of ``service`` (e.g. ``"auth"``), and hands every answer going
    out to ``observe``."""

    def __init__(self, service: str, observe: Observe | None = None) -> None:
        self.service = service
        self.observe = observe or _ignore

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
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

    def _finish(self, method: str, started: float, context: grpc.aio.ServicerContext[Any, Any],
                failed: grpc.StatusCode | None) -> None:
        """``failed``: the code to count when the handler did not set one (None: it succeeded)."""
        code = context.code() or failed or grpc.StatusCode.OK
        record_call(self.service, method, started, code, _typed_error(context) if code != grpc.StatusCode.OK else None)

    def _unary(self, method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
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
            self.observe(request, response)
            return response

        return observed

    def _stream(self, method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            metrics.RPC_INFLIGHT.add((self.service, method), 1)
            started = time.perf_counter()
            failed: grpc.StatusCode | None = grpc.StatusCode.UNKNOWN
            try:
                async for response in behavior(request, context):
                    self.observe(request, response)
                    yield response
                failed = None
            except (asyncio.CancelledError, GeneratorExit):
                failed = grpc.StatusCode.CANCELLED
                raise
            finally:
                self._finish(method, started, context, failed)

        return observed
