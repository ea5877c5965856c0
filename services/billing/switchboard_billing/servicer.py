"""The Billing gRPC servicer: protobuf in, holds/ledger/budgets call, protobuf out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc
import orjson

from switchboard.v1 import billing_pb2, billing_pb2_grpc, common_pb2
from switchboard_billing.alert_rules import watches_of
from switchboard_billing.alert_store import KINDS, SCOPES, list_alerts
from switchboard_billing.budget_gauges import BudgetGauges
from switchboard_billing.budgets import Budgets, BudgetState
from switchboard_billing.costing import Pricer
from switchboard_billing.holds import Holder, limits_of
from switchboard_billing.ledger import Ledger
from switchboard_billing.model_admin import ModelAdmin
from switchboard_billing.model_store import AUDIT
from switchboard_billing.models import UsageRow
from switchboard_billing.public_catalog import public_catalog
from switchboard_billing.rate_card import RateBook, rate_card
from switchboard_billing.usage_sums import GROUPS, SPLITS
from switchboard_common import audit_chain, metrics
from switchboard_common.audit_messages import entry, query_of, verification
from switchboard_common.errors import Kind, ServiceError, abort

log = logging.getLogger(__name__)

MAX_PAGE = 1000
#: Size of the ledger's tags column.
TAGS_MAX_CHARS = 2000


def _count_spend(rows: list[dict[str, Any]]) -> None:
    """Spend metric per public model, team and source, counted once per newly recorded row (replays add
    nothing)."""
    per_model: dict[tuple[str, str, str], int] = {}
    for row in rows:
        if row.get("cost_micros"):
            labels = (row["model"], row.get("team_id") or "", row.get("source") or "http")
            per_model[labels] = per_model.get(labels, 0) + row["cost_micros"]
    for (model, team, source), micros in per_model.items():
        metrics.SPEND_MICROS.labels(model, team, source).inc(micros)


def ledger_values(event: billing_pb2.UsageEvent, cost_micros: int | None = None,
                  cache_savings_micros: int = 0) -> dict[str, Any]:
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
        "required_privacy_tier": event.required_privacy_tier, "byok": event.byok, "source": event.source[:10],
        "response_id": event.response_id[:120], "provisional": event.provisional, "user_id": event.user_id[:200],
        "tags": tags_text(event.tags), "provider_ms": event.provider_ms, "attempts": event.attempts,
        "cache_savings_micros": cache_savings_micros,
    }


def tags_text(tags: Any) -> str:
    """The ledger's tags column: a JSON array, within the column's size (the last tags dropped if need be)."""
    if not tags:
        return "[]"
    kept = list(tags[:])  # a slice first: a message's repeated field iterated as itself ends in an IndexError
    while kept and len(orjson.dumps(kept)) > TAGS_MAX_CHARS:
        kept.pop()
    return orjson.dumps(kept).decode() if kept else "[]"


def tags_of(text: str) -> list[str]:
    try:
        tags = orjson.loads(text or "[]")
    except orjson.JSONDecodeError:
        return []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def row_from_event(event: billing_pb2.UsageEvent, cost_micros: int | None = None,
                   cache_savings_micros: int = 0) -> UsageRow:
    return UsageRow(**ledger_values(event, cost_micros, cache_savings_micros))


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
        required_privacy_tier=row.required_privacy_tier, byok=row.byok, source=row.source,
        response_id=row.response_id, user_id=row.user_id, tags=tags_of(row.tags), provider_ms=row.provider_ms,
        attempts=row.attempts, provisional=row.provisional,
    )
    record = billing_pb2.UsageRecord(event=event, recorded_at_ms=row.recorded_at_ms,
                                     cache_savings_micros=row.cache_savings_micros)
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


def _ms(instant: datetime | None) -> int:
    return int(instant.timestamp() * 1000) if instant is not None else 0


def _budget_messages(budgets: tuple[BudgetState, ...]) -> list[billing_pb2.BudgetState]:
    return [
        billing_pb2.BudgetState(
            scope=b.scope, kind=b.kind, limit_micros=b.limit_micros, spent_micros=b.spent_micros,
            held_micros=b.held_micros, remaining_micros=b.remaining_micros,
            window_start_ms=_ms(b.window.start) if b.window is not None else 0, resets_at_ms=_ms(b.resets_at),
        )
        for b in budgets
    ]


#: The servicer context of each RPC shape: grpc.aio.ServicerContext[its request, its answer].
_PutModelContext = grpc.aio.ServicerContext[billing_pb2.PutModelRequest, billing_pb2.StoredModel]
_DeleteModelContext = grpc.aio.ServicerContext[billing_pb2.DeleteModelRequest, billing_pb2.StoredModel]
_ListStoredModelsContext = grpc.aio.ServicerContext[billing_pb2.ListStoredModelsRequest, billing_pb2.StoredModels]
_WatchModelsContext = grpc.aio.ServicerContext[billing_pb2.WatchModelsRequest, billing_pb2.StoredModels]
_ReserveContext = grpc.aio.ServicerContext[billing_pb2.ReserveRequest, billing_pb2.ReserveResponse]
_ReturnLeaseContext = grpc.aio.ServicerContext[billing_pb2.ReturnLeaseRequest, billing_pb2.ReturnLeaseResponse]
_RenewLeasesContext = grpc.aio.ServicerContext[billing_pb2.RenewLeasesRequest, billing_pb2.RenewLeasesResponse]
_GetRateCardContext = grpc.aio.ServicerContext[billing_pb2.GetRateCardRequest, billing_pb2.RateCard]
_GetBudgetsContext = grpc.aio.ServicerContext[billing_pb2.GetBudgetsRequest, billing_pb2.GetBudgetsResponse]
_ReleaseContext = grpc.aio.ServicerContext[billing_pb2.ReleaseRequest, billing_pb2.ReleaseResponse]
_SummarizeUsageContext = grpc.aio.ServicerContext[billing_pb2.SummarizeUsageRequest, billing_pb2.SummarizeUsageResponse]
_GetCatalogContext = grpc.aio.ServicerContext[billing_pb2.GetCatalogRequest, billing_pb2.GetCatalogResponse]
_SettleContext = grpc.aio.ServicerContext[billing_pb2.SettleRequest, billing_pb2.SettleResponse]
_SettleBatchContext = grpc.aio.ServicerContext[billing_pb2.SettleBatchRequest, billing_pb2.SettleBatchResponse]
_ListUsageContext = grpc.aio.ServicerContext[billing_pb2.ListUsageRequest, billing_pb2.ListUsageResponse]
_ListAuditContext = grpc.aio.ServicerContext[common_pb2.AuditQuery, common_pb2.AuditPage]
_VerifyAuditContext = grpc.aio.ServicerContext[billing_pb2.VerifyBillingAuditRequest, common_pb2.AuditVerification]
_ListAlertsContext = grpc.aio.ServicerContext[billing_pb2.ListAlertsRequest, billing_pb2.ListAlertsResponse]


class BillingServicer(billing_pb2_grpc.BillingServicer):
    def __init__(self, ledger: Ledger, budgets: Budgets, pricer: Pricer, min_output_tokens: int = 1024,
                 wait_for_money_seconds: float = 1.0, models: ModelAdmin | None = None,
                 gauges: BudgetGauges | None = None) -> None:
        self.ledger = ledger
        self.budgets = budgets
        self.pricer = pricer
        self.gauges = gauges or BudgetGauges(budgets, limit=0)
        self.holder = Holder(budgets, RateBook(pricer), min_output_tokens, wait_for_money_seconds)
        #: Models added at run time (None: this billing keeps none, e.g. in unit tests).
        self.models = models

    def _model_admin(self) -> ModelAdmin:
        if self.models is None:
            raise ServiceError(Kind.ERROR_KIND_INTERNAL, "this billing service keeps no stored models")
        return self.models

    async def PutModel(self, request: billing_pb2.PutModelRequest,
                       context: _PutModelContext) -> billing_pb2.StoredModel:
        try:
            return await self._model_admin().put(request)
        except ServiceError as err:
            await abort(context, err)
            raise

    async def DeleteModel(self, request: billing_pb2.DeleteModelRequest,
                          context: _DeleteModelContext) -> billing_pb2.StoredModel:
        try:
            return await self._model_admin().delete(request)
        except ServiceError as err:
            await abort(context, err)
            raise

    async def ListStoredModels(self, request: billing_pb2.ListStoredModelsRequest,
                               context: _ListStoredModelsContext) -> billing_pb2.StoredModels:
        try:
            return self._model_admin().listing()
        except ServiceError as err:
            await abort(context, err)
            raise

    async def WatchModels(self, request: billing_pb2.WatchModelsRequest,
                          context: _WatchModelsContext) -> AsyncIterator[billing_pb2.StoredModels]:
        try:
            admin = self._model_admin()
        except ServiceError as err:
            await abort(context, err)
            return
        async for models in admin.watch(context):
            yield models

    async def ListAudit(self, request: common_pb2.AuditQuery,
                        context: _ListAuditContext) -> common_pb2.AuditPage:
        """Billing's audit log (its models' changes); the facade asks for admins only."""
        try:
            rows = await audit_chain.query(self._model_admin().store.engine, AUDIT, query_of(request))
        except ServiceError as err:
            await abort(context, err)
            raise
        return common_pb2.AuditPage(entries=[entry(r, "billing") for r in rows])

    async def VerifyAudit(self, request: billing_pb2.VerifyBillingAuditRequest,
                          context: _VerifyAuditContext) -> common_pb2.AuditVerification:
        try:
            engine = self._model_admin().store.engine
        except ServiceError as err:
            await abort(context, err)
            raise
        return verification(await audit_chain.verify(engine, AUDIT), "billing")

    def _row(self, event: billing_pb2.UsageEvent) -> dict[str, Any]:
        charge = self.pricer.event_charge(event)
        return ledger_values(event, charge.cost_micros, charge.cache_savings_micros)

    @staticmethod
    def _lease_units(events: Any) -> dict[str, tuple[str, int]]:
        return {e.request_id: (e.lease_id, e.lease_unit_micros) for e in events if e.lease_id}

    async def Reserve(self, request: billing_pb2.ReserveRequest,
                      context: _ReserveContext) -> billing_pb2.ReserveResponse:
        self.gauges.seen("key", request.key_id, limits_of(request.key_limits))
        if request.team_id:
            self.gauges.seen("team", request.team_id, limits_of(request.team_limits))
        if request.user_id:
            self.gauges.seen("user", request.user_id, limits_of(request.user_limits))
        try:
            if self.models is not None:
                await self.models.learn(models=(request.model,))
            held = await self.holder.reserve(request)
        except ServiceError as err:
            await abort(context, err)
            raise
        r = held.reservation
        response = billing_pb2.ReserveResponse(
            reservation_id=request.request_id if r.held else "", held_micros=r.amount_micros if r.held else 0,
            budgets=_budget_messages(r.budgets), priced=held.priced, expires_at_ms=r.expires_at_ms,
            output_tokens=held.quote.output_tokens, output_capped=r.capped, charged_at_ms=r.charged_at_ms)
        if r.lease is not None:
            response.lease.CopyFrom(billing_pb2.LeaseGrant(lease_id=r.lease.lease_id, micros=r.lease.micros,
                                                           renewed_until_ms=r.lease.renewed_until_ms,
                                                           expires_at_ms=r.lease.expires_at_ms,
                                                           charged_from_ms=r.lease.charged_from_ms,
                                                           charged_until_ms=r.lease.charged_until_ms))
        return response

    async def ReturnLease(self, request: billing_pb2.ReturnLeaseRequest,
                          context: _ReturnLeaseContext) -> billing_pb2.ReturnLeaseResponse:
        await self.budgets.return_lease(request.lease_id, request.micros)
        return billing_pb2.ReturnLeaseResponse()

    async def RenewLeases(self, request: billing_pb2.RenewLeasesRequest,
                          context: _RenewLeasesContext) -> billing_pb2.RenewLeasesResponse:
        renewed = await self.budgets.renew(
            [(lease.lease_id, lease.committed_micros, lease.return_micros) for lease in request.leases],
            max(1.0, request.renew_seconds or 5.0), request.holds)
        return billing_pb2.RenewLeasesResponse(leases=[
            billing_pb2.LeaseState(lease_id=s.lease_id, known=s.known, micros=s.micros,
                                   renewed_until_ms=s.renewed_until_ms) for s in renewed.leases],
            unknown_holds=renewed.unknown_holds)

    async def GetRateCard(self, request: billing_pb2.GetRateCardRequest,
                          context: _GetRateCardContext) -> billing_pb2.RateCard:
        return rate_card(self.pricer, self.holder.min_output_tokens)

    async def GetBudgets(self, request: billing_pb2.GetBudgetsRequest,
                         context: _GetBudgetsContext) -> billing_pb2.GetBudgetsResponse:
        subjects = [(s.scope, s.subject_id, limits_of(s.limits)) for s in request.subjects
                    if s.scope in ("key", "team", "user") and s.subject_id]
        for scope, subject_id, limits in subjects:
            self.gauges.seen(scope, subject_id, limits)
        found = await self.budgets.standings(subjects)
        out = billing_pb2.GetBudgetsResponse()
        for (scope, subject_id, _limits), standing in zip(subjects, found, strict=True):
            window = next((b for b in standing.budgets if b.kind == "budget"), None)
            out.subjects.add(scope=scope, subject_id=subject_id, spent_micros=standing.spent_micros,
                             resets_at_ms=_ms(window.resets_at) if window is not None else 0,
                             today_micros=standing.today_micros, today_resets_at_ms=_ms(standing.today.end),
                             held_micros=standing.held_micros, budgets=_budget_messages(standing.budgets))
        return out

    async def Release(self, request: billing_pb2.ReleaseRequest,
                      context: _ReleaseContext) -> billing_pb2.ReleaseResponse:
        return billing_pb2.ReleaseResponse(released=await self.budgets.release(request.request_id))

    async def SummarizeUsage(self, request: billing_pb2.SummarizeUsageRequest,
                             context: _SummarizeUsageContext) -> billing_pb2.SummarizeUsageResponse:
        try:
            if request.group_by and request.group_by not in GROUPS:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                                   f"group_by must be one of {', '.join(GROUPS)} (or empty for one total)",
                                   param="group_by")
            if request.split_by and (request.split_by not in SPLITS or request.split_by == request.group_by):
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                                   f"split_by must be one of {', '.join(SPLITS)}, other than group_by (or empty)",
                                   param="split_by")
            sums = await self.ledger.summarize(key_id=request.key_id, team_id=request.team_id, model=request.model,
                                               from_ms=request.from_ms, to_ms=request.to_ms,
                                               group_by=request.group_by, split_by=request.split_by,
                                               user_id=request.user_id)
            return billing_pb2.SummarizeUsageResponse(groups=[
                billing_pb2.UsageGroup(group=s.group, requests=s.requests, successful_requests=s.successful_requests,
                                       prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens,
                                       cached_prompt_tokens=s.cached_prompt_tokens, cost_micros=s.cost_micros,
                                       unpriced_requests=s.unpriced_requests, split=s.split, errors=s.errors,
                                       latency_p50_ms=s.latency_p50_ms, latency_p95_ms=s.latency_p95_ms,
                                       ttft_p50_ms=s.ttft_p50_ms, ttft_p95_ms=s.ttft_p95_ms,
                                       cache_write_tokens=s.cache_write_tokens,
                                       cache_savings_micros=s.cache_savings_micros)
                for s in sums])
        except ServiceError as err:
            await abort(context, err)
            raise

    async def GetCatalog(self, request: billing_pb2.GetCatalogRequest,
                         context: _GetCatalogContext) -> billing_pb2.GetCatalogResponse:
        return public_catalog(self.pricer)

    async def Settle(self, request: billing_pb2.SettleRequest,
                     context: _SettleContext) -> billing_pb2.SettleResponse:
        try:
            if not request.event.request_id:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "event.request_id is required",
                                   param="request_id")
            if self.models is not None:
                await self.models.learn(deployment_ids=(request.event.deployment_id,))
            new = await self.ledger.record_new([self._row(request.event)], self._lease_units([request.event]),
                                               watches_of(request.event.watched_budgets))
            self.budgets.freed.notify()  # the request's hold is settled
            _count_spend(new)
            return billing_pb2.SettleResponse(recorded=bool(new))
        except ServiceError as err:
            await abort(context, err)
            raise

    async def SettleBatch(self, request: billing_pb2.SettleBatchRequest,
                          context: _SettleBatchContext) -> billing_pb2.SettleBatchResponse:
        try:
            # Slices: a message's repeated field iterated as itself ends in an IndexError, once per loop.
            events = request.events[:]
            if any(not e.request_id for e in events):
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "every event needs a request_id",
                                   param="request_id")
            if self.models is not None:
                await self.models.learn(deployment_ids=[e.deployment_id for e in events])
            new = await self.ledger.record_new([self._row(e) for e in events], self._lease_units(events),
                                               watches_of(w for e in events if e.watched_budgets
                                                          for w in e.watched_budgets[:]))
            self.budgets.freed.notify()  # their holds are settled
            _count_spend(new)
            return billing_pb2.SettleBatchResponse(recorded=len(new))
        except ServiceError as err:
            await abort(context, err)
            raise

    async def ListUsage(self, request: billing_pb2.ListUsageRequest,
                        context: _ListUsageContext) -> billing_pb2.ListUsageResponse:
        try:
            limit = request.limit or 100
            if limit < 0 or limit > MAX_PAGE:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"limit must be between 1 and {MAX_PAGE}",
                                   param="limit")
            rows = await self.ledger.list(key_id=request.key_id, team_id=request.team_id, model=request.model,
                                          from_ms=request.from_ms, to_ms=request.to_ms, limit=limit + 1,
                                          before=_parse_cursor(request.cursor), request_id=request.request_id,
                                          user_id=request.user_id)
            page, more = rows[:limit], len(rows) > limit
            return billing_pb2.ListUsageResponse(records=[record_from_row(r) for r in page],
                                                 next_cursor=_cursor(page[-1]) if more else "")
        except ServiceError as err:
            await abort(context, err)
            raise

    async def ListAlerts(self, request: billing_pb2.ListAlertsRequest,
                         context: _ListAlertsContext) -> billing_pb2.ListAlertsResponse:
        try:
            limit = request.limit or 100
            if limit < 0 or limit > MAX_PAGE:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"limit must be between 1 and {MAX_PAGE}",
                                   param="limit")
            if request.scope and request.scope not in SCOPES:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"scope must be one of {', '.join(SCOPES)}",
                                   param="scope")
            if request.kind and request.kind not in KINDS:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"kind must be one of {', '.join(KINDS)}",
                                   param="kind")
            alerts, deliveries = await list_alerts(
                self.ledger.engine, scope=request.scope, subject_id=request.subject_id, kind=request.kind,
                from_ms=request.from_ms, to_ms=request.to_ms, limit=limit + 1, before=_parse_cursor(request.cursor),
                subjects=list(request.subjects))
            page, more = alerts[:limit], len(alerts) > limit
            out = billing_pb2.ListAlertsResponse(
                next_cursor=f"{page[-1].created_at_ms}:{page[-1].idempotency_key}" if more else "")
            for a in page:
                out.alerts.add(
                    idempotency_key=a.idempotency_key, kind=a.kind, scope=a.scope, subject_id=a.subject_id,
                    budget=a.budget, threshold_percent=a.threshold_percent, limit_micros=a.limit_micros,
                    spent_micros=a.spent_micros, window_start_ms=a.window_start_ms, window_end_ms=a.window_end_ms,
                    created_at_ms=a.created_at_ms, message=a.message, alias=a.alias, details_json=a.details_json,
                    deliveries=[billing_pb2.AlertDelivery(
                        webhook=d.webhook, status=d.status, attempts=d.attempts, delivered_at_ms=d.delivered_at_ms,
                        next_attempt_ms=d.next_attempt_ms if d.status == "pending" else 0, last_error=d.last_error)
                        for d in deliveries.get(a.idempotency_key, [])])
            return out
        except ServiceError as err:
            await abort(context, err)
            raise
