"""The Billing gRPC servicer: reservations, settlement, ledger queries and the public catalog."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from switchboard.v1 import billing_pb2, billing_pb2_grpc, common_pb2
from switchboard_billing.budgets import Budgets, BudgetState, Limits, Reservation
from switchboard_billing.catalog_view import public_catalog
from switchboard_billing.costing import Pricer, UnservableModelError
from switchboard_billing.ledger import GROUPS, Ledger
from switchboard_billing.models import UsageRow
from switchboard_billing.money import format_usd
from switchboard_common import metrics
from switchboard_common.errors import Kind, ServiceError, abort

log = logging.getLogger(__name__)

MAX_PAGE = 1000


def _count_spend(rows: list[dict[str, Any]]) -> None:
    """Spend metric per public model, counted once per newly recorded row (replays add nothing)."""
    per_model: dict[str, int] = {}
    for row in rows:
        if row.get("cost_micros"):
            per_model[row["model"]] = per_model.get(row["model"], 0) + row["cost_micros"]
    for model, micros in per_model.items():
        metrics.SPEND_MICROS.labels(model).inc(micros)


def ledger_values(event: billing_pb2.UsageEvent, cost_micros: int | None = None) -> dict[str, Any]:
    """The ledger columns of a usage event (plain values: the settle path builds no ORM objects)."""
    u = event.usage
    return {
        "request_id": event.request_id, "key_id": event.key_id, "key_alias": event.key_alias,
        "team_id": event.team_id, "model": event.model, "deployment_id": event.deployment_id,
        "provider": event.provider, "upstream_model": event.upstream_model, "jurisdiction": event.jurisdiction,
        "privacy_tier": event.privacy_tier, "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
        "cached_prompt_tokens": u.cached_prompt_tokens, "cache_write_tokens": u.cache_write_tokens,
        "reasoning_tokens": u.reasoning_tokens, "usage_reported": u.reported_by_provider, "cost_micros": cost_micros,
        "status": event.status or "success", "http_status": event.http_status, "error_code": event.error_code,
        "stream": event.stream, "latency_ms": event.latency_ms, "ttft_ms": event.ttft_ms,
        "started_at_ms": event.started_at_ms, "recorded_at_ms": 0,
        "custody_path": event.custody_path, "pii": event.pii, "pii_policy": event.pii_policy,
        "required_privacy_tier": event.required_privacy_tier,
    }


def row_from_event(event: billing_pb2.UsageEvent, cost_micros: int | None = None) -> UsageRow:
    return UsageRow(**ledger_values(event, cost_micros))


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
        custody_path=row.custody_path, pii=row.pii, pii_policy=row.pii_policy,
        required_privacy_tier=row.required_privacy_tier,
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


def _limits(message: billing_pb2.BudgetLimits) -> Limits:
    return Limits(
        max_budget_micros=message.max_budget_micros if message.HasField("max_budget_micros") else None,
        budget_duration=message.budget_duration,
        max_daily_spend_micros=message.max_daily_spend_micros if message.HasField("max_daily_spend_micros") else None,
        anchor_ms=message.anchor_ms,
    )


def _ms(instant: object) -> int:
    return int(instant.timestamp() * 1000) if instant is not None else 0  # type: ignore[attr-defined]


def _budget_messages(budgets: tuple[BudgetState, ...]) -> list[billing_pb2.BudgetState]:
    return [
        billing_pb2.BudgetState(
            scope=b.scope, kind=b.kind, limit_micros=b.limit_micros, spent_micros=b.spent_micros,
            held_micros=b.held_micros, remaining_micros=b.remaining_micros,
            window_start_ms=_ms(b.window.start) if b.window is not None else 0, resets_at_ms=_ms(b.resets_at),
        )
        for b in budgets
    ]


def budget_exceeded(reservation: Reservation, now_ms: int) -> ServiceError:
    """The 429 a denied reservation becomes: which budget, what is left, when it resets."""
    b = reservation.denied_by
    assert b is not None
    left = b.remaining_micros
    parts = [f"Budget exceeded: {b.describe()} has ${format_usd(left)} left "
             f"(spent ${format_usd(b.spent_micros)}, ${format_usd(b.held_micros)} held by requests in flight)"]
    if reservation.amount_micros > left and left > 0:
        parts.append(f"; this request may cost up to ${format_usd(reservation.amount_micros)} — "
                     "send a smaller max_tokens to fit what is left")
    retry_after = 0.0
    headers = {"x-switchboard-budget-scope": b.scope, "x-switchboard-budget-kind": b.kind,
               "x-switchboard-budget-limit": format_usd(b.limit_micros),
               "x-switchboard-budget-remaining": format_usd(left)}
    if b.resets_at is not None:
        reset_ms = _ms(b.resets_at)
        retry_after = max(1.0, (reset_ms - now_ms) / 1000)
        parts.append(f". It resets at {b.resets_at.isoformat().replace('+00:00', 'Z')}.")
        headers["x-switchboard-budget-reset-at"] = b.resets_at.isoformat().replace("+00:00", "Z")
    else:
        parts.append(". This budget does not reset: ask an admin to raise max_budget.")
    return ServiceError(Kind.ERROR_KIND_BUDGET_EXCEEDED, "".join(parts), code="budget_exceeded", http_status=429,
                        retry_after_seconds=retry_after, headers=headers)


class BillingServicer(billing_pb2_grpc.BillingServicer):
    def __init__(self, ledger: Ledger, budgets: Budgets, pricer: Pricer) -> None:
        self.ledger = ledger
        self.budgets = budgets
        self.pricer = pricer

    def _row(self, event: billing_pb2.UsageEvent) -> dict[str, Any]:
        return ledger_values(event, self.pricer.event_cost(event))

    @staticmethod
    def _lease_units(events: Any) -> dict[str, tuple[str, int]]:
        return {e.request_id: (e.lease_id, e.lease_unit_micros) for e in events if e.lease_id}

    async def Reserve(self, request: billing_pb2.ReserveRequest,
                      context: grpc.aio.ServicerContext) -> billing_pb2.ReserveResponse:
        try:
            if not request.request_id:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "request_id is required", param="request_id")
            if request.prompt_tokens_bound < 0 or request.max_output_tokens < 0:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "token bounds must be 0 or more",
                                   param="max_tokens")
            try:
                worst = self.pricer.worst_case(request.model, request.prompt_tokens_bound,
                                               request.max_output_tokens, byok=request.byok)
            except UnservableModelError as exc:
                raise ServiceError(Kind.ERROR_KIND_POLICY,
                                   f"Model {request.model!r} cannot be served: it has no known price. {exc}",
                                   code="model_unpriced", param="model", http_status=503) from None
            reservation = await self.budgets.reserve(
                request_id=request.request_id, key_id=request.key_id, team_id=request.team_id,
                key_limits=_limits(request.key_limits),
                team_limits=_limits(request.team_limits) if request.team_id else Limits(),
                amount_micros=worst.micros, ttl_seconds=request.ttl_seconds)
            if reservation.denied_by is not None:
                raise budget_exceeded(reservation, _ms(self.budgets.clock.now()))
            return billing_pb2.ReserveResponse(
                reservation_id=request.request_id if reservation.held else "",
                held_micros=reservation.amount_micros if reservation.held else 0,
                budgets=_budget_messages(reservation.budgets), priced=worst.priced,
                expires_at_ms=reservation.expires_at_ms)
        except ServiceError as err:
            await abort(context, err)
            raise

    async def Lease(self, request: billing_pb2.LeaseRequest,
                    context: grpc.aio.ServicerContext) -> billing_pb2.LeaseResponse:
        try:
            shape = request.shape
            if not request.lease_id:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "lease_id is required", param="lease_id")
            if shape.prompt_tokens_bound < 0 or shape.max_output_tokens < 0 or request.units < 0:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "bounds and units must be 0 or more",
                                   param="units")
            try:
                worst = self.pricer.worst_case(shape.model, shape.prompt_tokens_bound, shape.max_output_tokens,
                                               byok=shape.byok)
            except UnservableModelError:
                return billing_pb2.LeaseResponse()  # Reserve says why, exactly
            lease = await self.budgets.lease(
                lease_id=request.lease_id, key_id=shape.key_id, team_id=shape.team_id,
                key_limits=_limits(shape.key_limits),
                team_limits=_limits(shape.team_limits) if shape.team_id else Limits(),
                unit_micros=worst.micros if worst.priced else 0, units=request.units, ttl_seconds=shape.ttl_seconds)
            return billing_pb2.LeaseResponse(units=lease.units, unit_micros=lease.unit_micros,
                                             budgets=_budget_messages(lease.budgets),
                                             expires_at_ms=lease.expires_at_ms)
        except ServiceError as err:
            await abort(context, err)
            raise

    async def ReturnLease(self, request: billing_pb2.ReturnLeaseRequest,
                          context: grpc.aio.ServicerContext) -> billing_pb2.ReturnLeaseResponse:
        await self.budgets.return_lease(request.lease_id, request.micros)
        return billing_pb2.ReturnLeaseResponse()

    async def Release(self, request: billing_pb2.ReleaseRequest,
                      context: grpc.aio.ServicerContext) -> billing_pb2.ReleaseResponse:
        return billing_pb2.ReleaseResponse(released=await self.budgets.release(request.request_id))

    async def SummarizeUsage(self, request: billing_pb2.SummarizeUsageRequest,
                             context: grpc.aio.ServicerContext) -> billing_pb2.SummarizeUsageResponse:
        try:
            if request.group_by and request.group_by not in GROUPS:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                                   f"group_by must be one of {', '.join(GROUPS)} (or empty for one total)",
                                   param="group_by")
            sums = await self.ledger.summarize(key_id=request.key_id, team_id=request.team_id, model=request.model,
                                               from_ms=request.from_ms, to_ms=request.to_ms,
                                               group_by=request.group_by)
            return billing_pb2.SummarizeUsageResponse(groups=[
                billing_pb2.UsageGroup(group=s.group, requests=s.requests, successful_requests=s.successful_requests,
                                       prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens,
                                       cached_prompt_tokens=s.cached_prompt_tokens, cost_micros=s.cost_micros,
                                       unpriced_requests=s.unpriced_requests)
                for s in sums])
        except ServiceError as err:
            await abort(context, err)
            raise

    async def GetCatalog(self, request: billing_pb2.GetCatalogRequest,
                         context: grpc.aio.ServicerContext) -> billing_pb2.GetCatalogResponse:
        return public_catalog(self.pricer)

    async def Settle(self, request: billing_pb2.SettleRequest,
                     context: grpc.aio.ServicerContext) -> billing_pb2.SettleResponse:
        try:
            if not request.event.request_id:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "event.request_id is required",
                                   param="request_id")
            new = await self.ledger.record_new([self._row(request.event)], self._lease_units([request.event]))
            _count_spend(new)
            return billing_pb2.SettleResponse(recorded=bool(new))
        except ServiceError as err:
            await abort(context, err)
            raise

    async def SettleBatch(self, request: billing_pb2.SettleBatchRequest,
                          context: grpc.aio.ServicerContext) -> billing_pb2.SettleBatchResponse:
        try:
            if any(not e.request_id for e in request.events):
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "every event needs a request_id",
                                   param="request_id")
            new = await self.ledger.record_new([self._row(e) for e in request.events],
                                               self._lease_units(request.events))
            _count_spend(new)
            return billing_pb2.SettleBatchResponse(recorded=len(new))
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
                                          before=_parse_cursor(request.cursor), request_id=request.request_id)
            page, more = rows[:limit], len(rows) > limit
            return billing_pb2.ListUsageResponse(records=[record_from_row(r) for r in page],
                                                 next_cursor=_cursor(page[-1]) if more else "")
        except ServiceError as err:
            await abort(context, err)
            raise
