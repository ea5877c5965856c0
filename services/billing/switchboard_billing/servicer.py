"""The Billing gRPC servicer: settlement and ledger queries."""

from __future__ import annotations

import logging

import grpc

from switchboard.v1 import billing_pb2, billing_pb2_grpc, common_pb2
from switchboard_billing.ledger import Ledger
from switchboard_billing.models import UsageRow
from switchboard_common.errors import Kind, ServiceError, abort

log = logging.getLogger(__name__)

MAX_PAGE = 1000


def row_from_event(event: billing_pb2.UsageEvent) -> UsageRow:
    u = event.usage
    return UsageRow(
        request_id=event.request_id, key_id=event.key_id, key_alias=event.key_alias, team_id=event.team_id,
        model=event.model, deployment_id=event.deployment_id, provider=event.provider,
        upstream_model=event.upstream_model, jurisdiction=event.jurisdiction, privacy_tier=event.privacy_tier,
        prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
        cached_prompt_tokens=u.cached_prompt_tokens, cache_write_tokens=u.cache_write_tokens,
        reasoning_tokens=u.reasoning_tokens, usage_reported=u.reported_by_provider, cost_micros=None,
        status=event.status or "success", http_status=event.http_status, error_code=event.error_code,
        stream=event.stream, latency_ms=event.latency_ms, ttft_ms=event.ttft_ms, started_at_ms=event.started_at_ms,
    )


def record_from_row(row: UsageRow) -> billing_pb2.UsageRecord:
    event = billing_pb2.UsageEvent(
        request_id=row.request_id, key_id=row.key_id, key_alias=row.key_alias, team_id=row.team_id,
        model=row.model, deployment_id=row.deployment_id, provider=row.provider,
        upstream_model=row.upstream_model, jurisdiction=row.jurisdiction, privacy_tier=row.privacy_tier,
        usage=common_pb2.Usage(
            prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
            total_tokens=row.prompt_tokens + row.completion_tokens, cached_prompt_tokens=row.cached_prompt_tokens,
            cache_write_tokens=row.cache_write_tokens, reasoning_tokens=row.reasoning_tokens,
            reported_by_provider=row.usage_reported,
        ),
        status=row.status, http_status=row.http_status, latency_ms=row.latency_ms, ttft_ms=row.ttft_ms,
        started_at_ms=row.started_at_ms, stream=row.stream, error_code=row.error_code,
    )
    record = billing_pb2.UsageRecord(event=event, recorded_at_ms=row.recorded_at_ms)
    if row.cost_micros is not None:
        record.cost_micros = row.cost_micros
    return record


def _cursor(row: UsageRow) -> str:
    return f"{row.started_at_ms}:{row.request_id}"


def _parse_cursor(cursor: str) -> tuple[int, str] | None:
    if not cursor:
        return None
    started, sep, request_id = cursor.partition(":")
    if not sep or not started.isdigit():
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "cursor is malformed; pass next_cursor unchanged",
                           param="cursor")
    return int(started), request_id


class BillingServicer(billing_pb2_grpc.BillingServicer):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def Settle(self, request: billing_pb2.SettleRequest,
                     context: grpc.aio.ServicerContext) -> billing_pb2.SettleResponse:
        try:
            if not request.event.request_id:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "event.request_id is required",
                                   param="request_id")
            recorded = await self.ledger.record(row_from_event(request.event))
            return billing_pb2.SettleResponse(recorded=recorded)
        except ServiceError as err:
            await abort(context, err)
            raise

    async def SettleBatch(self, request: billing_pb2.SettleBatchRequest,
                          context: grpc.aio.ServicerContext) -> billing_pb2.SettleBatchResponse:
        try:
            if any(not e.request_id for e in request.events):
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "every event needs a request_id",
                                   param="request_id")
            recorded = await self.ledger.record_many([row_from_event(e) for e in request.events])
            return billing_pb2.SettleBatchResponse(recorded=recorded)
        except ServiceError as err:
            await abort(context, err)
            raise

    async def ListUsage(self, request: billing_pb2.ListUsageRequest,
                        context: grpc.aio.ServicerContext) -> billing_pb2.ListUsageResponse:
        try:
            limit = request.limit or 100
            if limit < 0 or limit > MAX_PAGE:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"limit must be between 1 and {MAX_PAGE}",
                                   param="limit")
            rows = await self.ledger.list(key_id=request.key_id, team_id=request.team_id, model=request.model,
                                          from_ms=request.from_ms, to_ms=request.to_ms, limit=limit + 1,
                                          before=_parse_cursor(request.cursor))
            page, more = rows[:limit], len(rows) > limit
            return billing_pb2.ListUsageResponse(records=[record_from_row(r) for r in page],
                                                 next_cursor=_cursor(page[-1]) if more else "")
        except ServiceError as err:
            await abort(context, err)
            raise
