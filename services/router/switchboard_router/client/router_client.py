"""The client half of the router: completions, streams, embeddings and the model list, cheaply.

Calls go over the Exchange lanes (:mod:`~switchboard_router.client.exchange`)
when the router has them, else as unary RPCs; the contract is the same either
way (answers, typed errors, deadline, cancellation). The caller's credentials
— the facade's service token, or an internal service's virtual key — travel in
the metadata of every call. :mod:`~switchboard_router.client.internal` wraps
this class for internal services with JSON in and out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_common.errors import Kind, ServiceError, from_rpc_error
from switchboard_router.client.exchange import ExchangeUnavailable, RouterExchange
from switchboard_router.operations import Operation


class StreamHandle(Protocol):
    """What stops a started stream: a gRPC call, or a call on an Exchange lane."""

    def cancel(self) -> Any: ...


class RouterClient:
    def __init__(self, channel: grpc.aio.Channel, *, metadata: tuple[tuple[str, str], ...] = (),
                 exchange_streams: int = 8, timeout_seconds: float = 900.0, open_timeout_seconds: float = 5.0) -> None:
        self.stub = router_pb2_grpc.RouterStub(channel)
        self.metadata = metadata
        self.timeout_seconds = timeout_seconds
        self.open_timeout_seconds = open_timeout_seconds
        #: Calls multiplexed on a few streams; None: one unary gRPC call per completion.
        self.exchange = (RouterExchange(self.stub, exchange_streams, timeout_seconds, open_timeout_seconds,
                                        metadata) if exchange_streams > 0 else None)

    def caller_stopping(self) -> None:
        """The caller has begun to shut down: calls it cuts from now on are recorded by the router as cut by that
        shutdown (``caller_shutdown``), not by their clients (over unary calls the router cannot be told)."""
        if self.exchange is not None:
            self.exchange.caller_stopping()

    async def close(self) -> None:
        if self.exchange is not None:
            await self.exchange.close()

    async def answer(self, request: router_pb2.CompleteRequest,
                     operation: Operation = Operation.COMPLETE) -> router_pb2.CompleteResponse:
        """A whole answer (a completion, embeddings, a text completion, a moderation); raises ServiceError."""
        exchange = self.exchange
        if exchange is not None and exchange.usable():
            try:
                return await exchange.complete(request, operation.value)
            except ExchangeUnavailable:
                pass
        rpc = getattr(self.stub, operation.rpc)
        try:
            return await rpc(request, timeout=self.timeout_seconds, metadata=self.metadata)  # type: ignore[no-any-return]  # the stub's answer (untyped generated code)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None

    async def stream(self, request: router_pb2.CompleteRequest
                     ) -> tuple[router_pb2.RouteInfo, AsyncIterator[router_pb2.StreamEvent], StreamHandle]:
        """Starts a stream and waits for its route (the provider's first byte), so that failures before the first
        byte are still plain errors. Returns the route, the following events and the handle whose ``cancel()``
        stops the stream (idempotent). Raises ServiceError."""
        exchange = self.exchange
        if exchange is not None and exchange.usable():
            try:
                first, exchanged = await exchange.stream(request)
            except ExchangeUnavailable:
                pass
            except StopAsyncIteration:
                raise ended_before_start() from None
            else:
                return first.route, after_route(first, exchanged), exchanged
        rpc = self.stub.StreamComplete(request, timeout=self.timeout_seconds, metadata=self.metadata)
        events = rpc.__aiter__()
        try:
            first = await events.__anext__()
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None
        except StopAsyncIteration:
            raise ended_before_start() from None
        return first.route, after_route(first, events), rpc

    async def _catalog_call(self, rpc: Any, request: Any) -> Any:
        """A short call about the catalog; raises ServiceError."""
        try:
            return await rpc(request, timeout=self.open_timeout_seconds, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None

    async def list_models(self, constraints: router_pb2.RoutingConstraints | None = None,
                          include_wildcards: bool = False) -> router_pb2.ListModelsResponse:
        return await self._catalog_call(  # type: ignore[no-any-return]  # the stub's answer
            self.stub.ListModels,
            router_pb2.ListModelsRequest(constraints=constraints, include_wildcards=include_wildcards))

    async def describe_models(self, constraints: router_pb2.RoutingConstraints | None = None
                              ) -> router_pb2.DescribeModelsResponse:
        """Every configured model the caller may use, live or not, with each deployment's state and reason."""
        return await self._catalog_call(  # type: ignore[no-any-return]  # the stub's answer
            self.stub.DescribeModels, router_pb2.DescribeModelsRequest(constraints=constraints))


def ended_before_start() -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_INTERNAL, "The router ended the stream before it started.",
                        code="router_error", http_status=503)


class AfterRoute:
    """The events that follow a stream's route event, beginning with the chunks it carried.

    The router puts the chunks that came with the provider's first byte into the
    route's message (``first_chunks``), one message less before the first token;
    here they become the ``chunks`` event a reader expects next."""

    __slots__ = ("_first", "_events")

    def __init__(self, first: router_pb2.StreamEvent, events: AsyncIterator[router_pb2.StreamEvent]) -> None:
        self._first: router_pb2.StreamEvent | None = router_pb2.StreamEvent(chunks=first.first_chunks)
        self._events = events

    def __aiter__(self) -> AfterRoute:
        return self

    async def __anext__(self) -> router_pb2.StreamEvent:
        first, self._first = self._first, None
        if first is not None:
            return first
        return await self._events.__anext__()


def after_route(first: router_pb2.StreamEvent,
                events: AsyncIterator[router_pb2.StreamEvent]) -> AsyncIterator[router_pb2.StreamEvent]:
    """``events``, preceded by the chunks the route event carried, if any."""
    return AfterRoute(first, events) if first.HasField("first_chunks") else events
