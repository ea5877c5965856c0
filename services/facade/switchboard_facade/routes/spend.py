"""``GET /spend/logs``: the usage ledger, LiteLLM-shaped. The admin sees every row; a key sees its own.

Filters are those of ``/usage`` (key, team, user, model, from/to) and LiteLLM's:
``api_key`` (a key id or the plain key), ``request_id`` (the gateway's request
id, or the ``id`` of the completion the client got), ``start_date`` and
``end_date`` (a bare end date includes that day). ``limit`` and ``cursor`` page
through the rows (``x-next-cursor``), newest first. ``format=csv`` exports every
matching row (up to 100,000) as CSV.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import ListUsageRequest, UsageRecord
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_input import micros_to_usd
from switchboard_facade.errors import error_response, invalid
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential
from switchboard_facade.routes.usage import csv_response, key_filter, output_format, usage_filters

router = APIRouter()


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def usage_row_json(record: UsageRecord) -> dict[str, Any]:
    e = record.event
    u = e.usage
    return {
        "request_id": e.request_id,
        "api_key": e.key_id,
        "key_alias": e.key_alias or None,
        "team_id": e.team_id or None,
        "user_id": e.user_id or None,
        "request_tags": list(e.tags),
        "model": e.model,
        "model_id": e.deployment_id,
        "custom_llm_provider": e.provider,
        "upstream_model": e.upstream_model,
        "jurisdiction": e.jurisdiction or None,
        "privacy_tier": e.privacy_tier or None,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "cached_prompt_tokens": u.cached_prompt_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "usage_reported_by_provider": u.reported_by_provider,
        "spend": micros_to_usd(record.cost_micros) if record.HasField("cost_micros") else None,
        "cost_unknown": not record.HasField("cost_micros"),
        "cost_micros": record.cost_micros if record.HasField("cost_micros") else None,
        "cache_savings": micros_to_usd(record.cache_savings_micros),
        "cache_savings_micros": record.cache_savings_micros,
        "status": e.status,
        "http_status": e.http_status,
        "error_code": e.error_code or None,
        "stream": e.stream,
        "latency_ms": round(e.latency_ms, 3),
        "ttft_ms": round(e.ttft_ms, 3) if e.stream else None,
        "provider_ms": round(e.provider_ms, 3) if e.attempts else None,
        "attempts": e.attempts,
        "startTime": _iso_ms(e.started_at_ms),
        "recorded_at": _iso_ms(record.recorded_at_ms),
        "custody_path": e.custody_path or None,
        "pii": e.pii or None,
        "pii_policy": e.pii_policy or None,
        "required_privacy_tier": e.required_privacy_tier or None,
        "byok": e.byok,
        "source": e.source or None,
        "response_id": e.response_id or None,
        "provisional": e.provisional,
    }


CSV_LIMIT = 100_000


@router.get("/spend/logs")
async def spend_logs(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    q = request.query_params
    try:
        key = await gw.verify(credential(request))
        fmt = output_format(q)
        limit_raw = q.get("limit", "1000" if fmt == "csv" else "100")
        if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 1000:
            raise invalid("'limit' must be a whole number between 1 and 1000.", "limit", "invalid_value")
        named = key_filter(q)
        if named and not named.startswith("key_") and named != "master":  # LiteLLM's api_key: the key itself
            named = (await gw.auth.admin.get_key(credential(request), named)).key_id
        filters = usage_filters(q, key, named)
        query = ListUsageRequest(limit=int(limit_raw), cursor=q.get("cursor", ""),
                                 request_id=q.get("request_id", "").strip(), **filters)
        page = await gw.billing.list_usage(query)
        records = list(page.records)
        while fmt == "csv" and page.next_cursor and len(records) < CSV_LIMIT:
            query.cursor = page.next_cursor
            page = await gw.billing.list_usage(query)
            records.extend(page.records)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    rows = [usage_row_json(r) for r in records]
    if fmt == "csv":
        return csv_response(rows, list(usage_row_json(UsageRecord())), "spend-logs.csv", request_id)
    headers = {"x-request-id": request_id}
    if page.next_cursor:
        headers["x-next-cursor"] = page.next_cursor
    return Response(orjson.dumps(rows), media_type="application/json", headers=headers)
