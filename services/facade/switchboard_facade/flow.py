"""The one flow of a request, for every HTTP dialect: parse, admit, route, answer, give back.

Every hot route — OpenAI chat (``/v1``, ``/cursor``, the Azure path), the
Responses API, Anthropic Messages, embeddings, legacy completions, moderations —
is an :class:`Endpoint`: how its body becomes the router's body, and the
:class:`Dialect` that renders the router's answer for its client. The rest
lives here once:

1. the key is verified and the request admitted against its rate limits
   (``switchboard_auth.client``), then its cost held against its budgets
   (``switchboard_billing.client``) — the hold's output bound travels to the
   router, which enforces it;
2. the router serves it and settles its usage (it knows what the provider
   consumed, whenever the client goes away); this facade settles only the
   requests the router never answered;
3. the admission and the hold are given back, whatever happened.

A client that leaves before its answer cancels this flow where it waits (see
:func:`switchboard_facade.replies.unless_client_leaves`): the router's call is
cancelled with it, and the request is recorded ``cancelled`` (HTTP 499).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import orjson

from switchboard.v1 import common_pb2
from switchboard_auth.client import Admitted, KeyContext, resolve_model
from switchboard_billing.client import (
    CALLER_SHUTDOWN,
    CANCELLED,
    CLIENT_CLOSED_REQUEST,
    CLIENT_DISCONNECTED,
    Hold,
    UsageEvent,
    watched_budgets,
)
from switchboard_common import metrics
from switchboard_common.errors import ServiceError
from switchboard_common.per_object import PerObject
from switchboard_facade.budget_headers import budget_headers
from switchboard_facade.errors import anthropic_status_for, error_response, in_terms, status_for
from switchboard_facade.gateway import Gateway
from switchboard_facade.http_input import Incoming
from switchboard_facade.privacy_tier import (
    INSTANCE,
    JURISDICTION_FIELD,
    TIER_FIELD,
    custody_path,
    pii_header,
    take_requested_jurisdictions,
    take_requested_tier,
)
from switchboard_facade.replies import Reply, StreamReply
from switchboard_router.client import (
    CompleteRequest,
    Operation,
    Payer,
    RouteInfo,
    RoutingConstraints,
    StreamEvent,
    StreamHandle,
)
from switchboard_rules.custody import PII_HEADER
from switchboard_translate.error_terms import ErrorTerms
from switchboard_translate.generated_text import DeliveredText
from switchboard_translate.output_bound import requested_choices, requested_output_tokens
from switchboard_translate.prompt_bound import prompt_tokens_bound

#: Bytes per token of the cheap prompt estimate admission counts against TPM (about four a token).
BYTES_PER_TOKEN = 4
#: Codes of a router call that failed without the router's answer: it may never have taken the call.
_UNANSWERED = frozenset({"router_unavailable", "router_error"})


def estimate_prompt_tokens(raw_size: int) -> int:
    """A cheap upper-leaning estimate (about four bytes a token) used for admission."""
    return max(1, raw_size // BYTES_PER_TOKEN)


@dataclass(slots=True)
class Call:
    """One client request on its way through the gateway."""

    request_id: str
    model: str
    #: The router's body: OpenAI chat (or embeddings) JSON, every field the client sent kept.
    body: dict[str, Any]
    stream: bool
    operation: Operation = Operation.COMPLETE
    #: Size of the client's body in bytes (the admission's prompt estimate, and a bound of its tokens).
    body_bytes: int = 0
    #: The tier the client asked for (header or body); the router combines it with the key's pin.
    requested_privacy_tier: str = ""
    #: The jurisdictions the client asked for (header or body); the router narrows the key's set with them.
    requested_jurisdictions: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    admitted: Admitted | None = None
    hold: Hold | None = None
    #: The models the key may use for this call (its list, plus the model an alias it lists stands for).
    allowed_models: list[str] = field(default_factory=list)
    #: The client's own bytes when they are the router's body (see :attr:`Parsed.as_sent`): sent as they came.
    raw_body: bytes | None = None

    @property
    def key(self) -> KeyContext:
        return self.admitted.key if self.admitted is not None else KeyContext()


class StreamEncoder(Protocol):
    """Frames one stream for one client: chunk batches as they come, then the end."""

    def chunks(self, chunks: Sequence[bytes]) -> bytes:
        """SSE bytes for a batch of OpenAI ``chat.completion.chunk`` JSON documents (may be empty)."""

    def end(self, usage: dict[str, Any] | None, error: common_pb2.Error | None) -> bytes:
        """The closing SSE bytes: ``error`` is set when the stream failed after it began; ``usage`` (an OpenAI
        usage object) is what the stream was billed, None when that is not known here. A failed stream tells
        its client the usage too, where its dialect has a place for it, before the error."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one HTTP dialect renders the router's answers."""

    #: Error body shape: "openai" or "anthropic" (see :func:`errors.error_response`).
    errors: str
    #: A whole answer: (the router's JSON, the usage it billed) → the client's body.
    render: Callable[[bytes, common_pb2.Usage | None], bytes]
    #: A fresh encoder for each stream (None: the dialect has no streams).
    stream_encoder: Callable[[], StreamEncoder] | None = None
    #: Headers this dialect adds to every answer (given the request id).
    extra_headers: Callable[[str], Mapping[str, str]] = field(default=lambda request_id: {})
    #: How an error about the router's (chat) body names the client's own fields (None: the client spoke chat).
    terms: ErrorTerms | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """What an endpoint made of a client's body: the router's body and the dialect of the answer."""

    body: dict[str, Any]
    dialect: Dialect
    operation: Operation = Operation.COMPLETE
    #: The router's body is the JSON the client sent, unchanged (an OpenAI chat body already in the canonical
    #: shape, as SDKs and Cursor send it): the bytes it came in cross to the router as they are, so a
    #: 100 KB conversation is not serialised again only to be parsed there.
    as_sent: bool = False


class Endpoint(Protocol):
    """One HTTP dialect's door: its error shape, and how its body becomes the router's."""

    @property
    def errors(self) -> str: ...

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        """The router's body and the answer's dialect; raises the 400 ServiceError of a bad body."""


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


async def serve(gw: Gateway, incoming: Incoming, endpoint: Endpoint) -> Reply:
    """A hot route's whole work: parse in the endpoint's dialect, admit, and answer."""
    try:
        body, size = incoming.json_object()
        takes_fields = TIER_FIELD in body or JURISDICTION_FIELD in body
        requested_tier = take_requested_tier(incoming.headers, body)
        requested_places = take_requested_jurisdictions(incoming.headers, body)
        parsed = endpoint.parse(body, incoming)
    except ServiceError as err:  # the endpoint's own checks: in its client's terms already
        return error_response(err, {"x-request-id": incoming.request_id}, dialect=endpoint.errors)
    call = Call(incoming.request_id, parsed.body["model"], parsed.body, bool(parsed.body.get("stream")),
                parsed.operation, size, requested_tier, requested_places)
    if parsed.as_sent and not takes_fields:  # the gateway's own fields are not the router's
        call.raw_body = incoming.body
    try:
        await admit(gw, incoming.credential(), call)
    except ServiceError as err:
        return error_response(in_terms(err, parsed.dialect.terms), call_headers(call), dialect=endpoint.errors)
    except asyncio.CancelledError:
        if call.admitted is not None:  # the client left while the request was admitted
            _abandoned(gw, call)
        raise
    if call.stream and parsed.dialect.stream_encoder is not None:
        return await _stream(gw, call, parsed.dialect)
    return await _unary(gw, call, parsed.dialect)


async def admit(gw: Gateway, api_key: str, call: Call) -> None:
    """Everything that must pass before the router is called (raises :class:`ServiceError`)."""
    call.admitted = await gw.auth.admit(api_key, model=call.model, request_id=call.request_id,
                                        estimated_tokens=estimate_prompt_tokens(call.body_bytes))
    call.model, call.allowed_models = resolve_model(call.key, call.model)  # the key's own model names
    try:
        call.hold = await gw.billing.hold(
            request_id=call.request_id, key=call.key, model=call.model,
            prompt_tokens_bound=prompt_tokens_bound(call.body, call.body_bytes),
            max_output_tokens=requested_output_tokens(call.body) if call.operation.bounded else 1,
            started_at_ms=call.started_ms, choices=requested_choices(call.body) if call.operation.bounded else 1)
    except ServiceError:
        gw.auth.release(call.admitted)  # refused after admission (e.g. by the budget): give the slot back
        raise
    call.started_ms = call.hold.started_at_ms  # its usage is dated by the instant billing charges it at


def _key_parts(key: KeyContext) -> tuple[Payer, RoutingConstraints]:
    """What a key puts in each of its router requests (the payer, the routing constraints)."""
    payer = Payer(key_id=key.key_id, key_alias=key.key_alias, team_id=key.team_id, custody_hop=f"facade@{INSTANCE}",
                  pii_policy=key.pii_policy or "off", user_id=key.user_id, tags=key.tags[:],
                  watched_budgets=watched_budgets(key))
    constraints = RoutingConstraints(privacy_tier=key.privacy_tier, jurisdictions=key.jurisdictions[:],
                                     pii_policy=key.pii_policy, credential_providers=key.credential_providers[:])
    return payer, constraints


#: Built once per verified key (the key cache hands out the same object while the key is unchanged).
_KEY_PARTS: PerObject[KeyContext, tuple[Payer, RoutingConstraints]] = PerObject(_key_parts)


def router_request(call: Call) -> CompleteRequest:
    key, hold = call.key, call.hold
    request = CompleteRequest(
        request_id=call.request_id, model=call.model,
        body=call.raw_body if call.raw_body is not None else orjson.dumps(call.body),
        output_tokens_bound=hold.output_tokens if hold is not None and call.operation.bounded else 0,
        key_id=key.key_id, key_alias=key.key_alias, accepts_first_chunks=call.stream)
    payer, constraints = _KEY_PARTS.of(key)
    request.payer.CopyFrom(payer)
    request.payer.started_at_ms = call.started_ms
    if hold is not None and hold.lease_id:
        request.payer.lease_id, request.payer.held_micros = hold.lease_id, hold.micros
    request.constraints.CopyFrom(constraints)
    request.constraints.allowed_models.extend(call.allowed_models)
    request.constraints.requested_privacy_tier = call.requested_privacy_tier
    request.constraints.requested_jurisdictions.extend(call.requested_jurisdictions)
    return request


def finish(gw: Gateway, call: Call, usage: common_pb2.Usage | None = None) -> None:
    """The request ended: its rate-limit admission and its hold are given back (once)."""
    gw.auth.release(call.admitted, usage)
    gw.billing.end(call.hold)


def _failed(gw: Gateway, call: Call, err: ServiceError, dialect: Dialect) -> Reply:
    """A call that failed before any answer: settled here when the router may never have taken it."""
    err = in_terms(err, dialect.terms)
    http_status = anthropic_status_for(err) if dialect.errors == "anthropic" else status_for(err)
    if err.error.code in _UNANSWERED:
        _settle_unanswered(gw, call, status="error", http_status=http_status, error_code=err.error.code)
    finish(gw, call)
    return error_response(err, {**call_headers(call), **dialect.extra_headers(call.request_id)},
                          dialect=dialect.errors)


def _abandoned(gw: Gateway, call: Call) -> None:
    """The client left before the router answered, or this facade's shutdown cut the request when its grace ran out.
    The router settles the call if it took it (it knows what the provider consumed, and its record replaces this
    one); this facade's provisional record stands for a call it never took (cancelled on its way), so that the hold
    is freed and the request recorded either way."""
    _settle_unanswered(gw, call, status=CANCELLED, http_status=CLIENT_CLOSED_REQUEST,
                       error_code=CALLER_SHUTDOWN if gw.grace_expired else CLIENT_DISCONNECTED)
    finish(gw, call)


def _settle_unanswered(gw: Gateway, call: Call, *, status: str, http_status: int, error_code: str,
                       usage: common_pb2.Usage | None = None, route: RouteInfo | None = None) -> None:
    """This facade's record of a call the router did not answer: provisional, so that the router's own record
    (if it took the call after all) replaces it in the ledger."""
    key = call.key
    event = UsageEvent(
        request_id=call.request_id, key_id=key.key_id, key_alias=key.key_alias, team_id=key.team_id,
        model=call.model, status=status, http_status=http_status, error_code=error_code,
        latency_ms=(time.perf_counter() - call.started) * 1000, started_at_ms=call.started_ms, stream=call.stream,
        privacy_tier=key.privacy_tier, required_privacy_tier=key.privacy_tier, custody_path=custody_path(route),
        pii=pii_header(key.pii_policy, route), pii_policy=key.pii_policy or "off", source="http", provisional=True,
        user_id=key.user_id, tags=key.tags)
    if usage is not None:
        event.usage.CopyFrom(usage)
    if route is not None:
        event.deployment_id, event.provider, event.upstream_model = (route.deployment_id, route.provider,
                                                                     route.upstream_model)
        event.jurisdiction, event.byok = route.jurisdiction, route.byok
    gw.billing.settle(call.hold.stamp(event) if call.hold is not None else event)


async def _unary(gw: Gateway, call: Call, dialect: Dialect) -> Reply:
    try:
        result = await gw.router.answer(router_request(call), call.operation)
    except ServiceError as err:
        return _failed(gw, call, err, dialect)
    except asyncio.CancelledError:
        _abandoned(gw, call)
        raise
    try:
        headers = route_headers(call, result.route)
        headers.update(dialect.extra_headers(call.request_id))
        body = dialect.render(result.body, result.usage if result.HasField("usage") else None)
        headers["x-switchboard-overhead-ms"] = _overhead(call, result.provider_ms)
    except BaseException:
        finish(gw, call, result.usage)
        raise
    reply = Reply(body, 200, headers)
    reply.then = partial(finish, gw, call, result.usage)  # the admission and hold are given back once it is out
    return reply


def _overhead(call: Call, provider_ms: float) -> str:
    """Total minus provider time (TensorZero's definition), for the header and the histogram."""
    overhead_ms = max(0.0, (time.perf_counter() - call.started) * 1000 - provider_ms)
    metrics.GATEWAY_OVERHEAD.observe(("unary",), overhead_ms / 1000)
    return f"{overhead_ms:.3f}"


async def _stream(gw: Gateway, call: Call, dialect: Dialect) -> Reply:
    try:
        route, events, handle = await gw.router.stream(router_request(call))
    except ServiceError as err:
        return _failed(gw, call, err, dialect)
    except asyncio.CancelledError:
        _abandoned(gw, call)
        raise
    headers = route_headers(call, route)
    headers.update(dialect.extra_headers(call.request_id))
    ttfb_overhead_ms = max(0.0, (time.perf_counter() - call.started) * 1000 - route.provider_ttfb_ms)
    metrics.GATEWAY_OVERHEAD.observe(("stream_first_byte",), ttfb_overhead_ms / 1000)
    headers["x-switchboard-ttfb-overhead-ms"] = f"{ttfb_overhead_ms:.3f}"
    headers["cache-control"] = "no-cache"
    headers["x-accel-buffering"] = "no"
    assert dialect.stream_encoder is not None
    return StreamReply(_relay(gw, call, route, events, handle, dialect.stream_encoder(), dialect.terms), headers)


async def _relay(gw: Gateway, call: Call, route: RouteInfo, events: AsyncIterator[StreamEvent],
                 handle: StreamHandle, encoder: StreamEncoder, terms: ErrorTerms | None) -> AsyncIterator[bytes]:
    """Frames chunk batches through ``encoder``; gives the admission and hold back however the stream ends.

    The router settles the stream (it knows what the provider delivered, even when this client goes away);
    only a router lost mid-stream leaves the record to this facade, from what reached it."""
    usage: common_pb2.Usage | None = None
    delivered = DeliveredText()
    try:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "chunks":
                chunks = event.chunks.chunks
                delivered.add(chunks)
                frame = encoder.chunks(chunks)
                if frame:
                    yield frame
            elif kind == "end":
                end = event.end
                usage = end.usage
                failure = in_terms(ServiceError.from_proto(end.error), terms).error if end.HasField("error") else None
                yield encoder.end(openai_usage(usage), failure)
    except ServiceError as err:  # the router was lost, or the deadline passed, after the stream began
        if err.error.code in _UNANSWERED:  # this facade's record is the bill: the client is told it
            usage = _delivered_usage(call, delivered)
            _settle_unanswered(gw, call, status="error", http_status=status_for(err), error_code=err.error.code,
                               usage=usage, route=route)
        yield encoder.end(openai_usage(usage) if usage is not None else None, in_terms(err, terms).error)
    finally:
        handle.cancel()
        finish(gw, call, usage)


def _delivered_usage(call: Call, delivered: DeliveredText) -> common_pb2.Usage:
    """What a stream cut off from the router delivered (its generated text), and its prompt's bound."""
    usage = common_pb2.Usage(prompt_tokens=estimate_prompt_tokens(call.body_bytes),
                             completion_tokens=delivered.tokens(), reported_by_provider=False)
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
    return usage


def route_headers(call: Call, route: RouteInfo) -> dict[str, str]:
    """Custody and routing facts of the answer, its rate limits and budgets."""
    headers = {
        "x-request-id": call.request_id,
        "x-switchboard-request-id": call.request_id,
        "x-switchboard-model": route.served_model or call.model,
        "x-switchboard-deployment": route.deployment_id,
        "x-switchboard-provider": route.provider,
        "x-switchboard-resolved-jurisdiction": route.jurisdiction or "unspecified",
        "x-switchboard-privacy-tier": route.privacy_tier,
        "x-switchboard-custody-path": custody_path(route),
        PII_HEADER: pii_header(call.key.pii_policy, route),
        "x-switchboard-attempts": str(route.attempts),
    }
    if call.hold is not None and call.hold.capped:
        headers["x-switchboard-output-capped"] = str(route.output_tokens_sent or call.hold.output_tokens)
    headers.update(call_headers(call))
    return headers


def call_headers(call: Call) -> dict[str, str]:
    """Headers of every answer to an admitted call: its id, rate limits and budgets."""
    headers = {"x-request-id": call.request_id, "x-switchboard-request-id": call.request_id}
    if call.admitted is not None:
        headers.update(call.admitted.rate_limit_headers())
    if call.hold is not None:
        headers.update(budget_headers(call.hold.answer))
    return headers
