"""A small Python client for calling the router directly over gRPC.

Internal services that need a completion without going through HTTP (and
without a virtual key: they are trusted inside the cluster network policy)
use this::

    async with RouterClient("router:50053") as router:
        reply = await router.complete("gpt-4o-mini", [{"role": "user", "content": "hi"}])
        print(reply.body["choices"][0]["message"]["content"], reply.usage.total_tokens)
        async for chunk in router.stream("gpt-4o-mini", [{"role": "user", "content": "hi"}]):
            print(chunk["choices"][0]["delta"].get("content", ""), end="")

Errors arrive as :class:`switchboard_common.errors.ServiceError` with the typed
kind, message and code the router decided.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import orjson

from switchboard.v1 import common_pb2, router_pb2, router_pb2_grpc
from switchboard_common.channels import open_channel
from switchboard_common.errors import ServiceError, from_rpc_error


@dataclass(slots=True)
class Completion:
    body: dict[str, Any]
    usage: common_pb2.Usage
    route: router_pb2.RouteInfo


class RouterClient:
    def __init__(self, address: str, *, privacy_tier: str = "", allowed_models: Sequence[str] = (),
                 timeout: float = 600.0) -> None:
        self._channel = open_channel(address)
        self._stub = router_pb2_grpc.RouterStub(self._channel)
        self._constraints = router_pb2.RoutingConstraints(allowed_models=list(allowed_models),
                                                          privacy_tier=privacy_tier)
        self.timeout = timeout
        #: Usage of the last finished stream (streams report it at their end).
        self.last_stream_usage: common_pb2.Usage | None = None

    async def __aenter__(self) -> RouterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()

    def _request(self, model: str, messages: list[dict[str, Any]], extra: dict[str, Any]) -> router_pb2.CompleteRequest:
        body = {"model": model, "messages": messages, **extra}
        return router_pb2.CompleteRequest(request_id="req_" + secrets.token_hex(12), model=model,
                                          body=orjson.dumps(body), constraints=self._constraints)

    async def complete(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> Completion:
        """One whole chat completion; ``extra`` carries any OpenAI field (tools, temperature, ...)."""
        try:
            reply = await self._stub.Complete(self._request(model, messages, extra), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None
        return Completion(orjson.loads(reply.body), reply.usage, reply.route)

    async def stream(self, model: str, messages: list[dict[str, Any]], **extra: Any) -> AsyncIterator[dict[str, Any]]:
        """OpenAI chat.completion.chunk objects as the provider sends them."""
        call = self._stub.StreamComplete(self._request(model, messages, {**extra, "stream": True}),
                                         timeout=self.timeout)
        try:
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "chunks":
                    for chunk in event.chunks.chunks:
                        yield orjson.loads(chunk)
                elif kind == "end":
                    self.last_stream_usage = event.end.usage
                    if event.end.HasField("error"):
                        raise ServiceError.from_proto(event.end.error)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None
        finally:
            call.cancel()
