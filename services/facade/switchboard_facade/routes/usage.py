"""``GET /usage``: spend and tokens summed by day, model, key or team, as JSON or CSV.

Filters (query parameters): ``key_id`` (or ``api_key``/``key``), ``team_id`` (or
``team``), ``user_id``, ``model``, ``from``/``to`` (or ``start_date``/``end_date``: ISO dates or
datetimes, UTC unless they say otherwise; ``to`` is exclusive), ``group_by``
(``hour``, ``day``, ``model``, ``key``, ``team``, ``user``; absent: one total),
``split_by`` (``model``, ``key``, ``team`` or ``user``: each group split again)
and ``format`` (``json`` or ``csv``). A virtual key reads its own usage; the
admin reads all. Amounts are exact: ``cost_micros`` (integer micro-dollars) and
``spend`` (a decimal string in USD); each group also has its errors and the
p50/p95 latency and time to first token of its successful requests.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from switchboard_auth.client import KeyContext
from switchboard_billing.client import SummarizeUsageRequest, SummarizeUsageResponse, UsageGroup
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.errors import error_response, invalid
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential

router = APIRouter()

GROUPS = ("hour", "day", "model", "key", "team", "user")
SPLITS = ("model", "key", "team", "user")


def time_filter(value: str | None, name: str, *, end: bool = False) -> int:
    """An ISO date or datetime (UTC unless it has an offset) → Unix ms; 0 when absent. An end given as a bare date
    (LiteLLM's ``end_date=2026-11-30``) includes that whole day."""
    if not value:
        return 0
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"'{name}' must be an ISO date or datetime, e.g. 2026-11-01 or 2026-11-01T09:00:00Z.", name,
                      "invalid_value") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end and len(value.strip()) == 10:  # a date: up to the end of that day
        parsed += timedelta(days=1)
    return int(parsed.timestamp() * 1000)


def key_filter(q: QueryParams) -> str:
    """The key a usage query names: ``key_id``, LiteLLM's ``api_key`` or ``key`` (an id, or a plain key)."""
    return q.get("key_id") or q.get("api_key") or q.get("key") or ""


def usage_filters(q: QueryParams, key: KeyContext, key_id: str | None = None) -> dict[str, Any]:
    """The filters of a usage query (``key_id``: the named key, resolved). Admins and proxy_admin viewers read every
    row; a user's key the rows of its user's keys when it asks for its own ``user_id``; any other key its own."""
    filters = {
        "key_id": key_filter(q) if key_id is None else key_id,
        "team_id": q.get("team_id") or q.get("team") or "",
        "user_id": q.get("user_id", ""),
        "model": q.get("model", ""),
        "from_ms": time_filter(q.get("from") or q.get("start_date"), "from" if q.get("from") else "start_date"),
        "to_ms": time_filter(q.get("to") or q.get("end_date"), "to" if q.get("to") else "end_date",
                             end=bool(q.get("end_date") and not q.get("to"))),
    }
    if key.is_admin or key.user_role == "proxy_admin_viewer":
        return filters
    if key.user_id and filters["user_id"] == key.user_id:
        return filters  # every key of its own user
    if filters["user_id"]:
        raise ServiceError(Kind.ERROR_KIND_PERMISSION, "A user's key may only read its own user's usage (user_id) "
                           "or its own key's.", param="user_id", code="not_your_user")
    if filters["key_id"] and filters["key_id"] != key.key_id:
        raise ServiceError(Kind.ERROR_KIND_PERMISSION, "A virtual key may only read its own usage; leave key_id out "
                           "or pass your own key's id.", param="key_id", code="not_your_key")
    filters["key_id"] = key.key_id
    return filters


def output_format(q: QueryParams) -> str:
    fmt = q.get("format", "json").lower()
    if fmt not in ("json", "csv"):
        raise invalid("'format' must be json or csv.", "format", "invalid_value")
    return fmt


def usd(micros: int) -> str:
    """Exact USD text with six decimals (no float)."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{fraction:06d}"


#: A spreadsheet reads a cell starting with one of these as a formula (OWASP's CSV injection rule).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell no spreadsheet runs: text that would start a formula gets a leading ``'``
    (a key alias such as ``=HYPERLINK(...)``); numbers, and text that is a plain number, stay as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def csv_response(rows: list[dict[str, Any]], columns: list[str], filename: str, request_id: str) -> Response:
    """Every CSV the gateway writes goes through here (see :func:`csv_cell`)."""
    buffer = io.StringIO()
    # CRLF rows (RFC 4180): a CR or LF inside a value is then always quoted, so no value can break a row.
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row.get(k)) for k in columns})
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"x-request-id": request_id, "content-disposition": f'attachment; filename="{filename}"'})


def group_json(g: UsageGroup) -> dict[str, Any]:
    return {
        "group": g.group or None,
        "requests": g.requests,
        "successful_requests": g.successful_requests,
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "total_tokens": g.prompt_tokens + g.completion_tokens,
        "cached_prompt_tokens": g.cached_prompt_tokens,
        "cache_write_tokens": g.cache_write_tokens,
        "cost_micros": g.cost_micros,
        "spend": usd(g.cost_micros),
        # What prompt caching saved: the cost with cached and cache-write tokens as plain input, minus the cost.
        "savings": usd(g.cache_savings_micros),
        "cache_savings_micros": g.cache_savings_micros,
        "unpriced_requests": g.unpriced_requests,
        "errors": g.errors,
        "latency_p50_ms": round(g.latency_p50_ms, 1),
        "latency_p95_ms": round(g.latency_p95_ms, 1),
        "ttft_p50_ms": round(g.ttft_p50_ms, 1),
        "ttft_p95_ms": round(g.ttft_p95_ms, 1),
    }


async def summarize(gw: Gateway, request: SummarizeUsageRequest) -> SummarizeUsageResponse:
    return await gw.billing.summarize_usage(request)


@router.get("/usage")
@router.get("/v1/usage")
async def usage(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    q = request.query_params
    try:
        key = await gw.verify(credential(request))
        group_by = q.get("group_by", "")
        if group_by and group_by not in GROUPS:
            raise invalid(f"'group_by' must be one of {', '.join(GROUPS)} (or absent for one total).", "group_by",
                          "invalid_value")
        split_by = q.get("split_by", "")
        if split_by and (split_by not in SPLITS or split_by == group_by):
            raise invalid(f"'split_by' must be one of {', '.join(SPLITS)}, other than group_by (or absent).",
                          "split_by", "invalid_value")
        fmt = output_format(q)
        filters = usage_filters(q, key)
        page = await summarize(gw, SummarizeUsageRequest(group_by=group_by, split_by=split_by, **filters))
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    groups = [{**group_json(g), "split": g.split or None} if split_by else group_json(g) for g in page.groups]
    if fmt == "csv":
        columns = list(group_json(UsageGroup()))
        if split_by:
            columns.insert(1, "split")
        return csv_response(groups, columns, "usage.csv", request_id)
    total = UsageGroup()
    for g in page.groups:
        for name in ("requests", "successful_requests", "prompt_tokens", "completion_tokens", "cached_prompt_tokens",
                     "cache_write_tokens", "cost_micros", "cache_savings_micros", "unpriced_requests", "errors"):
            setattr(total, name, getattr(total, name) + getattr(g, name))
    body = {"object": "usage", "group_by": group_by or None, "split_by": split_by or None,
            "filters": {k: v for k, v in filters.items() if v}, "data": groups,
            # Percentiles do not add up across groups: the total has none (ask without group_by for them).
            "total": {k: v for k, v in group_json(total).items() if not k.endswith(("_p50_ms", "_p95_ms"))}}
    return Response(orjson.dumps(body), media_type="application/json", headers={"x-request-id": request_id})
