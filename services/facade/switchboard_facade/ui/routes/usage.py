"""Usage: spend and requests per day (chart), breakdowns by key, model and team, the request log, CSV export.

Filters are those of ``GET /usage`` (date range, key, model, team); a virtual key's session is confined to its
own rows by the same ``usage_filters`` the API uses. The "to" date of the form is inclusive.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import ListUsageRequest, SummarizeUsageRequest, UsageRecord
from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.routes.spend import usage_row_json
from switchboard_facade.routes.usage import csv_response, group_json, summarize, usage_filters
from switchboard_facade.ui.guard import current, to_signin
from switchboard_facade.ui.render import page
from switchboard_facade.ui.session import Session

router = APIRouter()

LOG_ROWS = 200
CSV_ROWS = 100_000
FILTER_NAMES = ("from", "to", "key_id", "model", "team_id")


def form_filters(q: QueryParams) -> dict[str, str]:
    return {name: q.get(name, "").strip() for name in FILTER_NAMES}


def api_query(chosen: dict[str, str]) -> QueryParams:
    """The form's filters as ``/usage`` query parameters: an inclusive "to" day becomes the next day's start."""
    params = {k: v for k, v in chosen.items() if v}
    to = params.get("to", "")
    if len(to) == 10:
        try:
            params["to"] = (date.fromisoformat(to) + timedelta(days=1)).isoformat()
        except ValueError:
            pass
    return QueryParams(params)


def custody_path(row: dict[str, Any]) -> str:
    """The same path the ``x-switchboard-custody-path`` response header reported for the request."""
    if not row.get("model_id"):
        return "facade"
    return f"facade>router>{row['custom_llm_provider']}:{row['model_id']}"


async def _filters(gw: Gateway, session: Session, chosen: dict[str, str]) -> dict[str, Any]:
    key = await gw.verify(session.credential)
    return usage_filters(api_query(chosen), key)


async def _records(gw: Gateway, filters: dict[str, Any], limit: int) -> list[UsageRecord]:
    query = ListUsageRequest(limit=min(limit, 1000), **filters)
    page_ = await gw.billing.list_usage(query)
    records = list(page_.records)
    while page_.next_cursor and len(records) < limit:
        query.cursor = page_.next_cursor
        page_ = await gw.billing.list_usage(query)
        records.extend(page_.records)
    return records[:limit]


async def key_aliases(gw: Gateway, session: Session) -> dict[str, str]:
    """key_id → alias for the breakdown by key; empty when auth cannot list (the ids still show)."""
    who = session.credential
    try:
        if session.is_admin:
            infos = await gw.auth.admin.list_keys(who)
        else:
            infos = [await gw.auth.admin.get_key(who, session.credential)]
    except ServiceError:
        return {}
    return {k.key_id: k.key_alias for k in infos if k.key_alias}


@router.get("/ui/usage")
async def usage_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    gw: Gateway = request.app.state.gateway
    chosen = form_filters(request.query_params)
    groups: dict[str, list[dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    error = ""
    try:
        filters = await _filters(gw, session, chosen)
        for group_by in ("day", "model", "key", "team"):
            summary = await summarize(gw, SummarizeUsageRequest(group_by=group_by, **filters))
            groups[group_by] = [group_json(g) for g in summary.groups]
        aliases = await key_aliases(gw, session)
        for g in groups["key"]:
            g["label"] = aliases.get(g["group"] or "", "")
        for record in await _records(gw, filters, LOG_ROWS):
            row = usage_row_json(record)
            row["custody_path"] = custody_path(row)
            rows.append(row)
    except ServiceError as err:
        error = err.error.message
    total = {name: sum(g[name] for g in groups.get("day", [])) for name in
             ("requests", "successful_requests", "prompt_tokens", "completion_tokens", "cost_micros")}
    chart_data = {"days": [g["group"] for g in groups.get("day", [])],
                  "spend": [g["spend"] for g in groups.get("day", [])],
                  "requests": [g["requests"] for g in groups.get("day", [])]}
    export = str(api_query(chosen))
    key_choices = sorted((g["group"], g.get("label", "")) for g in groups.get("key", []) if g["group"])
    model_choices = [g["group"] for g in groups.get("model", []) if g["group"]]
    return page(request, "usage.html", session, groups=groups, rows=rows, total=total, chosen=chosen, error=error,
                chart_data=chart_data, export_query=export, log_limit=LOG_ROWS, key_choices=key_choices,
                model_choices=model_choices)


@router.get("/ui/usage.csv")
async def usage_csv(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    try:
        key = await gw.verify(session.credential)
        filters = usage_filters(request.query_params, key)
        records = await _records(gw, filters, CSV_ROWS)
    except ServiceError as err:
        return page(request, "error.html", session, status=400, message=err.error.message)
    rows = []
    for record in records:
        row = usage_row_json(record)
        row["custody_path"] = custody_path(row)
        rows.append(row)
    columns = [*usage_row_json(UsageRecord()), "custody_path"]
    return csv_response(rows, columns, "usage.csv", request_id)
