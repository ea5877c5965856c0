"""``GET /alerts``: budget alerts (thresholds crossed, soft budgets passed) and team spend reports, as JSON.

Filters (query parameters): ``scope`` (``key``, ``team``, ``user``), ``subject_id``,
``kind`` (``threshold``, ``soft_budget``, ``report``), ``from``/``to`` (ISO dates or
datetimes, on when the alert was raised), ``limit`` (1-1000, default 100) and
``cursor`` (the ``next_cursor`` of the previous page). The admin and
proxy_admin viewers read every alert; any other key reads the alerts of its own
key, its user and its team. Alerts are raised and delivered by billing
(docs/alerts.md); each lists its delivery to every webhook.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_auth.client import KeyContext
from switchboard_billing.client import Alert, ListAlertsRequest
from switchboard_common.errors import ServiceError
from switchboard_facade.admin_views import iso_ms
from switchboard_facade.errors import error_response, invalid
from switchboard_facade.gateway import Gateway, new_request_id
from switchboard_facade.http_input import credential
from switchboard_facade.routes.usage import time_filter, usd

router = APIRouter()


def own_subjects(key: KeyContext) -> list[str]:
    """The subjects whose alerts a key that is not an admin may read: itself, its user, its team (a person signed
    in to the dashboard without a key: their user)."""
    subjects = [f"key:{key.key_id}"] if key.key_id else []
    if key.user_id:
        subjects.append(f"user:{key.user_id}")
    if key.team_id:
        subjects.append(f"team:{key.team_id}")
    return subjects


def alert_json(a: Alert) -> dict[str, Any]:
    return {
        "idempotency_key": a.idempotency_key,
        "kind": a.kind,
        "scope": a.scope,
        "subject_id": a.subject_id,
        "alias": a.alias or None,
        "budget": a.budget,
        "threshold_percent": a.threshold_percent or None,
        "limit": usd(a.limit_micros) if a.limit_micros else None,
        "limit_micros": a.limit_micros,
        "spend": usd(a.spent_micros),
        "spend_micros": a.spent_micros,
        "window_start": iso_ms(a.window_start_ms),
        "window_end": iso_ms(a.window_end_ms),
        "created_at": iso_ms(a.created_at_ms),
        "message": a.message,
        "details": orjson.loads(a.details_json) if a.details_json else None,
        "deliveries": [{"webhook": d.webhook, "status": d.status, "attempts": d.attempts,
                        "delivered_at": iso_ms(d.delivered_at_ms), "next_attempt_at": iso_ms(d.next_attempt_ms),
                        "last_error": d.last_error or None} for d in a.deliveries],
    }


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return 100
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise invalid("'limit' must be a whole number from 1 to 1000.", "limit", "invalid_value")
    return int(value)


async def alerts_page(gw: Gateway, key: KeyContext, q: Any) -> dict[str, Any]:
    """One page of the alerts ``key`` may read, filtered by the query (shared with the dashboard's bell)."""
    scope, kind = q.get("scope", ""), q.get("kind", "")
    if scope and scope not in ("key", "team", "user"):
        raise invalid("'scope' must be key, team or user.", "scope", "invalid_value")
    if kind and kind not in ("threshold", "soft_budget", "report"):
        raise invalid("'kind' must be threshold, soft_budget or report.", "kind", "invalid_value")
    request = ListAlertsRequest(scope=scope, subject_id=q.get("subject_id", ""), kind=kind,
                                from_ms=time_filter(q.get("from"), "from"), to_ms=time_filter(q.get("to"), "to"),
                                limit=_limit(q.get("limit")), cursor=q.get("cursor", ""))
    if not (key.is_admin or key.user_role == "proxy_admin_viewer"):
        request.subjects.extend(own_subjects(key))
    page = await gw.billing.list_alerts(request)
    return {"object": "list", "data": [alert_json(a) for a in page.alerts], "next_cursor": page.next_cursor or None}


@router.get("/alerts")
async def alerts(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    request_id = new_request_id()
    try:
        key = await gw.verify(credential(request))
        body = await alerts_page(gw, key, request.query_params)
    except ServiceError as err:
        return error_response(err, {"x-request-id": request_id})
    return Response(orjson.dumps(body), media_type="application/json", headers={"x-request-id": request_id})
