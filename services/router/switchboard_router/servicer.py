"""The Router gRPC servicer: protobuf in, engine call, protobuf out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import orjson

from switchboard.v1 import common_pb2, router_pb2, router_pb2_grpc
from switchboard_common.errors import Kind, ServiceError, abort
from switchboard_router import request_id
from switchboard_router.engine import (
    Attempted,
    Engine,
    StreamChunks,
    StreamFinished,
    StreamStarted,
)
from switchboard_router.exchange import ExchangeHub
from switchboard_router.privacy_guard import PrivacyGuard
from switchboard_router.providers.base import TokenUsage
from switchboard_router.routing.access import allowed_models

log = logging.getLogger(__name__)


def usage_to_proto(usage: TokenUsage) -> common_pb2.Usage:
    return common_pb2.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cached_prompt_tokens=usage.cached_prompt_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        reported_by_provider=usage.reported_by_provider,
    )


def route_to_proto(route: Attempted) -> router_pb2.RouteInfo:
    d = route.deployment
    return router_pb2.RouteInfo(
        deployment_id=d.id,
        provider=d.provider,
        upstream_model=d.model,
        jurisdiction=d.jurisdiction,
        privacy_tier=d.privacy_tier,
        attempts=route.attempts,
        served_model=route.served_model,
    )


def _parse_body(request: router_pb2.CompleteRequest) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "body must be a JSON object")
    if not request.model:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "model is required", param="model")
    return body


_DONE = object()
#: Stream items read ahead of the facade at most (beyond it, the provider waits: backpressure).
_AHEAD = 256


@dataclass(frozen=True, slots=True)
class StartedWithChunks:
    """The route of a stream together with the chunks that came with the provider's first byte."""

    started: StreamStarted
    chunks: list[bytes]


def _ready_chunks(queue: asyncio.Queue[Any], merged: list[bytes]) -> tuple[list[bytes], Any]:
    """Appends the chunk batches waiting in ``queue`` to ``merged``; returns it and the first other item taken."""
    while not queue.empty():
        following = queue.get_nowait()
        if not isinstance(following, StreamChunks):
            return merged, following
        merged.extend(following.chunks)
    return merged, None


async def coalesced(items: AsyncIterator[Any], first_chunks: bool = False) -> AsyncIterator[Any]:
    """``items``, with the chunk batches that are ready at the same moment merged into one.

    A task reads the provider's stream while the caller writes the previous
    message to the facade, so chunks that arrive during a write go out together
    in the next message (one gRPC message instead of one each); the first chunk
    is never held back. With ``first_chunks``, chunks already waiting behind the
    route come with it as one :class:`StartedWithChunks`. Errors of ``items`` are
    raised here, in order.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=_AHEAD)

    async def pump() -> None:
        try:
            async with contextlib.aclosing(items):  # type: ignore[type-var]
                async for item in items:
                    await queue.put(item)
        except Exception as exc:  # handed to the caller, in order
            await queue.put(exc)
        finally:
            await queue.put(_DONE)

    task = asyncio.get_running_loop().create_task(pump())
    held: Any = None
    try:
        while True:
            item = held if held is not None else await queue.get()
            held = None
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            if isinstance(item, StreamChunks) and not queue.empty():
                merged, held = _ready_chunks(queue, list(item.chunks))
                item = StreamChunks(merged)
            elif isinstance(item, StreamStarted) and first_chunks and not queue.empty():
                merged, held = _ready_chunks(queue, [])
                if merged:
                    item = StartedWithChunks(item, merged)
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.guard = PrivacyGuard(engine)
        self.exchanges = ExchangeHub(self)

    # The calls themselves, shared by the unary RPCs and the Exchange stream: they raise ServiceError.

    async def answer(self, request: router_pb2.CompleteRequest, operation: str) -> router_pb2.CompleteResponse:
        """One whole completion (``operation`` "chat") or embeddings answer ("embeddings")."""
        request_id.bind(request.request_id)
        prepared = self.guard.prepare(_parse_body(request), request.constraints, operation,
                                      request.provider_credentials)
        result = await self.guard.complete(request.model, prepared, operation)
        return router_pb2.CompleteResponse(
            body=orjson.dumps(result.body),
            usage=usage_to_proto(result.usage),
            route=prepared.annotate(route_to_proto(result.route)),
            provider_ms=result.provider_ms,
        )

    async def events(self, request: router_pb2.CompleteRequest) -> AsyncIterator[router_pb2.StreamEvent]:
        """The events of one streamed completion: RouteInfo, chunk batches, one StreamEnd."""
        request_id.bind(request.request_id)
        body = _parse_body(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        prepared = self.guard.prepare(body, request.constraints, credentials=request.provider_credentials)
        stream = self.guard.stream(request.model, prepared, include_usage)
        async for item in coalesced(stream, first_chunks=request.accepts_first_chunks):
            if isinstance(item, StartedWithChunks):
                route = prepared.annotate(route_to_proto(item.started.route))
                route.provider_ttfb_ms = item.started.ttfb_ms
                yield router_pb2.StreamEvent(route=route, first_chunks=router_pb2.ChunkBatch(chunks=item.chunks))
            elif isinstance(item, StreamChunks):
                yield router_pb2.StreamEvent(chunks=router_pb2.ChunkBatch(chunks=item.chunks))
            elif isinstance(item, StreamStarted):
                route = prepared.annotate(route_to_proto(item.route))
                route.provider_ttfb_ms = item.ttfb_ms
                yield router_pb2.StreamEvent(route=route)
            elif isinstance(item, StreamFinished):
                end = router_pb2.StreamEnd(
                    usage=usage_to_proto(item.usage),
                    provider_ms=item.provider_ms,
                    time_to_first_byte_ms=item.ttfb_ms,
                    route=prepared.annotate(route_to_proto(item.route)),
                )
                if item.error is not None:
                    end.error.CopyFrom(item.error.error)
                yield router_pb2.StreamEvent(end=end)

    # The RPCs.

    async def Complete(self, request: router_pb2.CompleteRequest,
                       context: grpc.aio.ServicerContext) -> router_pb2.CompleteResponse:
        return await self._unary(request, context, "chat")

    async def Embed(self, request: router_pb2.CompleteRequest,
                    context: grpc.aio.ServicerContext) -> router_pb2.CompleteResponse:
        return await self._unary(request, context, "embeddings")

    async def _unary(self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext,
                     operation: str) -> router_pb2.CompleteResponse:
        try:
            return await self.answer(request, operation)
        except ServiceError as err:
            await abort(context, err)
            raise AssertionError("unreachable") from None

    async def StreamComplete(self, request: router_pb2.CompleteRequest,
                             context: grpc.aio.ServicerContext) -> AsyncIterator[router_pb2.StreamEvent]:
        try:
            async for event in self.events(request):
                yield event
        except ServiceError as err:
            await abort(context, err)

    async def Exchange(self, requests: AsyncIterator[router_pb2.ExchangeRequest],
                       context: grpc.aio.ServicerContext) -> None:
        await self.exchanges.serve(requests, context)

    async def ListModels(self, request: router_pb2.ListModelsRequest,
                         context: grpc.aio.ServicerContext) -> router_pb2.ListModelsResponse:
        catalog = self.engine.catalog
        names = allowed_models(catalog.live_models(), list(request.constraints.allowed_models),
                               catalog.access_groups)
        out = router_pb2.ListModelsResponse()
        for name in names:
            entry = catalog.models[name]
            info = out.models.add(name=name, owned_by=entry.owned_by)
            for d in entry.deployments:
                info.deployments.add(
                    deployment_id=d.id, provider=d.provider, upstream_model=d.model, jurisdiction=d.jurisdiction,
                    privacy_tier=d.privacy_tier, health=self.engine.health.state(d.id),
                    context_window=d.context_window, max_output_tokens=d.max_output_tokens,
                )
        return out
