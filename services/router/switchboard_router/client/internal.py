"""The Python client internal services use to call the router directly over gRPC, with a virtual key.

An internal service is a key holder like any HTTP caller: its key's models,
rate limits, budgets, privacy tier and PII policy apply, and every call is in
the ledger with ``source: grpc``::

    async with SwitchboardRouter("router:50053", api_key=os.environ["SWITCHBOARD_API_KEY"]) as router:
        reply = await router.complete("gpt-4o-mini", [{"role": "user", "content": "hi"}])
        print(reply.text, reply.usage.total_tokens)
        async for chunk in router.stream("gpt-4o-mini", [{"role": "user", "content": "hi"}]):
            print(chunk["choices"][0]["delta"].get("content", ""), end="")
        names = [m.name for m in await router.list_models()]

Errors arrive as :class:`switchboard_common.errors.ServiceError` with the typed
kind, code and message the gateway decided (``err.kind``, ``err.error.code``,
``err.error.retry_after_seconds``). Calls that could not reach a router
(UNAVAILABLE before anything was sent), and calls the router refused because a
service it needs was unavailable (kind SERVICE_UNAVAILABLE: refused at admission,
before any provider call and with nothing held), are retried with backoff, a few
times within the deadline, each attempt under a new request id (a refused
attempt may have its own ledger row, which a retry under the same id would
hide); nothing that may have reached the provider is ever sent twice.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from switchboard.v1 import common_pb2, router_pb2
from switchboard_common.channels import open_channel
from switchboard_common.errors import ServiceError
from switchboard_router.client.router_client import RouterClient
from switchboard_router.operations import Operation

T = TypeVar("T")

#: The code of the error a call gets when the router could not be reached (nothing was sent).
_UNREACHABLE = "router_unavailable"


def retryable(err: ServiceError) -> bool:
    """Whether a call that failed so may be sent again: the router was not reached, or it refused the call at
    admission because a service it needs was unavailable — before anything reached a provider."""
    return err.error.code == _UNREACHABLE or err.kind == common_pb2.ERROR_KIND_SERVICE_UNAVAILABLE


@dataclass(slots=True)
class Completion:
    """A whole chat completion: the OpenAI ``chat.completion`` body, its usage and the route that served it."""

    body: dict[str, Any]
    usage: common_pb2.Usage
    route: router_pb2.RouteInfo

    @property
    def text(self) -> str:
        """The first choice's message content ("" when it has none, e.g. only tool calls)."""
        choices = self.body.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")


class SwitchboardRouter:
    """A connection to the router for one virtual key."""

    def __init__(self, address: str, *, api_key: str, timeout: float = 600.0, retries: int = 3,
                 privacy_tier: str = "", jurisdictions: Sequence[str] = (), exchange_streams: int = 1) -> None:
        if not api_key:
            raise ValueError("api_key is required: the virtual key this service calls the router with")
        self._channel = open_channel(address)
        self._client = RouterClient(self._channel, metadata=(("authorization", f"Bearer {api_key}"),),
                                    exchange_streams=exchange_streams, timeout_seconds=timeout)
        #: Tier to ask for (it may only tighten the key's own), and jurisdictions (they may only narrow the key's).
        self.privacy_tier = privacy_tier
        self.jurisdictions = list(jurisdictions)
        self.timeout = timeout
        self.retries = retries
        #: Usage of the last finished stream (streams report it at their end).
        self.last_stream_usage: common_pb2.Usage | None = None

    async def __aenter__(self) -> SwitchboardRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.close()
        await self._channel.close()

    def _request(self, model: str, body: dict[str, Any]) -> router_pb2.CompleteRequest:
        return router_pb2.CompleteRequest(
            request_id="req_" + secrets.token_hex(12), model=model, body=orjson.dumps({"model": model, **body}),
            constraints=self._asked(), accepts_first_chunks=True)

    def _asked(self) -> router_pb2.RoutingConstraints:
        return router_pb2.RoutingConstraints(requested_privacy_tier=self.privacy_tier,
                                             requested_jurisdictions=self.jurisdictions)

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` (which builds its request, so each attempt has its own request id), again after a backoff while
        the router cannot be reached or a service it needs is unavailable (nothing was served or held then)."""
        for attempt in range(self.retries + 1):
            try:
                return await call()
            except ServiceError as err:
                if not retryable(err) or attempt == self.retries:
                    raise
            await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt) * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")

    async def complete(self, model: str, messages: Sequence[dict[str, Any]], **extra: Any) -> Completion:
        """One whole chat completion; ``extra`` carries any OpenAI field (tools, temperature, max_tokens, ...)."""
        reply = await self._retrying(lambda: self._client.answer(
            self._request(model, {"messages": list(messages), **extra})))
        return Completion(orjson.loads(reply.body), reply.usage, reply.route)

    async def embed(self, model: str, input: str | Sequence[str], **extra: Any) -> dict[str, Any]:
        """OpenAI embeddings list for ``input``."""
        reply = await self._retrying(lambda: self._client.answer(
            self._request(model, {"input": input, **extra}), Operation.EMBED))
        return orjson.loads(reply.body)  # type: ignore[no-any-return]  # the router's embeddings list, a JSON object

    async def stream(self, model: str, messages: Sequence[dict[str, Any]],
                     **extra: Any) -> AsyncIterator[dict[str, Any]]:
        """OpenAI ``chat.completion.chunk`` objects as the provider sends them; raises ServiceError in-band."""
        body = {"messages": list(messages), **extra, "stream": True}
        _route, events, handle = await self._retrying(lambda: self._client.stream(self._request(model, body)))
        try:
            async for event in events:
                kind = event.WhichOneof("event")
                if kind == "chunks":
                    for chunk in event.chunks.chunks:
                        yield orjson.loads(chunk)
                elif kind == "end":
                    self.last_stream_usage = event.end.usage
                    if event.end.HasField("error"):
                        raise ServiceError.from_proto(event.end.error)
        finally:
            handle.cancel()

    async def list_models(self) -> list[router_pb2.ModelInfo]:
        """The models this key can be served by (under the tier and jurisdictions asked), with their deployments."""
        answer = await self._retrying(lambda: self._client.list_models(self._asked()))
        return list(answer.models)
