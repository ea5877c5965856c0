"""Orchestration of one request across the services: authorize, route, settle.

Routes of every dialect call this; it knows nothing about HTTP shapes. Its
calls translate gRPC failures into :class:`ServiceError` naming the service,
so a dead auth, router or billing becomes a 503 that says which one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import orjson

from switchboard.v1 import auth_pb2, billing_pb2, common_pb2, router_pb2
from switchboard_common import http_metrics
from switchboard_common.errors import Kind, ServiceError, from_rpc_error
from switchboard_facade import budget
from switchboard_facade.clients import Peers
from switchboard_facade.keycache import KeyCache, has_rate_limits
from switchboard_facade.leases import BudgetLeases
from switchboard_facade.limit_leases import LimitLeases
from switchboard_facade.outbox import Outbox
from switchboard_facade.privacy_tier import custody_path, pii_header
from switchboard_facade.ratelimit import Releaser, rate_limit_headers
from switchboard_facade.request_id import new_request_id as new_request_id  # re-exported for the routes
from switchboard_facade.router_exchange import ExchangeUnavailable
from switchboard_facade.settings import FacadeSettings

#: Refusals that unused leased units of the key may have caused.
_RATE_LIMIT_REFUSALS = frozenset({"rpm_limit_exceeded", "tpm_limit_exceeded"})


@dataclass(slots=True)
class Call:
    """One client request on its way through the gateway."""

    request_id: str
    model: str
    body: dict[str, Any]
    stream: bool
    key: auth_pb2.KeyContext = field(default_factory=auth_pb2.KeyContext)
    started: float = field(default_factory=time.perf_counter)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    estimated_prompt_tokens: int = 0
    #: Size of the client's body in bytes (bounds the prompt's tokens for budget reservations).
    body_bytes: int = 0
    privacy_tier: str = ""
    # The tier the client asked for (header or body); the router combines it with the key's pin.
    requested_privacy_tier: str = ""
    #: Auth's answer (rate-limit admission and states), or the like made under a rate-limit lease; released
    #: when the request ends.
    authorization: auth_pb2.AuthorizeResponse | None = None
    #: Billing's answer to the reserve step (None: billing unreachable and no budget applies).
    budget: billing_pb2.ReserveResponse | None = None
    #: The budget lease the request took a unit of ("" when it was reserved alone), and that unit's micro-dollars.
    lease_id: str = ""
    lease_unit_micros: int = 0


def estimate_prompt_tokens(raw_size: int) -> int:
    """A cheap upper-leaning estimate (about four bytes a token) used for admission."""
    return max(1, raw_size // 4)


class Gateway:
    def __init__(self, settings: FacadeSettings, peers: Peers, outbox: Outbox) -> None:
        self.settings = settings
        self.peers = peers
        self.outbox = outbox
        self.releaser = Releaser(peers.auth, settings.service_timeout_seconds)
        self.limit_leases = LimitLeases(self.releaser, settings.rate_lease_units,
                                        use_seconds=settings.rate_lease_seconds)
        self.keycache = KeyCache(peers.auth, settings.key_cache_ttl_seconds, on_change=self.limit_leases.changed)
        self.servable_models = budget.ServableModels()
        self.leases = BudgetLeases(peers.billing, settings.service_timeout_seconds, settings.budget_lease_units,
                                   use_seconds=settings.budget_lease_seconds)

    # -- auth ------------------------------------------------------------------------------

    async def authorize(self, api_key: str, call: Call | None = None, verify_only: bool = False) -> auth_pb2.KeyContext:
        """Verifies the key and, for a call, admits it against its rate limits; raises ServiceError.

        A cached key without rate limits needs no admission; one with rate limits is admitted here under a
        rate-limit lease when this facade holds one that fits (see limit_leases), else by auth, whose
        Authorize then also asks for a lease."""
        cached = self.keycache.lookup(api_key)
        if cached is not None and (call is None or verify_only or not has_rate_limits(cached)):
            if call is not None:
                call.key = cached
                call.privacy_tier = cached.privacy_tier
            return cached
        if call is None or verify_only:
            return await self._authorize_rpc(api_key, call, verify_only, ask=False)
        leases = self.limit_leases
        if cached is not None:
            if self._take_lease(cached, call):
                return cached
            if leases.may_ask(cached):
                async with leases.lock(cached.key_id):  # one ask per key; the others wait for its lease
                    if self._take_lease(cached, call):
                        return cached
                    if leases.may_ask(cached):
                        return await self._admit(api_key, call, cached, ask=True)
        return await self._admit(api_key, call, cached,
                                 ask=cached is None and self.keycache.live and leases.may_ask(None))

    def _take_lease(self, cached: auth_pb2.KeyContext, call: Call) -> bool:
        admitted = self.limit_leases.take(cached, call.request_id, call.estimated_prompt_tokens)
        if admitted is None:
            return False
        http_metrics.note(key_alias=cached.key_alias, team_id=cached.team_id)
        call.key = cached
        call.privacy_tier = cached.privacy_tier
        call.authorization = admitted
        return True

    async def _admit(self, api_key: str, call: Call, cached: auth_pb2.KeyContext | None,
                     ask: bool) -> auth_pb2.KeyContext:
        """Admission by auth. A rate-limit refusal while this facade holds unused leased units of the key (or its
        team) hands them back and asks once more, so that idle slices never cause a denial here."""
        try:
            return await self._authorize_rpc(api_key, call, False, ask)
        except ServiceError as err:
            if err.error.code not in _RATE_LIMIT_REFUSALS:
                raise
            known = cached or self.keycache.peek(api_key)
            if known is None:
                raise
            self.limit_leases.refused(known.key_id)
            if not await self.limit_leases.return_for(known.key_id, known.team_id):
                raise
        return await self._authorize_rpc(api_key, call, False, ask=False)

    async def _authorize_rpc(self, api_key: str, call: Call | None, verify_only: bool,
                             ask: bool) -> auth_pb2.KeyContext:
        generation = self.keycache.generation
        request = auth_pb2.AuthorizeRequest(api_key=api_key, verify_only=verify_only)
        if call is not None:
            request.model = call.model
            request.request_id = call.request_id
            request.estimated_prompt_tokens = call.estimated_prompt_tokens
            if ask:
                cached = self.keycache.peek(api_key)
                request.lease_ask.CopyFrom(self.limit_leases.ask(cached.key_id if cached is not None else "",
                                                                 call.estimated_prompt_tokens))
        asked_at = time.monotonic()
        try:
            response = await self.peers.auth.Authorize(request, timeout=self.settings.service_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "auth") from None
        http_metrics.note(key_alias=response.key.key_alias, team_id=response.key.team_id)
        if call is not None:
            call.key = response.key
            call.privacy_tier = response.key.privacy_tier
            call.authorization = response
        self.keycache.store(api_key, response.key, generation)
        if ask:
            # A lease is used only while the key's verification is live in the cache: not if a change raced.
            self.limit_leases.granted(response, asked_at,
                                      usable=self.keycache.live and generation == self.keycache.generation)
        return response.key

    async def admin(self, method: str, request: Any) -> Any:
        try:
            answer = await getattr(self.peers.auth, method)(request, timeout=self.settings.service_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "auth") from None
        if not method.startswith(("Get", "List")):
            # Read-your-writes on this facade: don't wait for auth's push to drop what a change made stale.
            # Only after a change was made: a refused call (no credential, bad input) leaves the cache alone.
            self.keycache.apply(auth_pb2.Invalidation(everything=True))
        return answer

    # -- router ----------------------------------------------------------------------------

    def _router_request(self, call: Call) -> router_pb2.CompleteRequest:
        key = call.key
        return router_pb2.CompleteRequest(
            request_id=call.request_id,
            model=call.model,
            body=orjson.dumps(call.body),
            constraints=router_pb2.RoutingConstraints(allowed_models=key.models, privacy_tier=call.privacy_tier,
                                                      pii_policy=key.pii_policy,
                                                      requested_privacy_tier=call.requested_privacy_tier),
            provider_credentials=key.provider_credentials,
            key_id=key.key_id,
            key_alias=key.key_alias,
            # Streams: the first chunks may ride in the route's message (see AfterRoute).
            accepts_first_chunks=call.stream,
        )

    async def complete(self, call: Call) -> router_pb2.CompleteResponse:
        return await self._answer(call, "complete")

    async def embed(self, call: Call) -> router_pb2.CompleteResponse:
        return await self._answer(call, "embed")

    async def _answer(self, call: Call, kind: str) -> router_pb2.CompleteResponse:
        """Complete or Embed: over the router exchange when there is one, else (or when it cannot open) unary."""
        request = self._router_request(call)
        exchange = self.peers.router_exchange
        if exchange is not None and exchange.usable():
            try:
                return await exchange.complete(request, kind)
            except ExchangeUnavailable:
                pass
        rpc = self.peers.router.Complete if kind == "complete" else self.peers.router.Embed
        try:
            return await rpc(request, timeout=self.settings.completion_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None

    async def stream(self, call: Call) -> tuple[router_pb2.RouteInfo, AsyncIterator[router_pb2.StreamEvent],
                                                StreamHandle]:
        """Starts a stream and waits for its route (the provider's first byte), so that
        failures before the first byte are still plain HTTP errors. Returns the route, the
        following events and the handle whose ``cancel()`` stops the stream (idempotent)."""
        request = self._router_request(call)
        exchange = self.peers.router_exchange
        if exchange is not None and exchange.usable():
            try:
                first, exchanged = await exchange.stream(request)
            except ExchangeUnavailable:
                pass
            except StopAsyncIteration:
                raise _ended_before_start() from None
            else:
                return first.route, after_route(first, exchanged), exchanged
        rpc = self.peers.router.StreamComplete(request, timeout=self.settings.completion_timeout_seconds)
        events = rpc.__aiter__()
        try:
            first = await events.__anext__()
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None
        except StopAsyncIteration:
            raise _ended_before_start() from None
        return first.route, after_route(first, events), rpc

    async def list_models(self, key: auth_pb2.KeyContext) -> router_pb2.ListModelsResponse:
        try:
            return await self.peers.router.ListModels(
                router_pb2.ListModelsRequest(constraints=router_pb2.RoutingConstraints(allowed_models=key.models)),
                timeout=self.settings.service_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "router") from None

    # -- billing ---------------------------------------------------------------------------

    async def reserve(self, call: Call, body_bytes: int, output_tokens: int | None = None) -> None:
        """Holds the request's worst-case cost against its budgets (see budget.py); raises ServiceError."""
        if not budget.has_budget(call.key) and self.servable_models.lookup(
                self.peers.billing, call.model, self.settings.service_timeout_seconds):
            return  # nothing to hold, nothing to refuse
        request = budget.reserve_request(request_id=call.request_id, key=call.key, model=call.model, body=call.body,
                                         body_bytes=body_bytes,
                                         completion_timeout=self.settings.completion_timeout_seconds)
        if output_tokens is not None:
            request.max_output_tokens = output_tokens
        if self.leases.enabled and budget.has_budget(call.key):
            taken = await self.leases.take(request)
            if taken is not None:
                call.lease_id, call.lease_unit_micros, call.budget = taken
                return
        try:
            call.budget = await budget.reserve(self.peers.billing, request, call.key,
                                               self.settings.service_timeout_seconds)
        except ServiceError as err:
            # Refused while this facade holds unused leased budget of the key: give it back and ask once more.
            if err.error.code != "budget_exceeded" or not await self.leases.return_key(call.key.key_id):
                raise
            call.budget = await budget.reserve(self.peers.billing, request, call.key,
                                               self.settings.service_timeout_seconds)

    def settle(self, call: Call, *, usage: common_pb2.Usage | None, route: router_pb2.RouteInfo | None,
               status: str, http_status: int, error_code: str = "", ttft_ms: float = 0.0) -> None:
        """Hands the finished request's usage to the outbox (durable, never blocks on billing)."""
        event = billing_pb2.UsageEvent(
            request_id=call.request_id,
            key_id=call.key.key_id,
            key_alias=call.key.key_alias,
            team_id=call.key.team_id,
            model=call.model,
            status=status,
            http_status=http_status,
            latency_ms=(time.perf_counter() - call.started) * 1000,
            ttft_ms=ttft_ms,
            started_at_ms=call.started_ms,
            stream=call.stream,
            error_code=error_code,
            privacy_tier=(route.privacy_tier if route is not None and route.privacy_tier else call.privacy_tier),
            custody_path=custody_path(route),
            pii=pii_header(call.key.pii_policy, route),
            pii_policy=call.key.pii_policy or "off",
            # Without a route the router never resolved the tier: record the key's pin.
            required_privacy_tier=route.required_privacy_tier if route is not None else call.privacy_tier,
        )
        if usage is not None:
            event.usage.CopyFrom(usage)
        if call.lease_id:
            event.lease_id = call.lease_id
            event.lease_unit_micros = call.lease_unit_micros
        if route is not None:
            event.deployment_id = route.deployment_id
            event.provider = route.provider
            event.upstream_model = route.upstream_model
            event.jurisdiction = route.jurisdiction
            event.byok = route.byok
        self.outbox.put(event)
        self.release_limits(call, usage)

    def release_limits(self, call: Call, usage: common_pb2.Usage | None = None) -> None:
        """Frees the request's parallel slot and corrects its TPM count (in the background).

        ``settle`` does it; a path that ends an authorized request without settling must call it."""
        if call.authorization is not None and call.authorization.HasField("admission"):
            self.releaser.release(call.authorization, usage)
            call.authorization.ClearField("admission")  # a second release is a no-op

    async def deliver_usage(self, events: list[billing_pb2.UsageEvent]) -> None:
        """The outbox's delivery function."""
        await self.peers.billing.SettleBatch(billing_pb2.SettleBatchRequest(events=events),
                                             timeout=self.settings.service_timeout_seconds)

    async def list_usage(self, request: billing_pb2.ListUsageRequest) -> billing_pb2.ListUsageResponse:
        try:
            return await self.peers.billing.ListUsage(request, timeout=self.settings.service_timeout_seconds)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "billing") from None


class StreamHandle(Protocol):
    """What stops a started stream: a gRPC call, or a call on the router exchange."""

    def cancel(self) -> Any: ...


def _ended_before_start() -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_INTERNAL, "The router ended the stream before it started.",
                        code="router_error", http_status=503)


class AfterRoute:
    """The events that follow a stream's route event, beginning with the chunks it carried.

    The router puts the chunks that came with the provider's first byte into the
    route's message (``first_chunks``), one message less before the first token;
    here they become the ``chunks`` event the relay expects next."""

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


def route_headers(call: Call, route: router_pb2.RouteInfo) -> dict[str, str]:
    """Custody and routing facts of the answer."""
    return {
        "x-request-id": call.request_id,
        "x-switchboard-request-id": call.request_id,
        "x-switchboard-model": route.served_model or call.model,
        "x-switchboard-deployment": route.deployment_id,
        "x-switchboard-provider": route.provider,
        "x-switchboard-resolved-jurisdiction": route.jurisdiction or "unspecified",
        "x-switchboard-privacy-tier": route.privacy_tier,
        "x-switchboard-custody-path": custody_path(route),
        "x-switchboard-pii": pii_header(call.key.pii_policy, route),
        "x-switchboard-attempts": str(route.attempts),
        **rate_limit_headers(call.authorization),
    }


def call_headers(call: Call) -> dict[str, str]:
    """Headers of an answer that did not reach a provider (errors after authorization)."""
    return {"x-request-id": call.request_id, **rate_limit_headers(call.authorization)}


def error_event_payload(error: common_pb2.Error) -> bytes:
    """The in-stream error event OpenAI clients understand (the SDK raises on it)."""
    return orjson.dumps({"error": {"message": error.message, "type": "upstream_error",
                                   "param": None, "code": error.code or "upstream_error"}})
