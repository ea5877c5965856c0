"""Usage at a glance: totals, charts per hour or day (spend, requests, errors, tokens, latency, time to first
token), budgets closest to their limit, breakdowns by model, key, team and user, the request log and a CSV export.

Filters are those of ``GET /usage`` (key, team, model) plus a range: the last 24 hours, 7, 30 or 90 days, or
two dates (both included, UTC). A virtual key's session is confined to its own rows by the same
``usage_filters`` the API uses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from switchboard_billing.client import ListUsageRequest, SummarizeUsageRequest, UsageGroup, UsageRecord
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_views import iso_ms
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.routes.spend import usage_row_json
from switchboard_facade.routes.usage import csv_response, summarize
from switchboard_facade.ui import ranges
from switchboard_facade.ui.budget_bars import Standing, has_budget, standings
from switchboard_facade.ui.guard import acting_key, current, to_signin, usage_scope
from switchboard_facade.ui.names import Directory, directory
from switchboard_facade.ui.render import page
from switchboard_facade.ui.session import Session
from switchboard_facade.ui.usage_charts import usage_charts

router = APIRouter()

LOG_ROWS = 50
CSV_ROWS = 100_000
FILTER_NAMES = ("range", "from", "to", "key_id", "model", "team_id", "split")
SPLITS = ("model", "key", "team", "user")
#: Budgets shown on the page (the closest to their limit first).
BUDGETS_SHOWN = 6


def form_filters(q: QueryParams) -> dict[str, str]:
    return {name: q.get(name, "").strip() for name in FILTER_NAMES}


def custody_path(row: dict[str, Any]) -> str:
    """The request's custody path as the ledger recorded it (the facade hop alone when no deployment served)."""
    if row.get("custody_path"):
        return str(row["custody_path"])
    if not row.get("model_id"):
        return "facade"
    return f"facade>router>{row['custom_llm_provider']}:{row['model_id']}"


async def records(gw: Gateway, filters: dict[str, Any], limit: int) -> list[UsageRecord]:
    query = ListUsageRequest(limit=min(limit, 1000), **filters)
    page_ = await gw.billing.list_usage(query)
    found = list(page_.records)
    while page_.next_cursor and len(found) < limit:
        query.cursor = page_.next_cursor
        page_ = await gw.billing.list_usage(query)
        found.extend(page_.records)
    return found[:limit]


def breakdown(groups: list[UsageGroup], dimension: str, names: Directory) -> list[dict[str, Any]]:
    """Rows of a breakdown table, largest spend first, each with its name."""
    rows = [{"id": g.group, "name": names.name(dimension, g.group), "requests": g.requests, "errors": g.errors,
             "tokens": g.prompt_tokens + g.completion_tokens, "cost_micros": g.cost_micros,
             "unpriced": g.unpriced_requests, "p50": g.latency_p50_ms, "p95": g.latency_p95_ms,
             "ttft_p50": g.ttft_p50_ms} for g in groups]
    return sorted(rows, key=lambda r: (-r["cost_micros"], -r["requests"], r["name"]))


async def budgets(gw: Gateway, session: Session, names: Directory) -> list[dict[str, Any]]:
    """The budgets the session may see, the most used first: every key and team with one (an admin), or the
    key's own and its team's."""
    subjects: list[tuple[str, str, Any]] = []
    labels: dict[tuple[str, str], tuple[str, str]] = {}
    if session.is_admin:
        for k in names.keys.values():
            if has_budget(k.limits) and k.status in ("active", "blocked"):
                subjects.append(("key", k.key_id, k.limits))
                labels[("key", k.key_id)] = (names.key(k.key_id), f"/ui/keys/{k.key_id}")
        for t in names.teams.values():
            if has_budget(t.limits):
                subjects.append(("team", t.team_id, t.limits))
                labels[("team", t.team_id)] = (names.team(t.team_id), f"/ui/teams/{t.team_id}")
        for u in names.users.values():
            if has_budget(u.limits):
                subjects.append(("user", u.user_id, u.limits))
                labels[("user", u.user_id)] = (names.user(u.user_id), "/ui/users")
    elif session.is_person:
        for k in names.keys.values():
            if has_budget(k.limits) and k.status in ("active", "blocked"):
                subjects.append(("key", k.key_id, k.limits))
                labels[("key", k.key_id)] = (names.key(k.key_id), f"/ui/keys/{k.key_id}")
        for u in names.users.values():
            if u.user_id == session.user_id and has_budget(u.limits):
                subjects.append(("user", u.user_id, u.limits))
                labels[("user", u.user_id)] = ("Your budget", "")
    else:
        key = await acting_key(gw, session)
        if has_budget(key.limits):
            subjects.append(("key", key.key_id, key.limits))
            labels[("key", key.key_id)] = (names.key(key.key_id), f"/ui/keys/{key.key_id}")
        if key.team_id and has_budget(key.team_limits):
            subjects.append(("team", key.team_id, key.team_limits))
            labels[("team", key.team_id)] = (names.team(key.team_id), "")
    found = await standings(gw, subjects)
    shown: list[tuple[tuple[str, str], Standing]] = sorted(found.items(), key=lambda item: -item[1].used)
    return [{"scope": scope, "name": labels[(scope, subject)][0], "href": labels[(scope, subject)][1],
             "standing": standing} for (scope, subject), standing in shown[:BUDGETS_SHOWN]]


@router.get("/ui/usage")
async def usage_page(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    gw: Gateway = request.app.state.gateway
    chosen = form_filters(request.query_params)
    error = ""
    try:
        rng = ranges.parse(chosen["range"], chosen["from"], chosen["to"])
    except ValueError:
        rng, error = ranges.parse("", "", ""), "Dates must be written YYYY-MM-DD; showing the last 24 hours."
    split = chosen["split"] if chosen["split"] in SPLITS else "model"
    if not session.is_admin and split != "model":
        split = "model"
    context: dict[str, Any] = {"charts": {}, "tables": {}, "rows": [], "budgets": [], "overall": None}
    names = Directory()
    try:
        filters = await usage_scope(gw, session, {k: chosen[k] for k in ("key_id", "team_id", "model") if chosen[k]})
        filters.update(from_ms=rng.from_ms, to_ms=rng.to_ms)

        def sums(group_by: str = "", split_by: str = "") -> Any:
            return summarize(gw, SummarizeUsageRequest(group_by=group_by, split_by=split_by, **filters))

        dimensions = list(SPLITS) if session.is_admin else ["model"]
        names, totals, by_split, overall, *groups = await asyncio.gather(
            directory(gw, session), sums(rng.bucket), sums(rng.bucket, split), sums(),
            *(sums(d) for d in dimensions))
        context["overall"] = overall.groups[0] if overall.groups else UsageGroup()
        context["charts"] = usage_charts(rng, totals.groups, by_split.groups, split,
                                         lambda value: names.name(split, value))
        context["tables"] = {d: breakdown(list(g.groups), d, names) for d, g in zip(dimensions, groups, strict=True)}
        for record in await records(gw, filters, LOG_ROWS):
            row = usage_row_json(record)
            row["custody_path"] = custody_path(row)
            row["key_name"] = names.key(row["api_key"]) if names.keys else (row["key_alias"] or row["api_key"])
            rows: list[dict[str, Any]] = context["rows"]
            rows.append(row)
        context["budgets"] = await budgets(gw, session, names)
    except ServiceError as err:
        error = err.error.message
    export = {k: v for k, v in (("key_id", chosen["key_id"]), ("team_id", chosen["team_id"]),
                                ("model", chosen["model"])) if v}
    export["from"], export["to"] = iso_ms(rng.from_ms) or "", iso_ms(rng.to_ms) or ""
    return page(request, "usage.html", session, error=error, chosen=chosen, range=rng, presets=ranges.PRESETS,
                split=split, names=names, export_query=str(QueryParams(export)), log_limit=LOG_ROWS, **context)


@router.get("/ui/usage.csv")
async def usage_csv(request: Request) -> Response:
    session = await current(request)
    if session is None:
        return to_signin()
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    try:
        filters = await usage_scope(gw, session, dict(request.query_params))
        found = await records(gw, filters, CSV_ROWS)
    except ServiceError as err:
        return page(request, "error.html", session, status=400, message=err.error.message)
    rows = []
    for record in found:
        row = usage_row_json(record)
        row["custody_path"] = custody_path(row)
        rows.append(row)
    columns = [*usage_row_json(UsageRecord()), "custody_path"]
    return csv_response(rows, columns, "usage.csv", request_id)
