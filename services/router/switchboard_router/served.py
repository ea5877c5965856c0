"""One call served, for any caller and any transport: admitted, routed, answered and settled exactly once.

The unary RPCs and the Exchange stream both run their calls here. A call is
first given its ticket — the facade's, as it states it, or a key holder's,
made by the gate — then the privacy step and the engine serve it, and
:class:`~switchboard_router.settlement.Settlement` records it however it ends:
with the provider's usage, with a typed error, or cancelled (the caller went
away: billed from what the provider delivered, not from the bytes relayed).

A key holder's answer names the model it asked for (a catalog name or its
key's alias), whole or streamed, as the facade's answers to HTTP clients do
(:mod:`switchboard_translate.answer_model`); the facade, which names the model
its own client asked for, gets the provider's answer as it came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from switchboard.v1 import common_pb2, router_pb2
from switchboard_common.errors import Kind, ServiceError
from switchboard_router import request_id
from switchboard_router.call_cut import CutOutcome, cut_outcome
from switchboard_router.callers import Caller, Ticket, trusted_ticket
from switchboard_router.coalescing import StartedWithChunks, coalesced
from switchboard_router.engine import Attempted, StreamChunks, StreamFinished, StreamStarted
from switchboard_router.gate import Gate
from switchboard_router.operations import Operation
from switchboard_router.privacy_guard import Prepared, PrivacyGuard
from switchboard_router.providers.base import TokenUsage
from switchboard_router.settlement import Settlement
from switchboard_router.usage_estimate import ProducedSoFar, estimate_prompt_tokens
from switchboard_rules import request_fields
from switchboard_translate.answer_model import AnswerModel

#: Most seconds between two progress records of a stream (what a router that dies bills it for, see
#: :meth:`Settlement.progress`): a stream cut by the router's death is billed for all but at most this much of what
#: it relayed.
PROGRESS_SECONDS = 1.0


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
        output_tokens_sent=route.output_tokens_sent,
    )


def parse_body(request: router_pb2.CompleteRequest) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "body must be a JSON object")
    if not request.model:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "model is required", param="model")
    if not request.request_id:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "request_id is required: a unique id of the call",
                           param="request_id")
    return body


def _response_id(raw: bytes) -> str:
    try:
        chunk = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    return str(chunk.get("id") or "") if isinstance(chunk, dict) else ""


def _named(chunks: list[bytes], answer_model: AnswerModel | None) -> list[bytes]:
    """A key holder's chunks naming the model it asked for (a trusted caller's as they came)."""
    return chunks if answer_model is None else [answer_model.name_bytes(chunk) for chunk in chunks]


@dataclass(frozen=True, slots=True)
class Answered:
    """A whole answer, and the settlement of its usage for its transport to run once, before the answer is handed
    over: a process killed just after the hand-over must not leave an answered call unbilled."""

    response: router_pb2.CompleteResponse
    settle: Callable[[], None]


class CallServer:
    """Serves calls: ``answer`` (a whole completion or embeddings) and ``events`` (a stream); both raise
    ServiceError, and both settle whatever happens once the call is admitted. A stream is also recorded while it
    runs (once its route is known, then every :data:`PROGRESS_SECONDS` at most), so that a router that dies
    mid-stream leaves it billed for what it had relayed."""

    def __init__(self, guard: PrivacyGuard, gate: Gate, settlement: Settlement) -> None:
        self.guard = guard
        self.gate = gate
        self.settlement = settlement
        #: Set when the router is stopping: a call cancelled from then on was ended by the shutdown.
        self.stopping = False

    def _cut(self) -> CutOutcome:
        """How a call that ended before its answer is recorded: the router's shutdown ended it, or its caller cut it
        (for the reason the caller gave: see :mod:`switchboard_router.call_cut`)."""
        return cut_outcome(self.stopping)

    async def _ticket(self, caller: Caller, request: router_pb2.CompleteRequest, body: dict[str, Any],
                      operation: Operation) -> Ticket:
        if caller.trusted:
            return trusted_ticket(request)
        return await self.gate.admit(caller.api_key, request, body, operation)

    async def _prepare(self, request: router_pb2.CompleteRequest, ticket: Ticket, body: dict[str, Any],
                       operation: Operation) -> Prepared:
        """The privacy step, with the key's own provider credentials when it has some."""
        credentials: Mapping[str, str] = {}
        if ticket.constraints.credential_providers and ticket.payer.key_id:
            credentials = await self.gate.auth.credentials(ticket.payer.key_id)
        return self.guard.prepare(body, ticket.constraints, operation, credentials, ticket.output_bound)

    async def answer(self, request: router_pb2.CompleteRequest, operation: Operation,
                     caller: Caller) -> router_pb2.CompleteResponse:
        """The whole answer, settled before it is returned (a unary RPC's answer leaves after its handler)."""
        answered = await self.answered(request, operation, caller)
        answered.settle()
        return answered.response

    async def answered(self, request: router_pb2.CompleteRequest, operation: Operation, caller: Caller) -> Answered:
        """The whole answer and its settlement, which the caller of this method must run exactly once, whatever
        happens to the answer; a call that fails or is cancelled before it is answered is settled here."""
        request_id.bind(request.request_id)
        body = parse_body(request)
        asked = request.model  # before the gate resolves a key's alias
        ticket = await self._ticket(caller, request, body, operation)
        try:
            prepared = await self._prepare(request, ticket, body, operation)
            result = await self.guard.complete(request.model, prepared, operation)
        except ServiceError as err:
            self.settlement.failed(request, ticket, err)
            raise
        except asyncio.CancelledError:
            # The caller went away while the provider worked: what it consumed is not known; its prompt is.
            usage = common_pb2.Usage(prompt_tokens=estimate_prompt_tokens(body), reported_by_provider=False)
            usage.total_tokens = usage.prompt_tokens
            cut = self._cut()
            self.settlement.settle(request, ticket, status=cut.status, http_status=cut.http_status,
                                   error_code=cut.error_code, usage=usage)
            raise
        route = prepared.annotate(route_to_proto(result.route))
        usage = usage_to_proto(result.usage)
        if not caller.trusted:
            AnswerModel(asked).name(result.body)
        response = router_pb2.CompleteResponse(body=orjson.dumps(result.body), usage=usage, route=route,
                                               provider_ms=result.provider_ms)
        return Answered(response, partial(
            self.settlement.settle, request, ticket, status="success", http_status=200, usage=usage, route=route,
            response_id=str(result.body.get("id") or ""), provider_ms=result.provider_ms))

    async def events(self, request: router_pb2.CompleteRequest,
                     caller: Caller) -> AsyncGenerator[router_pb2.StreamEvent, None]:
        """RouteInfo, chunk batches, one StreamEnd; settled before the end is sent (or when the caller leaves)."""
        request_id.bind(request.request_id)
        body = parse_body(request)
        answer_model = None if caller.trusted else AnswerModel(request.model)  # before the gate resolves an alias
        ticket = await self._ticket(caller, request, body, Operation.COMPLETE)
        include_usage = request_fields.usage_asked(body)
        try:
            prepared = await self._prepare(request, ticket, body, Operation.COMPLETE)
        except ServiceError as err:
            self.settlement.failed(request, ticket, err, stream=True)
            raise
        relayed = ProducedSoFar()
        route: router_pb2.RouteInfo | None = None
        response_id, ttft_ms, settled = "", 0.0, False
        progress_due = 0.0  # the first record goes once the route is known
        try:
            async for item in coalesced(self.guard.stream(request.model, prepared, include_usage),
                                        first_chunks=request.accepts_first_chunks):
                chunks: list[bytes] = []
                if isinstance(item, StartedWithChunks):
                    chunks, item = _named(item.chunks, answer_model), item.started
                if isinstance(item, StreamStarted):
                    route = prepared.annotate(route_to_proto(item.route))
                    route.provider_ttfb_ms = item.ttfb_ms
                    event = router_pb2.StreamEvent(route=route)
                    if chunks:
                        event.first_chunks.chunks.extend(chunks)
                elif isinstance(item, StreamChunks):
                    chunks = _named(item.chunks, answer_model)
                    event = router_pb2.StreamEvent(chunks=router_pb2.ChunkBatch(chunks=chunks))
                else:
                    assert isinstance(item, StreamFinished)
                    end = router_pb2.StreamEnd(usage=usage_to_proto(item.usage), provider_ms=item.provider_ms,
                                               time_to_first_byte_ms=item.ttfb_ms,
                                               route=prepared.annotate(route_to_proto(item.route)))
                    if item.error is not None:
                        end.error.CopyFrom(item.error.error)
                        self.settlement.settle(request, ticket, status="error",
                                               http_status=item.error.http_status, error_code=item.error.error.code,
                                               usage=end.usage, route=end.route, ttft_ms=ttft_ms, stream=True,
                                               response_id=response_id, provider_ms=item.provider_ms)
                    else:
                        self.settlement.settle(request, ticket, status="success", http_status=200, usage=end.usage,
                                               route=end.route, ttft_ms=ttft_ms, stream=True,
                                               response_id=response_id, provider_ms=item.provider_ms)
                    settled = True
                    yield router_pb2.StreamEvent(end=end)
                    continue
                if chunks and not response_id:
                    response_id = _response_id(chunks[0])
                    ttft_ms = (time.perf_counter() - ticket.started) * 1000
                if chunks:
                    relayed.add(chunks)
                yield event
                if route is not None and (now := time.monotonic()) >= progress_due:
                    # What the caller has been sent, if the router dies now; recorded once the event went out
                    # (the caller asks for the next one then), so the first token never waits for the record.
                    progress_due = now + PROGRESS_SECONDS
                    self.settlement.progress(request, ticket, usage=usage_to_proto(
                        relayed.usage(None, failed=True, body=body)), route=route, ttft_ms=ttft_ms,
                        response_id=response_id)
        except ServiceError as err:  # the engine gave up before the stream began
            if not settled:
                settled = True
                self.settlement.failed(request, ticket, err, stream=True)
            raise
        finally:
            if not settled:
                # The caller went away mid-stream: bill what the provider delivered so far.
                usage = relayed.usage(None, failed=True, body=body)
                cut = self._cut()
                self.settlement.settle(request, ticket, status=cut.status, http_status=cut.http_status,
                                       error_code=cut.error_code, usage=usage_to_proto(usage), route=route,
                                       ttft_ms=ttft_ms, stream=True, response_id=response_id)
